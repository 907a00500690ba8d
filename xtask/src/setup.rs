//! Installs what a fresh machine lacks, or says exactly what to run.
//!
//! Debian packages are installed with apt-get when running as root; otherwise the command is
//! printed and the step fails. `rust-src` is added with rustup (the machines set
//! RUSTUP_AUTO_INSTALL=0, so `rust-toolchain.toml` alone does not fetch it). esptool goes in a
//! virtualenv under `target/`, never system-wide.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::util::{self, have};

/// Debian packages the cross build needs, with the program that proves each is there.
const BUILD_PACKAGES: [(&str, &str); 2] = [
    ("gcc-xtensa-lx106", "xtensa-lx106-elf-gcc"),
    ("binutils-xtensa-lx106", "xtensa-lx106-elf-as"),
];
const QEMU_PACKAGE: (&str, &str) = ("qemu-system-misc", "qemu-system-xtensa");
const VENV_PACKAGE: &str = "python3-venv";
/// Debian's Chromium for the browser test, and Node.js to drive it (Playwright).
const BROWSER_PACKAGES: [(&str, &str); 3] =
    [("chromium", "chromium"), ("nodejs", "node"), ("npm", "npm")];

/// A real MQTT broker and its clients (`mosquitto_passwd`, `mosquitto_sub`) for the report
/// tests.
const MOSQUITTO_PACKAGES: [(&str, &str); 2] = [
    ("mosquitto", "mosquitto_passwd"),
    ("mosquitto-clients", "mosquitto_sub"),
];

/// A real DNS client for the bridged tests of the captive DNS.
const DIG_PACKAGE: (&str, &str) = ("bind9-dnsutils", "dig");

static APT_UPDATED: AtomicBool = AtomicBool::new(false);

fn is_root() -> bool {
    util::run(Command::new("id").arg("-u")).is_ok_and(|out| out.trim() == "0")
}

fn apt_install(packages: &[&str]) -> Result<(), String> {
    if packages.is_empty() {
        return Ok(());
    }
    let list = packages.join(" ");
    if !is_root() {
        return Err(format!(
            "missing Debian packages; run: sudo apt-get update && sudo apt-get install -y {list}"
        ));
    }
    println!("setup: installing {list}");
    if !APT_UPDATED.swap(true, Ordering::SeqCst) {
        util::run(Command::new("apt-get").args(["update", "-q"]))?;
    }
    util::run(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(packages),
    )
    .map(|_| ())
}

fn ensure_packages(wanted: &[(&str, &str)]) -> Result<(), String> {
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|(_, program)| !have(program))
        .map(|(package, _)| *package)
        .collect();
    apt_install(&missing)
}

fn ensure_rust_src() -> Result<(), String> {
    let sysroot = util::run(
        Command::new("rustc")
            .current_dir(util::root())
            .args(["--print", "sysroot"]),
    )?;
    let library = PathBuf::from(sysroot.trim()).join("lib/rustlib/src/rust/library/core");
    if library.exists() {
        return Ok(());
    }
    println!("setup: adding the rust-src component");
    util::run(Command::new("rustup").current_dir(util::root()).args([
        "component",
        "add",
        "rust-src",
    ]))
    .map(|_| ())
}

/// The cross toolchain: GNU binutils and gcc for the lx106, and rust-src for build-std.
pub fn ensure_build_tools() -> Result<(), String> {
    ensure_packages(&BUILD_PACKAGES)?;
    ensure_rust_src()
}

/// QEMU with the lx106 CPU.
pub fn ensure_qemu() -> Result<(), String> {
    ensure_packages(&[QEMU_PACKAGE])
}

/// esptool in `target/esptool-venv`; returns the path of its executable.
pub fn ensure_esptool() -> Result<PathBuf, String> {
    let venv = util::root().join("target").join("esptool-venv");
    if !venv.join("bin").join("python").exists() {
        let probe = Command::new("python3")
            .args(["-c", "import ensurepip, venv"])
            .status();
        if !probe.is_ok_and(|s| s.success()) {
            apt_install(&[VENV_PACKAGE])?;
        }
    }
    crate::image::ensure_esptool(&venv)
}

/// Chromium, Node.js and the browser test's npm packages (`tests/browser/node_modules`,
/// from its committed lock file).
pub fn ensure_browser() -> Result<(), String> {
    ensure_packages(&BROWSER_PACKAGES)?;
    let dir = util::root().join("tests").join("browser");
    if dir.join("node_modules").join("playwright-core").exists() {
        return Ok(());
    }
    println!("setup: npm ci in tests/browser");
    util::run(
        Command::new("npm")
            .current_dir(&dir)
            .args(["ci", "--no-audit", "--no-fund"]),
    )
    .map(|_| ())
}

/// Mosquitto and its command-line clients, for the report tests.
pub fn ensure_mosquitto() -> Result<(), String> {
    ensure_packages(&MOSQUITTO_PACKAGES)
}

/// `dig`, for the captive DNS tests.
pub fn ensure_dig() -> Result<(), String> {
    ensure_packages(&[DIG_PACKAGE])
}

/// Everything `cargo xtask test` uses.
pub fn ensure_all() -> Result<PathBuf, String> {
    ensure_build_tools()?;
    ensure_qemu()?;
    ensure_esptool()
}
