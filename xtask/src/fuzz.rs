//! `cargo xtask fuzz [--seconds N]`: runs every cargo-fuzz target in `fuzz/` for N seconds.
//!
//! The targets are the `[[bin]]` entries of `fuzz/Cargo.toml`. cargo-fuzz is installed from
//! crates.io when missing. A crash fails the run and leaves its input in
//! `fuzz/artifacts/<target>/` for `cargo +nightly fuzz run <target> <file>`.

use std::process::Command;

use crate::util;

/// Fuzz target names from `fuzz/Cargo.toml`.
pub fn targets() -> Result<Vec<String>, String> {
    let manifest = util::root().join("fuzz/Cargo.toml");
    let text =
        std::fs::read_to_string(&manifest).map_err(|e| format!("{}: {e}", manifest.display()))?;
    let mut names = Vec::new();
    let mut in_bin = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
        } else if in_bin
            && let Some(value) = line
                .strip_prefix("name")
                .map(str::trim)
                .and_then(|v| v.strip_prefix('='))
        {
            names.push(value.trim().trim_matches('"').to_owned());
        }
    }
    if names.is_empty() {
        return Err(format!("no [[bin]] fuzz targets in {}", manifest.display()));
    }
    Ok(names)
}

fn ensure_cargo_fuzz() -> Result<(), String> {
    if util::run(Command::new("cargo").args(["fuzz", "--version"])).is_ok() {
        return Ok(());
    }
    println!("setup: installing cargo-fuzz");
    util::run(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"])).map(|_| ())
}

/// Runs every target for `seconds`; returns the targets and their executions.
pub fn run_all(seconds: u32) -> Result<Vec<(String, String)>, String> {
    ensure_cargo_fuzz()?;
    let mut results = Vec::new();
    for target in targets()? {
        let output = Command::new("cargo")
            .current_dir(util::root().join("fuzz"))
            .args(["fuzz", "run", &target, "--"])
            .arg(format!("-max_total_time={seconds}"))
            .output()
            .map_err(|e| format!("cannot run cargo fuzz: {e}"))?;
        let log = String::from_utf8_lossy(&output.stderr).into_owned();
        if !output.status.success() {
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            return Err(format!(
                "fuzz target {target} failed:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ));
        }
        let runs = log
            .lines()
            .rev()
            .find_map(|l| {
                l.split("Done ")
                    .nth(1)
                    .map(|r| r.split(" runs").next().unwrap_or(r).to_owned())
            })
            .unwrap_or_else(|| "?".to_owned());
        results.push((target, runs));
    }
    Ok(results)
}

/// `cargo xtask fuzz [--seconds N]`.
pub fn command(args: &[String]) -> Result<(), String> {
    let seconds = match args {
        [] => 60,
        [flag, value] if flag == "--seconds" => value
            .parse()
            .map_err(|_| format!("bad --seconds {value:?}"))?,
        _ => return Err("usage: cargo xtask fuzz [--seconds N]".to_owned()),
    };
    for (target, runs) in run_all(seconds)? {
        println!("{target}: {runs} runs in {seconds} s, no crash");
    }
    Ok(())
}
