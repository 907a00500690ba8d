//! Raw bindings to the subset of the ESP8266 NONOS SDK 3.x that ramkey uses.
//!
//! Bindings only (the `esp-rom-sys` pattern): `#[repr(C)]` types under the SDK's C names,
//! constants, `unsafe extern "C"` declarations and compile-time layout checks. No logic and no
//! safe wrappers: those live in the firmware glue (`ramkey::firmware`), the only code that
//! calls these and the one place that turns C return codes into errors.
//!
//! # Deliberately absent
//! These SDK calls write the SDK's parameter block (in the `SYSTEM_PARAMETER` partition at the
//! end of flash) and so would put WiFi credentials or settings into flash. ramkey must never
//! call them, so they are not declared here and Rust code cannot name them:
//! `wifi_station_set_config`, `wifi_set_opmode`, `wifi_softap_set_config`,
//! `wifi_station_set_auto_connect`, `system_restore`, `wifi_set_phy_mode` and
//! `wifi_station_ap_number_set` (listed in [`PERSISTENT_SETTERS`]). The firmware's link also
//! redirects them (`--wrap`) so that the SDK's own C objects cannot reach the originals either.
//! The `_current` setters declared below change only the running configuration.
//!
//! # Layout
//! C `bool` is one byte, every C enum is a `u32`, pointers are 32 bits and `uint64` is
//! 8-aligned. The sizes and field offsets were measured from the SDK 3.0.x headers with the
//! lx106 GCC; each is asserted at compile time on 32-bit targets, and the host tests check the
//! structs whose layout does not depend on the pointer width.
//!
//! # Lifetimes the SDK imposes
//! The SDK keeps pointers to an armed [`ETSTimer`], to an [`espconn`] and its [`esp_tcp`] or
//! [`esp_udp`] block, and to a task's [`ETSEvent`] queue: they must outlive their registration
//! (in practice, be `static`). Configurations passed to the `_current` setters are copied.
#![no_std]
#![allow(
    non_camel_case_types,
    reason = "the SDK's own C type names, so the bindings read like its headers"
)]

use core::ffi::{c_char, c_void};

// ---------------------------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------------------------

/// `wifi_set_opmode_current`: radio off.
pub const NULL_MODE: u8 = 0;
/// Station only.
pub const STATION_MODE: u8 = 1;
/// Soft access point only.
pub const SOFTAP_MODE: u8 = 2;
/// Station and soft access point.
pub const STATIONAP_MODE: u8 = 3;

/// Interface index of the station (`wifi_set_ip_info`, `wifi_get_macaddr`).
pub const STATION_IF: u8 = 0;
/// Interface index of the soft access point.
pub const SOFTAP_IF: u8 = 1;

/// `AUTH_MODE`: open.
pub const AUTH_OPEN: u32 = 0;
/// WEP.
pub const AUTH_WEP: u32 = 1;
/// WPA-PSK.
pub const AUTH_WPA_PSK: u32 = 2;
/// WPA2-PSK.
pub const AUTH_WPA2_PSK: u32 = 3;
/// WPA or WPA2 PSK.
pub const AUTH_WPA_WPA2_PSK: u32 = 4;

/// `System_Event_t.event`: station associated.
pub const EVENT_STAMODE_CONNECTED: u32 = 0;
/// Station disconnected (or an attempt failed).
pub const EVENT_STAMODE_DISCONNECTED: u32 = 1;
/// The AP's auth mode changed.
pub const EVENT_STAMODE_AUTHMODE_CHANGE: u32 = 2;
/// Station got an address.
pub const EVENT_STAMODE_GOT_IP: u32 = 3;
/// Station's DHCP timed out.
pub const EVENT_STAMODE_DHCP_TIMEOUT: u32 = 4;
/// A client joined the soft AP.
pub const EVENT_SOFTAPMODE_STACONNECTED: u32 = 5;
/// A client left the soft AP.
pub const EVENT_SOFTAPMODE_STADISCONNECTED: u32 = 6;
/// The soft AP received a probe request.
pub const EVENT_SOFTAPMODE_PROBEREQRECVED: u32 = 7;
/// The operating mode changed.
pub const EVENT_OPMODE_CHANGED: u32 = 8;
/// The soft AP's DHCP server gave a client an address.
pub const EVENT_SOFTAPMODE_DISTRIBUTE_STA_IP: u32 = 9;

/// Disconnect reason: WPA 4-way handshake timed out (typically a wrong key).
pub const REASON_4WAY_HANDSHAKE_TIMEOUT: u8 = 15;
/// Disconnect reason: beacon timeout.
pub const REASON_BEACON_TIMEOUT: u8 = 200;
/// Disconnect reason: no access point with that SSID (and BSSID).
pub const REASON_NO_AP_FOUND: u8 = 201;
/// Disconnect reason: authentication failed.
pub const REASON_AUTH_FAIL: u8 = 202;
/// Disconnect reason: association failed.
pub const REASON_ASSOC_FAIL: u8 = 203;
/// Disconnect reason: handshake timed out.
pub const REASON_HANDSHAKE_TIMEOUT: u8 = 204;

/// `wifi_station_get_connect_status`: idle.
pub const STATION_IDLE: u8 = 0;
/// Connecting.
pub const STATION_CONNECTING: u8 = 1;
/// Wrong password.
pub const STATION_WRONG_PASSWORD: u8 = 2;
/// No AP found.
pub const STATION_NO_AP_FOUND: u8 = 3;
/// Failed for another reason.
pub const STATION_CONNECT_FAIL: u8 = 4;
/// Connected with an address.
pub const STATION_GOT_IP: u8 = 5;

/// `rst_info.reason`: power on.
pub const REASON_DEFAULT_RST: u32 = 0;
/// Hardware watchdog.
pub const REASON_WDT_RST: u32 = 1;
/// Fatal exception.
pub const REASON_EXCEPTION_RST: u32 = 2;
/// Software watchdog.
pub const REASON_SOFT_WDT_RST: u32 = 3;
/// `system_restart`.
pub const REASON_SOFT_RESTART: u32 = 4;
/// Wake from deep sleep.
pub const REASON_DEEP_SLEEP_AWAKE: u32 = 5;
/// Reset pin.
pub const REASON_EXT_SYS_RST: u32 = 6;

/// `partition_type_t`: not a partition.
pub const SYSTEM_PARTITION_INVALID: u32 = 0;
/// Boot loader (fixed address, adjustable size).
pub const SYSTEM_PARTITION_BOOTLOADER: u32 = 1;
/// First OTA image (fixed address, adjustable size).
pub const SYSTEM_PARTITION_OTA_1: u32 = 2;
/// Second OTA image (fixed address, adjustable size).
pub const SYSTEM_PARTITION_OTA_2: u32 = 3;
/// RF calibration sector (the application must define it).
pub const SYSTEM_PARTITION_RF_CAL: u32 = 4;
/// PHY init data sector (must be defined).
pub const SYSTEM_PARTITION_PHY_DATA: u32 = 5;
/// The SDK's parameter sectors (must be defined, 0x3000 bytes).
pub const SYSTEM_PARTITION_SYSTEM_PARAMETER: u32 = 6;
/// AT firmware parameters (types 7..=13 belong to SDK components ramkey does not link).
pub const SYSTEM_PARTITION_AT_PARAMETER: u32 = 7;
/// First type number free for the application's own partitions.
pub const SYSTEM_PARTITION_CUSTOMER_BEGIN: u32 = 100;

