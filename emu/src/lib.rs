//! The emulated SDK: ramkey's own stand-in for the ESP8266 NONOS SDK, for QEMU's `sim` machine.
//!
//! `cargo xtask build` links the firmware against this crate when no SDK checkout is given.
//! It implements, with the SDK's C names and signatures (checked against `wifi-sys` at
//! compile time), the SDK functions the firmware calls: start-up (`user_pre_init`, then
//! `user_init`, then posted tasks and timers on a virtual clock), the console, reset
//! information and the partition table. Console and exit go through QEMU semihosting.
//!
//! It is test infrastructure, never part of a flashable image. It must behave like the SDK
//! where the firmware can observe it, and say `emu:` on every line it prints itself so the
//! tests can tell its lines from the firmware's. On the host this crate is empty.
#![no_std]

#[cfg(target_arch = "xtensa")]
mod bridge;
#[cfg(target_arch = "xtensa")]
mod flash;
#[cfg(target_arch = "xtensa")]
mod gpio;
#[cfg(target_arch = "xtensa")]
mod harness;
#[cfg(target_arch = "xtensa")]
mod heap;
pub mod i2c_bus;
#[cfg(target_arch = "xtensa")]
mod net;
#[cfg(target_arch = "xtensa")]
mod param;
#[cfg(target_arch = "xtensa")]
mod rtc;
#[cfg(target_arch = "xtensa")]
mod scheduler;
#[cfg(target_arch = "xtensa")]
mod sdk;
#[cfg(target_arch = "xtensa")]
mod semihosting;
#[cfg(target_arch = "xtensa")]
mod wifi;

// The firmware is linked into the same program: this pulls in its entry points.
#[cfg(target_arch = "xtensa")]
extern crate ramkey;

/// Checks that an emulated function has exactly the signature `wifi-sys` declares for it.
///
/// Both the declaration in `wifi-sys` and the definition here must coerce to the same
/// function pointer type, or the crate does not compile.
#[cfg(target_arch = "xtensa")]
macro_rules! emulate {
    ($(#[$meta:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        #[unsafe(no_mangle)]
        // A recognisable section name, so size reports can tell the emulator from ramkey.
        #[unsafe(link_section = concat!(".text.ramkey_emu.", stringify!($name)))]
        pub extern "C" fn $name($($arg: $ty),*) $(-> $ret)? $body

        const _: () = {
            let _declared: unsafe extern "C" fn($($ty),*) $(-> $ret)? = wifi_sys::$name;
            let _defined: unsafe extern "C" fn($($ty),*) $(-> $ret)? = $name;
        };
    };
}
#[cfg(target_arch = "xtensa")]
pub(crate) use emulate;

/// Like [`emulate!`], for an SDK function that the firmware's link may wrap (`--wrap`): the
/// definition is named `ramkey_emu_sdk_NAME`, and `ld/ramkey-emu.ld` gives it the SDK's name.
/// Every caller, the emulated SDK included, calls it by the SDK name through `wifi-sys`, an
/// undefined reference in the Rust object: exactly what `--wrap` redirects.
#[cfg(target_arch = "xtensa")]
macro_rules! emulate_wrappable {
    ($(#[$meta:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        #[unsafe(export_name = concat!("ramkey_emu_sdk_", stringify!($name)))]
        #[unsafe(link_section = concat!(".text.ramkey_emu.", stringify!($name)))]
        extern "C" fn $name($($arg: $ty),*) $(-> $ret)? $body

        const _: () = {
            let _declared: unsafe extern "C" fn($($ty),*) $(-> $ret)? = wifi_sys::$name;
            let _defined: unsafe extern "C" fn($($ty),*) $(-> $ret)? = $name;
        };
    };
}
#[cfg(target_arch = "xtensa")]
pub(crate) use emulate_wrappable;
