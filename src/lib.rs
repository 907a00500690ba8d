//! ramkey: ESP8266 firmware that keeps WiFi credentials in RTC memory, never in flash.
//!
//! This crate is two things at once:
//! - on the host, a `no_std` library of portable logic (RTC record, boot decision, flash
//!   layout, ...) with no SDK types in its API, tested with plain `cargo test`;
//! - on the lx106 target, the firmware: the `firmware` module adds the SDK entry points
//!   (`user_pre_init`, `user_init`) and the thin glue over `wifi-sys`.
//!
//! Portable modules forbid `unsafe`; only the target glue may use it.
#![no_std]
#![cfg_attr(not(target_arch = "xtensa"), forbid(unsafe_code))]

#[cfg(test)]
extern crate std;

// Logging comes first so that its macros are visible in every module below.
#[macro_use]
pub mod log;

pub mod boot;
pub mod discovery;
pub mod dns;
pub mod firewall;
pub mod flash_layout;
pub mod flash_text;
pub mod i2c;
pub mod identity;
pub mod mqtt;
pub mod pins;
pub mod portal;
pub mod psk;
pub mod readings;
pub mod report;
pub mod rtc_layout;
pub mod rtc_record;
pub mod secret;
pub mod selftest;
pub mod sensors;
pub mod settings;

#[cfg(target_arch = "xtensa")]
mod firmware;

/// Values fixed when the firmware is built (written by `build.rs`).
pub mod build_config {
    include!(concat!(env!("OUT_DIR"), "/build_config.rs"));
}