/// `flash_size_map`: 512 KB, 256 KB + 256 KB (rejected by `system_partition_table_regist`).
pub const FLASH_SIZE_4M_MAP_256_256: u32 = 0;
/// 256 KB, one 256 KB image (rejected by `system_partition_table_regist`).
pub const FLASH_SIZE_2M: u32 = 1;
/// 1 MB, 512 KB + 512 KB.
pub const FLASH_SIZE_8M_MAP_512_512: u32 = 2;
/// 2 MB, 512 KB + 512 KB.
pub const FLASH_SIZE_16M_MAP_512_512: u32 = 3;
/// 4 MB, 512 KB + 512 KB.
pub const FLASH_SIZE_32M_MAP_512_512: u32 = 4;
/// 2 MB, 1024 KB + 1024 KB.
pub const FLASH_SIZE_16M_MAP_1024_1024: u32 = 5;
/// 4 MB, 1024 KB + 1024 KB.
pub const FLASH_SIZE_32M_MAP_1024_1024: u32 = 6;
/// 4 MB, 2048 KB + 2048 KB: listed by the SDK but not supported (rejected by
/// `system_partition_table_regist`).
pub const FLASH_SIZE_32M_MAP_2048_2048: u32 = 7;
/// 8 MB, 1024 KB + 1024 KB.
pub const FLASH_SIZE_64M_MAP_1024_1024: u32 = 8;
/// 16 MB, 1024 KB + 1024 KB.
pub const FLASH_SIZE_128M_MAP_1024_1024: u32 = 9;

/// First RTC memory block of the user area (`system_rtc_mem_*`).
pub const RTC_USER_FIRST_BLOCK: u8 = 64;
/// Last RTC memory block of the user area.
pub const RTC_USER_LAST_BLOCK: u8 = 191;

/// `spi_flash_*` result: success.
pub const SPI_FLASH_RESULT_OK: u32 = 0;
/// Failure.
pub const SPI_FLASH_RESULT_ERR: u32 = 1;
/// Timeout.
pub const SPI_FLASH_RESULT_TIMEOUT: u32 = 2;

/// `wifi_station_scan` callback status (`STATUS`): the list is valid.
pub const SCAN_STATUS_OK: u32 = 0;
/// The scan failed; the list pointer must not be read.
pub const SCAN_STATUS_FAIL: u32 = 1;
/// Still pending.
pub const SCAN_STATUS_PENDING: u32 = 2;
/// Busy.
pub const SCAN_STATUS_BUSY: u32 = 3;
/// Cancelled.
pub const SCAN_STATUS_CANCEL: u32 = 4;

/// `scan_config.scan_type` (`wifi_scan_type_t`): active scan (probe requests).
pub const WIFI_SCAN_TYPE_ACTIVE: u32 = 0;
/// Passive scan (beacons only).
pub const WIFI_SCAN_TYPE_PASSIVE: u32 = 1;

/// `bss_info.phy_bits`: the network supports 802.11b.
pub const BSS_INFO_PHY_11B: u32 = 1 << 0;
/// 802.11g.
pub const BSS_INFO_PHY_11G: u32 = 1 << 1;
/// 802.11n.
pub const BSS_INFO_PHY_11N: u32 = 1 << 2;
/// WPS.
pub const BSS_INFO_WPS: u32 = 1 << 3;

/// `espconn.type` (`enum espconn_type`): not set.
pub const ESPCONN_INVALID: u32 = 0;
/// TCP.
pub const ESPCONN_TCP: u32 = 0x10;
/// UDP.
pub const ESPCONN_UDP: u32 = 0x20;

/// `espconn.state` (`enum espconn_state`): none (UDP endpoints always read this).
pub const ESPCONN_NONE: u32 = 0;
/// Waiting.
pub const ESPCONN_WAIT: u32 = 1;
/// Listening.
pub const ESPCONN_LISTEN: u32 = 2;
/// Connected.
pub const ESPCONN_CONNECT: u32 = 3;
/// Writing.
pub const ESPCONN_WRITE: u32 = 4;
/// Reading.
pub const ESPCONN_READ: u32 = 5;
/// Closed.
pub const ESPCONN_CLOSE: u32 = 6;

/// espconn result: success.
pub const ESPCONN_OK: i8 = 0;
/// Out of memory.
pub const ESPCONN_MEM: i8 = -1;
/// Timed out.
pub const ESPCONN_TIMEOUT: i8 = -3;
/// Routing problem.
pub const ESPCONN_RTE: i8 = -4;
/// In progress.
pub const ESPCONN_INPROGRESS: i8 = -5;
/// Too many connections.
pub const ESPCONN_MAXNUM: i8 = -7;
/// Connection aborted.
pub const ESPCONN_ABRT: i8 = -8;
/// Connection reset.
pub const ESPCONN_RST: i8 = -9;
/// Connection closed.
pub const ESPCONN_CLSD: i8 = -10;
/// Not connected.
pub const ESPCONN_CONN: i8 = -11;
/// Illegal argument.
pub const ESPCONN_ARG: i8 = -12;
/// UDP send failed at the interface.
pub const ESPCONN_IF: i8 = -14;
/// Already connected.
pub const ESPCONN_ISCONN: i8 = -15;
/// TLS handshake failed.
pub const ESPCONN_HANDSHAKE: i8 = -28;
/// TLS application data invalid.
pub const ESPCONN_SSL_INVALID_DATA: i8 = -61;

/// Names of the persistent (flash-writing) setters that are deliberately not declared here.
/// The firmware's link redirects every reference to them (`--wrap`); the build and its tests
/// use this list.
pub const PERSISTENT_SETTERS: [&str; 7] = [
    "wifi_station_set_config",
    "wifi_set_opmode",
    "wifi_softap_set_config",
    "wifi_station_set_auto_connect",
    "system_restore",
    "wifi_set_phy_mode",
    "wifi_station_ap_number_set",
];

// ---------------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------------

/// `wifi_fast_scan_threshold_t`: the weakest signal and auth mode the station accepts.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct wifi_fast_scan_threshold_t {
    /// Minimum RSSI.
    pub rssi: i8,
    /// Weakest auth mode accepted (`AUTH_*`).
    pub authmode: u32,
}

/// `struct station_config`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct station_config {
    /// SSID, NUL-padded (32 bytes, not necessarily terminated).
    pub ssid: [u8; 32],
    /// Passphrase, or the PSK as 64 hex digits.
    pub password: [u8; 64],
    /// Channel hint (0: scan).
    pub channel: u8,
    /// 1: connect only to `bssid`.
    pub bssid_set: u8,
    /// The access point's MAC.
    pub bssid: [u8; 6],
    /// Weakest network accepted.
    pub threshold: wifi_fast_scan_threshold_t,
    /// C `bool`.
    pub open_and_wep_mode_disable: u8,
    /// C `bool`.
    pub all_channel_scan: u8,
}

