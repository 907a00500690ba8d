//! Build script of the firmware crate: build-time configuration, nothing else.
//!
//! - `RAMKEY_FLASH_SIZE` (`1MB`, `2MB`, `4MB`; default `4MB`) picks the partition table that
//!   `user_pre_init` registers. `cargo xtask build --flash-size` sets it.
//! - Declares the linker scripts in `ld/` as inputs, so editing one rebuilds.
//!
//! It never reads the SDK: the SDK only matters to the link, which `cargo xtask` performs.

use std::env;
use std::fs;
use std::path::PathBuf;

fn main() {
    println!("cargo::rerun-if-env-changed=RAMKEY_FLASH_SIZE");
    println!("cargo::rerun-if-changed=build.rs");
    for entry in fs::read_dir("ld").into_iter().flatten().flatten() {
        println!("cargo::rerun-if-changed={}", entry.path().display());
    }
    println!("cargo::rerun-if-changed=src/firmware/atomics.S");

    let size = env::var("RAMKEY_FLASH_SIZE").unwrap_or_else(|_| "4MB".to_owned());
    let variant = match size.as_str() {
        "1MB" => "OneMiB",
        "2MB" => "TwoMiB",
        "4MB" => "FourMiB",
        other => {
            println!("cargo::error=RAMKEY_FLASH_SIZE={other:?} is not one of 1MB, 2MB, 4MB");
            return;
        }
    };
    let profile = if env::var_os("CARGO_FEATURE_PRODUCTION").is_some() {
        "production"
    } else {
        "development"
    };
    let version = env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let config = format!(
        "/// Flash size chosen at build time (`RAMKEY_FLASH_SIZE`).\n\
         pub const FLASH_SIZE: crate::flash_layout::FlashSize = \
         crate::flash_layout::FlashSize::{variant};\n\
         /// `development` or `production`.\n\
         pub const PROFILE: &str = \"{profile}\";\n\
         /// The marker string placed in the image (see `firmware::BUILD_INFO`).\n\
         pub const BUILD_INFO: &str = \"ramkey-build-info: version={version} profile={profile} flash={size}\\0\";\n"
    );
    fs::write(out.join("build_config.rs"), config).expect("OUT_DIR is writable");
}