/// `struct softap_config`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct softap_config {
    /// SSID (see `ssid_len`).
    pub ssid: [u8; 32],
    /// Passphrase, NUL-terminated.
    pub password: [u8; 64],
    /// SSID length (0: NUL-terminated).
    pub ssid_len: u8,
    /// Channel 1..=13.
    pub channel: u8,
    /// `AUTH_*`.
    pub authmode: u32,
    /// 1: hidden SSID.
    pub ssid_hidden: u8,
    /// Clients allowed at once (1..=4).
    pub max_connection: u8,
    /// Beacon interval, 100..=60000 ms.
    pub beacon_interval: u16,
}

/// `struct bss_info`: one scan result (a linked list).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct bss_info {
    /// Next result (`STAILQ_ENTRY`), or null.
    pub next: *mut bss_info,
    /// BSSID.
    pub bssid: [u8; 6],
    /// SSID (see `ssid_len`).
    pub ssid: [u8; 32],
    /// SSID length.
    pub ssid_len: u8,
    /// Channel.
    pub channel: u8,
    /// Signal strength, dBm.
    pub rssi: i8,
    /// `AUTH_*`.
    pub authmode: u32,
    /// 1: hidden network.
    pub is_hidden: u8,
    /// Frequency offset.
    pub freq_offset: i16,
    /// Frequency calibration value.
    pub freqcal_val: i16,
    /// Mesh information element, or null.
    pub esp_mesh_ie: *mut u8,
    /// Simple-pair flag.
    pub simple_pair: u8,
    /// `CIPHER_TYPE`.
    pub pairwise_cipher: u32,
    /// `CIPHER_TYPE`.
    pub group_cipher: u32,
    /// C bit field `phy_11b:1, phy_11g:1, phy_11n:1, wps:1, reserved:28`, lowest bit first
    /// (`BSS_INFO_*`).
    pub phy_bits: u32,
}

/// Active scan time per channel, ms.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct wifi_active_scan_time_t {
    /// Minimum.
    pub min: u32,
    /// Maximum.
    pub max: u32,
}

/// `wifi_scan_time_t`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union wifi_scan_time_t {
    /// For active scans.
    pub active: wifi_active_scan_time_t,
    /// For passive scans, ms per channel.
    pub passive: u32,
}

/// `struct scan_config`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct scan_config {
    /// Only this SSID (NUL-terminated), or null.
    pub ssid: *mut u8,
    /// Only this BSSID, or null.
    pub bssid: *mut u8,
    /// Only this channel, or 0.
    pub channel: u8,
    /// 1: include hidden networks.
    pub show_hidden: u8,
    /// `WIFI_SCAN_TYPE_ACTIVE` or `WIFI_SCAN_TYPE_PASSIVE`.
    pub scan_type: u32,
    /// Time per channel.
    pub scan_time: wifi_scan_time_t,
}

/// `struct ip_addr` (network byte order in a `u32`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ip_addr {
    /// The address; its bytes in memory are the dotted quad in order.
    pub addr: u32,
}

/// `struct ip_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ip_info {
    /// Address.
    pub ip: ip_addr,
    /// Netmask.
    pub netmask: ip_addr,
    /// Gateway.
    pub gw: ip_addr,
}

/// Payload of `EVENT_STAMODE_CONNECTED`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Event_StaMode_Connected_t {
    /// SSID.
    pub ssid: [u8; 32],
    /// SSID length.
    pub ssid_len: u8,
    /// BSSID.
    pub bssid: [u8; 6],
    /// Channel.
    pub channel: u8,
}

/// Payload of `EVENT_STAMODE_DISCONNECTED`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Event_StaMode_Disconnected_t {
    /// SSID.
    pub ssid: [u8; 32],
    /// SSID length.
    pub ssid_len: u8,
    /// BSSID.
    pub bssid: [u8; 6],
    /// `REASON_*`.
    pub reason: u8,
}

/// Payload of `EVENT_STAMODE_AUTHMODE_CHANGE`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Event_StaMode_AuthMode_Change_t {
    /// Previous mode.
    pub old_mode: u8,
    /// New mode.
    pub new_mode: u8,
}

/// Payload of `EVENT_STAMODE_GOT_IP`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Event_StaMode_Got_IP_t {
    /// Address.
    pub ip: ip_addr,
    /// Netmask.
    pub mask: ip_addr,
    /// Gateway.
    pub gw: ip_addr,
}

/// Payload of `EVENT_SOFTAPMODE_STACONNECTED` (and, as its alias, `_STADISCONNECTED`).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Event_SoftAPMode_StaConnected_t {
    /// Client MAC.
    pub mac: [u8; 6],
    /// Association id.
    pub aid: u8,
}

/// Payload of `EVENT_SOFTAPMODE_STADISCONNECTED`: a separate C typedef with the same layout.
pub type Event_SoftAPMode_StaDisconnected_t = Event_SoftAPMode_StaConnected_t;

/// Payload of `EVENT_SOFTAPMODE_DISTRIBUTE_STA_IP`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Event_SoftAPMode_Distribute_Sta_IP_t {
    /// Client MAC.
    pub mac: [u8; 6],
    /// Address given.
    pub ip: ip_addr,
    /// Association id.
    pub aid: u8,
}

/// Payload of `EVENT_SOFTAPMODE_PROBEREQRECVED`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Event_SoftAPMode_ProbeReqRecved_t {
    /// Signal strength.
    pub rssi: i32,
    /// Sender MAC.
    pub mac: [u8; 6],
}

/// Payload of `EVENT_OPMODE_CHANGED`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Event_OpMode_Change_t {
    /// Previous mode.
    pub old_opmode: u8,
    /// New mode.
    pub new_opmode: u8,
}

/// `Event_Info_u`: the payload, selected by the event id.
#[repr(C)]
#[derive(Clone, Copy)]
pub union Event_Info_u {
    /// `EVENT_STAMODE_CONNECTED`.
    pub connected: Event_StaMode_Connected_t,
    /// `EVENT_STAMODE_DISCONNECTED`.
    pub disconnected: Event_StaMode_Disconnected_t,
    /// `EVENT_STAMODE_AUTHMODE_CHANGE`.
    pub auth_change: Event_StaMode_AuthMode_Change_t,
    /// `EVENT_STAMODE_GOT_IP`.
    pub got_ip: Event_StaMode_Got_IP_t,
    /// `EVENT_SOFTAPMODE_STACONNECTED`.
    pub sta_connected: Event_SoftAPMode_StaConnected_t,
    /// `EVENT_SOFTAPMODE_DISTRIBUTE_STA_IP`.
    pub distribute_sta_ip: Event_SoftAPMode_Distribute_Sta_IP_t,
    /// `EVENT_SOFTAPMODE_STADISCONNECTED`.
    pub sta_disconnected: Event_SoftAPMode_StaDisconnected_t,
    /// `EVENT_SOFTAPMODE_PROBEREQRECVED`.
    pub ap_probereqrecved: Event_SoftAPMode_ProbeReqRecved_t,
    /// `EVENT_OPMODE_CHANGED`.
    pub opmode_changed: Event_OpMode_Change_t,
}

/// `System_Event_t`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct System_Event_t {
    /// `EVENT_*`.
    pub event: u32,
    /// Payload for `event`.
    pub event_info: Event_Info_u,
}

/// `struct rst_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct rst_info {
    /// `REASON_*_RST` etc.
    pub reason: u32,
    /// Exception cause.
    pub exccause: u32,
    /// EPC1.
    pub epc1: u32,
    /// EPC2.
    pub epc2: u32,
    /// EPC3.
    pub epc3: u32,
    /// Faulting address.
    pub excvaddr: u32,
    /// DEPC.
    pub depc: u32,
}

/// `ETSTimer` / `os_timer_t`. The SDK keeps a pointer to an armed timer.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ETSTimer {
    /// The SDK's list link.
    pub timer_next: *mut ETSTimer,
    /// Expiry, SDK ticks.
    pub timer_expire: u32,
    /// Period, SDK ticks (0: one-shot).
    pub timer_period: u32,
    /// Callback.
    pub timer_func: Option<unsafe extern "C" fn(timer_arg: *mut c_void)>,
    /// Its argument.
    pub timer_arg: *mut c_void,
}

/// `ETSEvent` / `os_event_t`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ETSEvent {
    /// Signal.
    pub sig: u32,
    /// Parameter.
    pub par: u32,
}

/// `esp_tcp`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct esp_tcp {
    /// Remote port.
    pub remote_port: i32,
    /// Local port.
    pub local_port: i32,
    /// Local address.
    pub local_ip: [u8; 4],
    /// Remote address.
    pub remote_ip: [u8; 4],
    /// Connected.
    pub connect_callback: Option<unsafe extern "C" fn(arg: *mut c_void)>,
    /// Error (reconnect) with an `ESPCONN_*` code.
    pub reconnect_callback: Option<unsafe extern "C" fn(arg: *mut c_void, err: i8)>,
    /// Disconnected.
    pub disconnect_callback: Option<unsafe extern "C" fn(arg: *mut c_void)>,
    /// Write finished.
    pub write_finish_fn: Option<unsafe extern "C" fn(arg: *mut c_void)>,
}

/// `esp_udp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct esp_udp {
    /// Remote port.
    pub remote_port: i32,
    /// Local port.
    pub local_port: i32,
    /// Local address.
    pub local_ip: [u8; 4],
    /// Remote address.
    pub remote_ip: [u8; 4],
}

/// `espconn.proto`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union espconn_proto {
    /// For `ESPCONN_TCP`.
    pub tcp: *mut esp_tcp,
    /// For `ESPCONN_UDP`.
    pub udp: *mut esp_udp,
}

/// `struct espconn`. The SDK keeps pointers to it: it must be static.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct espconn {
    /// `ESPCONN_TCP` or `ESPCONN_UDP`.
    pub type_: u32,
    /// `espconn_state`.
    pub state: u32,
    /// Protocol block.
    pub proto: espconn_proto,
    /// Data received.
    pub recv_callback: Option<unsafe extern "C" fn(arg: *mut c_void, data: *mut c_char, len: u16)>,
    /// Data sent.
    pub sent_callback: Option<unsafe extern "C" fn(arg: *mut c_void)>,
    /// Connection count.
    pub link_cnt: u8,
    /// Application pointer.
    pub reverse: *mut c_void,
}

/// `remot_info`: one peer of a connection (`espconn_get_connection_info`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct remot_info {
    /// `espconn_state` of the peer.
    pub state: u32,
    /// The peer's port.
    pub remote_port: i32,
    /// The peer's address.
    pub remote_ip: [u8; 4],
}

/// `partition_item_t`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct partition_item_t {
    /// `SYSTEM_PARTITION_*`.
    pub type_: u32,
    /// Flash offset.
    pub addr: u32,
    /// Bytes.
    pub size: u32,
}

// ---------------------------------------------------------------------------------------------
// Functions
// ---------------------------------------------------------------------------------------------

unsafe extern "C" {
    // WiFi, current (RAM-only) setters and getters.
    /// Sets the operating mode without writing flash.
    pub fn wifi_set_opmode_current(opmode: u8) -> bool;
    /// The operating mode.
    pub fn wifi_get_opmode() -> u8;
    /// Sets the station configuration without writing flash (the SDK copies it).
    pub fn wifi_station_set_config_current(config: *mut station_config) -> bool;
    /// The station configuration in use.
    pub fn wifi_station_get_config(config: *mut station_config) -> bool;
    /// The station configuration stored in flash (read only; ramkey uses it to find leftovers).
    pub fn wifi_station_get_config_default(config: *mut station_config) -> bool;
    /// Sets the soft-AP configuration without writing flash.
    pub fn wifi_softap_set_config_current(config: *mut softap_config) -> bool;
    /// Starts connecting with the station configuration.
    pub fn wifi_station_connect() -> bool;
    /// Disconnects (and stops retrying).
    pub fn wifi_station_disconnect() -> bool;
    /// Whether the SDK reconnects by itself after a disconnect.
    pub fn wifi_station_set_reconnect_policy(set: bool) -> bool;
    /// `STATION_*`.
    pub fn wifi_station_get_connect_status() -> u8;
    /// Scans; `done` receives the first `bss_info` of a list (valid only during the call) and a
    /// `SCAN_STATUS_*`.
    pub fn wifi_station_scan(
        config: *mut scan_config,
        done: Option<unsafe extern "C" fn(bss_list: *mut c_void, status: u32)>,
    ) -> bool;
    /// Registers the WiFi event handler.
    pub fn wifi_set_event_handler_cb(cb: Option<unsafe extern "C" fn(event: *mut System_Event_t)>);
    /// Starts the soft-AP DHCP server.
    pub fn wifi_softap_dhcps_start() -> bool;
    /// Stops the soft-AP DHCP server.
    pub fn wifi_softap_dhcps_stop() -> bool;
    /// Starts the station's DHCP client.
    pub fn wifi_station_dhcpc_start() -> bool;
    /// Stops the station's DHCP client.
    pub fn wifi_station_dhcpc_stop() -> bool;
    /// Sets an interface's address (`STATION_IF` / `SOFTAP_IF`).
    pub fn wifi_set_ip_info(if_index: u8, info: *mut ip_info) -> bool;
    /// An interface's address.
    pub fn wifi_get_ip_info(if_index: u8, info: *mut ip_info) -> bool;
    /// An interface's MAC address (6 bytes).
    pub fn wifi_get_macaddr(if_index: u8, macaddr: *mut u8) -> bool;

    // System.
    /// Reads `bytes` (a multiple of 4) of RTC memory from `block` into a 4-aligned buffer.
    pub fn system_rtc_mem_read(block: u8, buffer: *mut c_void, bytes: u16) -> bool;
    /// Writes RTC memory; same rules.
    pub fn system_rtc_mem_write(block: u8, buffer: *const c_void, bytes: u16) -> bool;
    /// Deep-sleeps for `time_in_us` (RTC memory is kept).
    pub fn system_deep_sleep(time_in_us: u64) -> bool;
    /// RF calibration option for the next wake (0, 1, 2 or 4).
    pub fn system_deep_sleep_set_option(option: u8) -> bool;
    /// Why the chip reset; a pointer to the SDK's static record.
    pub fn system_get_rst_info() -> *mut rst_info;
    /// Restarts (asynchronously, from the SDK's task).
    pub fn system_restart();
    /// Registers the function the SDK calls once its initialisation is done (after
    /// `user_init` returns). WiFi connections and scans must start from there, not `user_init`.
    pub fn system_init_done_cb(cb: Option<unsafe extern "C" fn()>);
    /// 0 silences the SDK's own prints.
    pub fn system_set_os_print(onoff: u8);
    /// The SDK version string.
    pub fn system_get_sdk_version() -> *const c_char;
    /// The chip id.
    pub fn system_get_chip_id() -> u32;
    /// Microseconds since boot (wraps).
    pub fn system_get_time() -> u32;
    /// Zeroed memory from the SDK's heap in DRAM (`os_zalloc`, include/mem.h); null when the
    /// heap has no block that large. `file` and `line` feed the SDK's leak tracing.
    pub fn pvPortZalloc(size: usize, file: *const c_char, line: u32) -> *mut c_void;
    /// Returns a block from [`pvPortZalloc`] to the heap (`os_free`); null is ignored.
    pub fn vPortFree(ptr: *mut c_void, file: *const c_char, line: u32);
    /// Registers the partition table (SDK 3.x requires it in `user_pre_init`).
    pub fn system_partition_table_regist(
        partition_table: *const partition_item_t,
        partition_num: u32,
        map: u32,
    ) -> bool;
    /// The registered flash size map.
    pub fn system_get_flash_size_map() -> u32;
    /// Registers a task at priority 0..=2 with an event queue.
    pub fn system_os_task(
        task: Option<unsafe extern "C" fn(event: *mut ETSEvent)>,
        prio: u8,
        queue: *mut ETSEvent,
        qlen: u8,
    ) -> bool;
    /// Posts an event to a task.
    pub fn system_os_post(prio: u8, sig: u32, par: u32) -> bool;
    /// Sets, clears, enables and disables GPIO outputs by bit mask (ROM `gpio_output_set`,
    /// include/gpio.h): a bit in `enable_mask` makes the pin an output, in `disable_mask` an
    /// input (released: with the IO_MUX pull-up, the line reads high).
    pub fn gpio_output_set(set_mask: u32, clear_mask: u32, enable_mask: u32, disable_mask: u32);
    /// The GPIO input levels, one bit per pin (ROM `gpio_input_get`).
    pub fn gpio_input_get() -> u32;
    /// Busy-waits `us` microseconds (ROM `ets_delay_us`, which `os_delay_us` names; SDK 3.x's
    /// osapi.h declares it with a 32-bit argument, older SDKs' `os_delay_us` with 16 bits).
    pub fn ets_delay_us(us: u32);
    /// The TOUT pin's ADC reading, 0..=1024.
    pub fn system_adc_read() -> u16;

    // Timers.
    /// Sets a (disarmed) timer's callback.
    pub fn ets_timer_setfn(
        ptimer: *mut ETSTimer,
        pfunction: Option<unsafe extern "C" fn(timer_arg: *mut c_void)>,
        parg: *mut c_void,
    );
    /// Arms a timer (`is_ms`: milliseconds, else microseconds).
    pub fn ets_timer_arm_new(ptimer: *mut ETSTimer, time: u32, repeat_flag: bool, is_ms: bool);
    /// Disarms a timer.
    pub fn ets_timer_disarm(ptimer: *mut ETSTimer);

    // espconn (lwIP).
    /// Starts listening (TCP).
    pub fn espconn_accept(espconn: *mut espconn) -> i8;
    /// Creates a UDP endpoint.
    pub fn espconn_create(espconn: *mut espconn) -> i8;
    /// Deletes a UDP endpoint or stops a listener.
    pub fn espconn_delete(espconn: *mut espconn) -> i8;
    /// Closes a TCP connection.
    pub fn espconn_disconnect(espconn: *mut espconn) -> i8;
    /// Connection callback.
    pub fn espconn_regist_connectcb(
        espconn: *mut espconn,
        cb: Option<unsafe extern "C" fn(arg: *mut c_void)>,
    ) -> i8;
    /// Receive callback.
    pub fn espconn_regist_recvcb(
        espconn: *mut espconn,
        cb: Option<unsafe extern "C" fn(arg: *mut c_void, data: *mut c_char, len: u16)>,
    ) -> i8;
    /// Sent callback.
    pub fn espconn_regist_sentcb(
        espconn: *mut espconn,
        cb: Option<unsafe extern "C" fn(arg: *mut c_void)>,
    ) -> i8;
    /// Disconnect callback.
    pub fn espconn_regist_disconcb(
        espconn: *mut espconn,
        cb: Option<unsafe extern "C" fn(arg: *mut c_void)>,
    ) -> i8;
    /// Error callback.
    pub fn espconn_regist_reconcb(
        espconn: *mut espconn,
        cb: Option<unsafe extern "C" fn(arg: *mut c_void, err: i8)>,
    ) -> i8;
    /// Idle timeout in seconds (`type_flag` 0: all connections, 1: this one).
    pub fn espconn_regist_time(espconn: *mut espconn, interval: u32, type_flag: u8) -> i8;
    /// Sends on a TCP connection.
    pub fn espconn_send(espconn: *mut espconn, data: *mut u8, len: u16) -> i8;
    /// Sends a UDP datagram.
    pub fn espconn_sendto(espconn: *mut espconn, data: *mut u8, len: u16) -> i16;
    /// The peer(s) of a connection: for a UDP endpoint inside its receive callback, the sender
    /// of the datagram being delivered. `*pcon_info` points into the SDK's memory.
    pub fn espconn_get_connection_info(
        pespconn: *mut espconn,
        pcon_info: *mut *mut remot_info,
        typeflags: u8,
    ) -> i8;
    /// How many connections a TCP server accepts at once.
    pub fn espconn_tcp_set_max_con_allow(espconn: *mut espconn, num: u8) -> i8;
    /// Stops the receive window from reopening (data is still delivered; the peer stalls once
    /// the window is used up).
    pub fn espconn_recv_hold(espconn: *mut espconn) -> i8;
    /// Reopens the receive window by what arrived while held.
    pub fn espconn_recv_unhold(espconn: *mut espconn) -> i8;
    /// Resets a TCP connection (RST); the disconnect callback follows.
    pub fn espconn_abort(espconn: *mut espconn) -> i8;
    /// Opens a TCP connection to `proto.tcp.remote_ip:remote_port`.
    pub fn espconn_connect(espconn: *mut espconn) -> i8;
    /// Resolves `hostname`: `ESPCONN_OK` with `addr` filled for a dotted address, else
    /// `ESPCONN_INPROGRESS` and `found(name, ip or NULL, arg = espconn)` later.
    pub fn espconn_gethostbyname(
        espconn: *mut espconn,
        hostname: *const c_char,
        addr: *mut ip_addr,
        found: Option<
            unsafe extern "C" fn(name: *const c_char, ip: *mut ip_addr, arg: *mut c_void),
        >,
    ) -> i8;

    // Flash.
    /// Erases a 4 KiB sector (`SPI_FLASH_RESULT_*`).
    pub fn spi_flash_erase_sector(sec: u16) -> u32;
    /// Writes 4-aligned bytes from a 4-aligned buffer.
    pub fn spi_flash_write(des_addr: u32, src_addr: *mut u32, size: u32) -> u32;
    /// Reads 4-aligned bytes into a 4-aligned buffer.
    pub fn spi_flash_read(src_addr: u32, des_addr: *mut u32, size: u32) -> u32;

    // UART.
    /// Writes one character to UART0. A ROM routine (`eagle.rom.addr.v6.ld`); no SDK header
    /// declares it, and its return value is not used.
    pub fn ets_putc(c: c_char);
    /// Sets a UART's clock divisor (`UART_CLK_FREQ / baud`, 80 MHz / baud). Declared in
    /// `user_interface.h`; SDK 3.x links it from `libmain` (the ROM script does not provide it).
    pub fn uart_div_modify(uart_no: u8, divisor: u32);

    // Called by the SDK's own libraries, never by ramkey (docs/sdk-model.md, M22-M25): with
    // `PmkCurrent` set they copy the station config, PMK and BSSID into the stored block and
    // save it. Declared so that the link's `--wrap` targets and the emulated SDK share one
    // signature.
    /// Caches the PMK just derived (libwpa `wpa_set_bss`).
    pub fn wifi_station_save_pmk2cache();
    /// Stores the BSSID of the access point joined (libwpa `eagle_auth_done`).
    pub fn wifi_station_save_bssid();
    /// Stores the channel of the access point joined (libwpa `eagle_auth_done`).
    pub fn wifi_station_save_ap_channel(channel: u8);
}

/// The SDK's parameter block (`docs/sdk-model.md`, M2-M5): field offsets in the 0x4A4-byte
/// block the SDK keeps in RAM and, in turn, in the two data sectors of the last three flash
/// sectors, with a 32-byte flag record in the third. Read from the disassembly of SDK 3.0.6-dev
/// (no SDK header declares any of it); each offset's evidence is in M2's table.
pub mod param {
    /// Bytes in the block.
    pub const BLOCK_LEN: usize = 0x4A4;
    /// Current opmode (RAM) or stored opmode (flash); 0xFF = blank.
    pub const OPMODE: usize = 0x008;
    /// Station SSID length (u32; 0xFFFFFFFF = erased).
    pub const STA_SSID_LEN: usize = 0x00C;
    /// Station SSID (32 bytes).
    pub const STA_SSID: usize = 0x010;
    /// Non-zero: derive the station PMK again before connecting.
    pub const STA_PMK_INVALID: usize = 0x036;
    /// Station password (64 bytes, then a NUL).
    pub const STA_PASSWORD: usize = 0x037;
    /// Station PMK (32 bytes).
    pub const STA_PMK: usize = 0x078;
    /// Station channel.
    pub const STA_CHANNEL: usize = 0x098;
    /// Station WEP key (16 bytes, parsed from the password).
    pub const STA_WEP_KEY: usize = 0x099;
    /// Station `bssid_set`.
    pub const STA_BSSID_SET: usize = 0x0A9;
    /// Station BSSID (6 bytes).
    pub const STA_BSSID: usize = 0x0AA;
    /// Bytes from [`STA_SSID_LEN`] that the SDK's save functions copy (M22, M23).
    pub const STA_PART_LEN: usize = 164;
    /// SoftAP SSID length (u32).
    pub const AP_SSID_LEN: usize = 0x0B0;
    /// SoftAP SSID (32 bytes).
    pub const AP_SSID: usize = 0x0B4;
    /// SoftAP password (64 bytes, then a NUL).
    pub const AP_PASSWORD: usize = 0x0D4;
    /// SoftAP PMK (32 bytes).
    pub const AP_PMK: usize = 0x115;
    /// SoftAP channel.
    pub const AP_CHANNEL: usize = 0x135;
    /// SoftAP auth mode.
    pub const AP_AUTH: usize = 0x136;
    /// SoftAP hidden flag.
    pub const AP_HIDDEN: usize = 0x137;
    /// SoftAP max connections.
    pub const AP_MAX_CONN: usize = 0x138;
    /// Slots of the AP cache in use (1..5).
    pub const CACHE_SIZE: usize = 0x13C;
    /// Index of the current AP-cache slot.
    pub const CURRENT_AP: usize = 0x13D;
    /// AP-cache slots.
    pub const SLOTS: usize = 5;
    /// Slot `i`'s SSID length is at `SLOT_SSID_LEN + i * SLOT_STRIDE` (u32).
    pub const SLOT_SSID_LEN: usize = 0x140;
    /// Slot SSIDs (32 bytes each, `SLOT_STRIDE` apart; 0xFF in byte 0: a free slot).
    pub const SLOT_SSID: usize = 0x144;
    /// Slot passwords (64 bytes each, `SLOT_STRIDE` apart).
    pub const SLOT_PASSWORD: usize = 0x164;
    /// Distance between slots' SSID and password records.
    pub const SLOT_STRIDE: usize = 100;
    /// Auto-connect (non-zero, 0xFF included, reads as on).
    pub const AUTO_CONNECT: usize = 0x340;
    /// Slot `bssid_set` bytes (`SLOT_BSSID_STRIDE` apart).
    pub const SLOT_BSSID_SET: usize = 0x348;
    /// Slot BSSIDs (6 bytes each, `SLOT_BSSID_STRIDE` apart).
    pub const SLOT_BSSID: usize = 0x349;
    /// Distance between slots' BSSID records.
    pub const SLOT_BSSID_STRIDE: usize = 7;
    /// SoftAP beacon interval (u16).
    pub const AP_BEACON: usize = 0x36C;
    /// Slot PMK cache (32 bytes each; 0xFF in byte 0: none).
    pub const SLOT_PMK: usize = 0x3E4;
    /// The station MAC the block was saved with (6 bytes); a mismatch makes the boot save.
    pub const MAC_BACKUP: usize = 0x492;
    /// Slot channels (one byte each).
    pub const SLOT_CHANNEL: usize = 0x49B;
    /// Flag record: size, magics (at +4 and +28), and the offsets of the per-sector length
    /// and checksum words (sector `n` at `+ 4 * n`).
    pub const FLAG_LEN: usize = 32;
    /// First magic of the flag record (at +4).
    pub const FLAG_MAGIC_1: u32 = 0x55AA_55AA;
    /// Second magic (at +28).
    pub const FLAG_MAGIC_2: u32 = 0xAA55_AA55;
    /// Offset of sector 0's checksum length word (always 32); sector 1's follows.
    pub const FLAG_LEN_WORDS: usize = 12;
    /// Offset of sector 0's checksum word; sector 1's follows.
    pub const FLAG_CHECKSUM_WORDS: usize = 20;
    /// Bytes at the block's start that the checksum covers.
    pub const CHECKSUM_LEN: usize = 32;
    /// The checksum's start value (an XOR over [`CHECKSUM_LEN`] bytes).
    pub const CHECKSUM_SEED: u8 = 0xEF;
}

/// The SDK's flash calls, routed through ramkey's flash firewall by the link (`--wrap`): every
/// reference to `NAME` in any object, the SDK's libraries included, resolves to
/// `__wrap_NAME` in the firmware.
pub const FIREWALLED: [&str; 3] = [
    "spi_flash_write",
    "spi_flash_erase_sector",
    "spi_flash_read",
];

/// The SDK functions that persist connection results behind the application's back
/// (docs/sdk-model.md, M22-M25), wrapped by the link so that ramkey decides whether they run.
pub const SDK_SAVES: [&str; 3] = [
    "wifi_station_save_pmk2cache",
    "wifi_station_save_bssid",
    "wifi_station_save_ap_channel",
];

// The originals of wrapped functions, by the names `--wrap` gives them (`__real_NAME`). They
// exist only in a link that wraps `NAME`; only the firmware's wrappers call them.
unsafe extern "C" {
    /// The SDK's own `spi_flash_erase_sector`.
    pub fn __real_spi_flash_erase_sector(sec: u16) -> u32;
    /// The SDK's own `spi_flash_write`.
    pub fn __real_spi_flash_write(des_addr: u32, src_addr: *mut u32, size: u32) -> u32;
    /// The SDK's own `spi_flash_read`.
    pub fn __real_spi_flash_read(src_addr: u32, des_addr: *mut u32, size: u32) -> u32;
}

// ---------------------------------------------------------------------------------------------
// Layout checks
// ---------------------------------------------------------------------------------------------

/// Layouts that do not depend on the pointer width: asserted on every target, the host included.
const _: () = {
    use core::mem::{align_of, offset_of, size_of};

    assert!(size_of::<wifi_fast_scan_threshold_t>() == 8);
    assert!(offset_of!(wifi_fast_scan_threshold_t, rssi) == 0);
    assert!(offset_of!(wifi_fast_scan_threshold_t, authmode) == 4);

    assert!(size_of::<station_config>() == 116);
    assert!(offset_of!(station_config, ssid) == 0);
    assert!(offset_of!(station_config, password) == 32);
    assert!(offset_of!(station_config, channel) == 96);
    assert!(offset_of!(station_config, bssid_set) == 97);
    assert!(offset_of!(station_config, bssid) == 98);
    assert!(offset_of!(station_config, threshold) == 104);
    assert!(offset_of!(station_config, open_and_wep_mode_disable) == 112);
    assert!(offset_of!(station_config, all_channel_scan) == 113);

    assert!(size_of::<softap_config>() == 108);
    assert!(offset_of!(softap_config, ssid) == 0);
    assert!(offset_of!(softap_config, password) == 32);
    assert!(offset_of!(softap_config, ssid_len) == 96);
    assert!(offset_of!(softap_config, channel) == 97);
    assert!(offset_of!(softap_config, authmode) == 100);
    assert!(offset_of!(softap_config, ssid_hidden) == 104);
    assert!(offset_of!(softap_config, max_connection) == 105);
    assert!(offset_of!(softap_config, beacon_interval) == 106);

    assert!(size_of::<wifi_active_scan_time_t>() == 8);
    assert!(size_of::<wifi_scan_time_t>() == 8);

    assert!(size_of::<ip_addr>() == 4);
    assert!(size_of::<ip_info>() == 12);
    assert!(offset_of!(ip_info, ip) == 0);
    assert!(offset_of!(ip_info, netmask) == 4);
    assert!(offset_of!(ip_info, gw) == 8);

    assert!(size_of::<Event_StaMode_Connected_t>() == 40);
    assert!(offset_of!(Event_StaMode_Connected_t, ssid_len) == 32);
    assert!(offset_of!(Event_StaMode_Connected_t, bssid) == 33);
    assert!(offset_of!(Event_StaMode_Connected_t, channel) == 39);
    assert!(size_of::<Event_StaMode_Disconnected_t>() == 40);
    assert!(offset_of!(Event_StaMode_Disconnected_t, ssid_len) == 32);
    assert!(offset_of!(Event_StaMode_Disconnected_t, bssid) == 33);
    assert!(offset_of!(Event_StaMode_Disconnected_t, reason) == 39);
    assert!(size_of::<Event_StaMode_AuthMode_Change_t>() == 2);
    assert!(size_of::<Event_StaMode_Got_IP_t>() == 12);
    assert!(offset_of!(Event_StaMode_Got_IP_t, ip) == 0);
    assert!(offset_of!(Event_StaMode_Got_IP_t, mask) == 4);
    assert!(offset_of!(Event_StaMode_Got_IP_t, gw) == 8);
    assert!(size_of::<Event_SoftAPMode_StaConnected_t>() == 7);
    assert!(offset_of!(Event_SoftAPMode_StaConnected_t, aid) == 6);
    assert!(size_of::<Event_SoftAPMode_Distribute_Sta_IP_t>() == 16);
    assert!(offset_of!(Event_SoftAPMode_Distribute_Sta_IP_t, ip) == 8);
    assert!(offset_of!(Event_SoftAPMode_Distribute_Sta_IP_t, aid) == 12);
    assert!(size_of::<Event_SoftAPMode_ProbeReqRecved_t>() == 12);
    assert!(offset_of!(Event_SoftAPMode_ProbeReqRecved_t, mac) == 4);
    assert!(size_of::<Event_OpMode_Change_t>() == 2);
    assert!(size_of::<Event_Info_u>() == 40);
    assert!(align_of::<Event_Info_u>() == 4);
    assert!(size_of::<System_Event_t>() == 44);
    assert!(offset_of!(System_Event_t, event) == 0);
    assert!(offset_of!(System_Event_t, event_info) == 4);

    assert!(size_of::<rst_info>() == 28);
    assert!(offset_of!(rst_info, reason) == 0);
    assert!(offset_of!(rst_info, exccause) == 4);
    assert!(offset_of!(rst_info, epc1) == 8);
    assert!(offset_of!(rst_info, epc2) == 12);
    assert!(offset_of!(rst_info, epc3) == 16);
    assert!(offset_of!(rst_info, excvaddr) == 20);
    assert!(offset_of!(rst_info, depc) == 24);

    assert!(size_of::<ETSEvent>() == 8);
    assert!(offset_of!(ETSEvent, sig) == 0);
    assert!(offset_of!(ETSEvent, par) == 4);

    assert!(size_of::<esp_udp>() == 16);
    assert!(offset_of!(esp_udp, remote_port) == 0);
    assert!(offset_of!(esp_udp, local_port) == 4);
    assert!(offset_of!(esp_udp, local_ip) == 8);
    assert!(offset_of!(esp_udp, remote_ip) == 12);

    assert!(size_of::<partition_item_t>() == 12);
    assert!(offset_of!(partition_item_t, type_) == 0);
    assert!(offset_of!(partition_item_t, addr) == 4);
    assert!(offset_of!(partition_item_t, size) == 8);
};

/// Layouts with pointers: the SDK's numbers hold only where pointers are 32 bits (the lx106).
#[cfg(target_pointer_width = "32")]
const _: () = {
    use core::mem::{offset_of, size_of};

    assert!(size_of::<bss_info>() == 80);
    assert!(offset_of!(bss_info, next) == 0);
    assert!(offset_of!(bss_info, bssid) == 4);
    assert!(offset_of!(bss_info, ssid) == 10);
    assert!(offset_of!(bss_info, ssid_len) == 42);
    assert!(offset_of!(bss_info, channel) == 43);
    assert!(offset_of!(bss_info, rssi) == 44);
    assert!(offset_of!(bss_info, authmode) == 48);
    assert!(offset_of!(bss_info, is_hidden) == 52);
    assert!(offset_of!(bss_info, freq_offset) == 54);
    assert!(offset_of!(bss_info, freqcal_val) == 56);
    assert!(offset_of!(bss_info, esp_mesh_ie) == 60);
    assert!(offset_of!(bss_info, simple_pair) == 64);
    assert!(offset_of!(bss_info, pairwise_cipher) == 68);
    assert!(offset_of!(bss_info, group_cipher) == 72);
    assert!(offset_of!(bss_info, phy_bits) == 76);

    assert!(size_of::<scan_config>() == 24);
    assert!(offset_of!(scan_config, ssid) == 0);
    assert!(offset_of!(scan_config, bssid) == 4);
    assert!(offset_of!(scan_config, channel) == 8);
    assert!(offset_of!(scan_config, show_hidden) == 9);
    assert!(offset_of!(scan_config, scan_type) == 12);
    assert!(offset_of!(scan_config, scan_time) == 16);

    assert!(size_of::<ETSTimer>() == 20);
    assert!(offset_of!(ETSTimer, timer_next) == 0);
    assert!(offset_of!(ETSTimer, timer_expire) == 4);
    assert!(offset_of!(ETSTimer, timer_period) == 8);
    assert!(offset_of!(ETSTimer, timer_func) == 12);
    assert!(offset_of!(ETSTimer, timer_arg) == 16);

    assert!(size_of::<espconn_proto>() == 4);
    assert!(size_of::<remot_info>() == 12);
    assert!(offset_of!(remot_info, remote_port) == 4);
    assert!(offset_of!(remot_info, remote_ip) == 8);
    assert!(size_of::<espconn>() == 28);
    assert!(offset_of!(espconn, type_) == 0);
    assert!(offset_of!(espconn, state) == 4);
    assert!(offset_of!(espconn, proto) == 8);
    assert!(offset_of!(espconn, recv_callback) == 12);
    assert!(offset_of!(espconn, sent_callback) == 16);
    assert!(offset_of!(espconn, link_cnt) == 20);
    assert!(offset_of!(espconn, reverse) == 24);

    assert!(size_of::<esp_tcp>() == 32);
    assert!(offset_of!(esp_tcp, local_ip) == 8);
    assert!(offset_of!(esp_tcp, remote_ip) == 12);
    assert!(offset_of!(esp_tcp, connect_callback) == 16);
    assert!(offset_of!(esp_tcp, reconnect_callback) == 20);
    assert!(offset_of!(esp_tcp, disconnect_callback) == 24);
    assert!(offset_of!(esp_tcp, write_finish_fn) == 28);
};

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};

    /// Structs without pointers have the SDK's layout on any target, the host included (the
    /// same numbers are also checked at compile time; this makes `cargo test` report them).
    #[test]
    fn pointer_free_layouts_match_the_sdk_everywhere() {
        assert_eq!(size_of::<station_config>(), 116);
        assert_eq!(offset_of!(station_config, threshold), 104);
        assert_eq!(offset_of!(station_config, all_channel_scan), 113);
        assert_eq!(size_of::<softap_config>(), 108);
        assert_eq!(offset_of!(softap_config, authmode), 100);
        assert_eq!(offset_of!(softap_config, beacon_interval), 106);
        assert_eq!(size_of::<rst_info>(), 28);
        assert_eq!(size_of::<ip_info>(), 12);
        assert_eq!(size_of::<partition_item_t>(), 12);
        assert_eq!(size_of::<ETSEvent>(), 8);
        assert_eq!(size_of::<esp_udp>(), 16);
        assert_eq!(size_of::<System_Event_t>(), 44);
        assert_eq!(offset_of!(System_Event_t, event_info), 4);
        assert_eq!(offset_of!(Event_StaMode_Disconnected_t, reason), 39);
        assert_eq!(offset_of!(Event_SoftAPMode_Distribute_Sta_IP_t, aid), 12);
    }

    /// The threshold's RSSI sits in the first byte and its auth mode in the following word:
    /// writing through the Rust fields lands on the bytes the SDK reads.
    #[test]
    fn station_config_fields_land_on_the_sdks_bytes() {
        let mut config = station_config {
            ssid: [0; 32],
            password: [0; 64],
            channel: 0,
            bssid_set: 0,
            bssid: [0; 6],
            threshold: wifi_fast_scan_threshold_t {
                rssi: -70,
                authmode: AUTH_WPA2_PSK,
            },
            open_and_wep_mode_disable: 1,
            all_channel_scan: 0,
        };
        config.ssid[0] = b'a';
        config.password[63] = b'z';
        let base = (&raw const config).cast::<u8>();
        // SAFETY: every offset read is inside the 116-byte struct and belongs to a field (the
        // padding bytes 105..108 and 114..116 are never read).
        let byte = |offset: usize| unsafe { base.add(offset).read() };
        assert_eq!(byte(0), b'a');
        assert_eq!(byte(95), b'z');
        assert_eq!(byte(104), (-70i8) as u8);
        assert_eq!(
            u32::from_ne_bytes([byte(108), byte(109), byte(110), byte(111)]),
            3
        );
        assert_eq!(byte(112), 1);
    }

    /// The payloads sit at offset 4 of the event, whichever union member is read.
    #[test]
    fn event_payloads_start_after_the_event_id() {
        let event = System_Event_t {
            event: EVENT_SOFTAPMODE_STACONNECTED,
            event_info: Event_Info_u {
                sta_connected: Event_SoftAPMode_StaConnected_t {
                    mac: [1, 2, 3, 4, 5, 6],
                    aid: 7,
                },
            },
        };
        let base = (&raw const event).cast::<u8>();
        // SAFETY: offset 4 + 7 bytes is inside the 44-byte event; those bytes were written.
        let mac_and_aid = unsafe { core::slice::from_raw_parts(base.add(4), 7) };
        assert_eq!(mac_and_aid, &[1, 2, 3, 4, 5, 6, 7]);
    }

    /// Constants that index SDK tables or arrive in events keep the SDK's values.
    #[test]
    fn constants_keep_the_sdks_values() {
        assert_eq!(
            [
                NULL_MODE,
                STATION_MODE,
                SOFTAP_MODE,
                STATIONAP_MODE,
                STATION_IF,
                SOFTAP_IF
            ],
            [0, 1, 2, 3, 0, 1]
        );
        assert_eq!(EVENT_SOFTAPMODE_DISTRIBUTE_STA_IP, 9);
        assert_eq!(REASON_EXT_SYS_RST, 6);
        assert_eq!(SYSTEM_PARTITION_CUSTOMER_BEGIN, 100);
        assert_eq!(FLASH_SIZE_32M_MAP_512_512, 4);
        assert_eq!(FLASH_SIZE_32M_MAP_1024_1024, 6);
        assert_eq!((ESPCONN_TCP, ESPCONN_UDP), (0x10, 0x20));
        assert_eq!(
            usize::from(RTC_USER_LAST_BLOCK - RTC_USER_FIRST_BLOCK + 1) * 4,
            512
        );
    }
}
