//! Boots a firmware ELF on QEMU's `sim` machine with the lx106 CPU and semihosting.
//!
//! The emulated SDK reads its settings (reset reason, ...) from a mailbox that QEMU loads
//! into memory before the ELF; see `emu/src/harness.rs` for the layout.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use ramkey::flash_layout::FlashSize;

use crate::util;

/// Mailbox address and format, shared with `emu/src/harness.rs`.
const MAILBOX_ADDRESS: u32 = 0x6000_3000;
const MAILBOX_MAGIC: u32 = 0x4D45_4B52;
const MAILBOX_VERSION: u32 = 3;

/// One boot's settings.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// `rst_info.reason` the SDK reports (0 power-on ... 6 external reset).
    pub reset_reason: u32,
    /// Wall-clock limit for the run (the emulator's virtual clock is separate).
    pub timeout: Duration,
    /// QEMU's working directory: where the emulator finds `flash.bin` and writes
    /// `rtc-out.bin`. `None`: a scratch directory under `target/ramkey/qemu`.
    pub work_dir: Option<PathBuf>,
    /// RTC user memory (512 bytes) at boot, as kept through a deep sleep or restart.
    /// `None`: whatever QEMU's RAM holds (zeros).
    pub rtc: Option<Vec<u8>>,
    /// Access points around (at most [`MAX_NETWORKS`]).
    pub networks: Vec<ScriptedNetwork>,
    /// Make every flash erase fail.
    pub erase_fails: bool,
    /// Hypothetical SDK behaviour: `_current` leaves `PmkCurrent` set (emu/src/harness.rs).
    pub pmk_current_sticky: bool,
    /// Hypothetical SDK behaviour: the SDK saves its RAM block once connected.
    pub save_ram_when_connected: bool,
    /// A TCG plugin and its arguments (`path,arg=value,...`), for instruction counts.
    pub plugin: Option<String>,
    /// Run the network over the espconn bridge with this port map (host clock, real sockets).
    pub bridge: Option<crate::bridge::PortMap>,
    /// What `system_adc_read` returns this boot (the TOUT pin, 0..=1023); `None`: 512.
    pub adc: Option<u16>,
    /// The I2C bus: bit 0 no BME280, bit 1 SDA held 7 clocks, bit 2 held 50, bit 3 stretching
    /// (`emu/src/harness.rs`, word 222).
    pub i2c: u32,
}

/// Access points the emulator's mailbox holds (`emu/src/harness.rs`).
pub const MAX_NETWORKS: usize = 6;

/// One scripted access point (see `emu/src/harness.rs`).
#[derive(Clone, Debug)]
pub struct ScriptedNetwork {
    /// Its SSID.
    pub ssid: Vec<u8>,
    /// The PSK it accepts (`None`: an open network).
    pub psk: Option<[u8; 32]>,
    /// The passphrase that PSK comes from (empty: unknown), for station configs that hold
    /// the passphrase (the emulator does not run PBKDF2).
    pub passphrase: Vec<u8>,
    /// Its channel.
    pub channel: u8,
    /// Its BSSID.
    pub bssid: [u8; 6],
    /// The address its DHCP server gives.
    pub ip: [u8; 4],
    /// Never answers connection attempts.
    pub silent: bool,
    /// Signal strength a scan reports, dBm.
    pub rssi: i8,
}

impl ScriptedNetwork {
    fn words(&self) -> [u32; 36] {
        let mut bytes = [0u8; 144];
        let len = self.ssid.len().min(32);
        bytes[0] = len as u8;
        bytes[1] = self.channel;
        bytes[2] = u8::from(self.silent) | (u8::from(self.psk.is_none()) << 1);
        bytes[3] = self.rssi as u8;
        bytes[4..4 + len].copy_from_slice(&self.ssid[..len]);
        if let Some(psk) = &self.psk {
            bytes[36..68].copy_from_slice(psk);
        }
        bytes[68..74].copy_from_slice(&self.bssid);
        bytes[76..80].copy_from_slice(&self.ip);
        let passphrase = &self.passphrase[..self.passphrase.len().min(63)];
        bytes[80..80 + passphrase.len()].copy_from_slice(passphrase);
        let mut words = [0u32; 36];
        for (w, chunk) in words.iter_mut().zip(bytes.chunks_exact(4)) {
            *w = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        words
    }
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            reset_reason: 0,
            timeout: Duration::from_secs(60),
            work_dir: None,
            rtc: None,
            networks: Vec::new(),
            erase_fails: false,
            pmk_current_sticky: false,
            save_ram_when_connected: false,
            plugin: None,
            bridge: None,
            adc: None,
            i2c: 0,
        }
    }
}

/// Address of RTC user memory (block 64) on the chip and on the sim machine.
const RTC_USER_ADDRESS: u32 = 0x6000_1100;

/// Whether the console is shown while it runs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Echo {
    /// Print each line as it comes (`cargo xtask run`).
    Live,
    /// Only capture (tests).
    Quiet,
}

/// What a run printed and how it ended.
#[derive(Debug)]
pub struct Outcome {
    /// QEMU's exit status (the code the firmware or emulator passed to semihosting exit).
    pub status: i32,
    /// Everything written to the console.
    pub console: String,
    /// RTC user memory saved by a deep sleep or restart (`rtc-out.bin`), if any.
    pub rtc: Option<Vec<u8>>,
}

/// What the emulator's exit codes mean (see `emu/src/sdk.rs`).
pub fn describe_status(status: i32) -> &'static str {
    match status {
        0 => "idle: nothing left to run",
        3 => "no valid partition table: the real SDK would boot-loop",
        4 => "the emulator hit one of its limits",
        10 => "the firmware restarted (system_restart)",
        11 => "the firmware entered deep sleep",
        -1 => "timed out and was stopped",
        _ => "unexpected exit",
    }
}

fn mailbox_file(scenario: &Scenario) -> Result<PathBuf, String> {
    static RUN: AtomicU32 = AtomicU32::new(0);
    let dir = util::out_dir().join("qemu");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = std::path::absolute(dir)
        .map_err(|e| e.to_string())?
        .join(format!(
            "mailbox-{}-{}.bin",
            std::process::id(),
            RUN.fetch_add(1, Ordering::SeqCst)
        ));
    let mut words = vec![
        MAILBOX_MAGIC,
        MAILBOX_VERSION,
        scenario.reset_reason,
        u32::from(scenario.erase_fails)
            | (u32::from(scenario.pmk_current_sticky) << 1)
            | (u32::from(scenario.save_ram_when_connected) << 2)
            | (u32::from(scenario.bridge.is_some()) << 3),
        scenario.networks.len().min(MAX_NETWORKS) as u32,
    ];
    for network in scenario.networks.iter().take(MAX_NETWORKS) {
        words.extend_from_slice(&network.words());
    }
    // The network area is fixed-size; the ADC word follows it.
    words.resize(5 + MAX_NETWORKS * 36, 0);
    words.push(
        scenario
            .adc
            .map_or(0, |v| (1 << 31) | u32::from(v.min(1023))),
    );
    words.push(scenario.i2c);
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    std::fs::write(&path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

/// Compiles the TCG plugin `xtask/qemu-plugin/<name>.c` with the host's gcc (once per run
/// of xtask); returns the shared object.
pub fn plugin(name: &str) -> Result<PathBuf, String> {
    static BUILT: Mutex<Vec<(String, PathBuf)>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().map_err(|e| e.to_string())?;
    if let Some((_, path)) = built.iter().find(|(n, _)| n == name) {
        return Ok(path.clone());
    }
    let source = util::root().join(format!("xtask/qemu-plugin/{name}.c"));
    let object = util::out_dir().join(format!("{name}.so"));
    std::fs::create_dir_all(util::out_dir()).map_err(|e| e.to_string())?;
    util::run(
        Command::new("gcc")
            .args(["-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o"])
            .arg(&object)
            .arg(&source),
    )?;
    built.push((name.to_owned(), object.clone()));
    Ok(object)
}

/// A fresh QEMU working directory `dir` holding an erased 4 MB `flash.bin`, so that nothing
/// an earlier run left there changes what a boot sees.
pub fn fresh_work_dir(dir: &Path) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let flash = vec![0xFFu8; FlashSize::FourMiB.bytes() as usize];
    std::fs::write(dir.join("flash.bin"), flash).map_err(|e| e.to_string())
}

/// Boots `elf` once and waits until it ends (or the scenario's timeout passes).
pub fn boot(elf: &Path, scenario: &Scenario, echo: Echo) -> Result<Outcome, String> {
    spawn(elf, scenario, echo)?.finish(scenario.timeout)
}

/// A QEMU run in progress.
pub struct Running {
    child: std::process::Child,
    reader: Option<std::thread::JoinHandle<()>>,
    console: std::sync::Arc<Mutex<String>>,
    mailbox: PathBuf,
    rtc_out: PathBuf,
    relay: Option<crate::bridge::Relay>,
}

impl Running {
    /// Everything printed so far.
    pub fn console(&self) -> String {
        self.console.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// The espconn bridge's relay, for a bridged run.
    pub fn relay(&self) -> Option<&crate::bridge::Relay> {
        self.relay.as_ref()
    }

    /// Whether QEMU has ended.
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Waits until a console line starts with `prefix`; returns it.
    pub fn wait_for_line(&self, prefix: &str, timeout: Duration) -> Result<String, String> {
        let started = Instant::now();
        loop {
            if let Some(line) = self.console().lines().find(|l| l.starts_with(prefix)) {
                return Ok(line.to_owned());
            }
            if started.elapsed() > timeout {
                return Err(format!(
                    "no line starting with {prefix:?} within {timeout:?}:\n{}",
                    self.console()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the run to end, killing it after `timeout`.
    pub fn finish(mut self, timeout: Duration) -> Result<Outcome, String> {
        let started = Instant::now();
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status.code().unwrap_or(-1),
                Ok(None) if started.elapsed() > timeout => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break -1;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => return Err(format!("waiting for QEMU: {e}")),
            }
        };
        self.collect(status)
    }

    /// Ends the run now (Ctrl-C, a test that is done with it).
    pub fn kill(mut self) -> Result<Outcome, String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.collect(-1)
    }

    fn collect(mut self, status: i32) -> Result<Outcome, String> {
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        let console = self.console();
        let _ = std::fs::remove_file(&self.mailbox);
        let rtc = std::fs::read(&self.rtc_out).ok();
        let mut text = String::new();
        if status != 0
            && let Some(mut stderr) = self.child.stderr.take()
        {
            let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        }
        let console = if text.trim().is_empty() {
            console
        } else {
            format!("{console}[qemu stderr] {text}")
        };
        Ok(Outcome {
            status,
            console,
            rtc,
        })
    }
}

/// Starts `elf` under QEMU; with `scenario.bridge` set, behind the espconn bridge (no
/// instruction-level plugin then: it would slow the CPU several times).
pub fn spawn(elf: &Path, scenario: &Scenario, echo: Echo) -> Result<Running, String> {
    if scenario.bridge.is_some() && scenario.plugin.is_some() {
        return Err("a bridged run takes no QEMU plugin".to_owned());
    }
    let mailbox = mailbox_file(scenario)?;
    let work_dir = match &scenario.work_dir {
        Some(dir) => dir.clone(),
        None => util::out_dir().join("qemu"),
    };
    std::fs::create_dir_all(&work_dir)
        .map_err(|e| format!("cannot create {}: {e}", work_dir.display()))?;
    // A chip always has its flash: without a file the emulated SDK would find no parameter
    // area, and the firmware would (rightly) take an unreadable area for one to scrub.
    let flash = work_dir.join("flash.bin");
    if !flash.exists() {
        std::fs::write(&flash, vec![0xFFu8; FlashSize::FourMiB.bytes() as usize])
            .map_err(|e| format!("cannot write {}: {e}", flash.display()))?;
    }
    let rtc_out = work_dir.join("rtc-out.bin");
    let _ = std::fs::remove_file(&rtc_out);
    let relay = match &scenario.bridge {
        Some(ports) => Some(crate::bridge::start(&work_dir, ports.clone())?),
        None => None,
    };
    let elf = std::path::absolute(elf).map_err(|e| e.to_string())?;
    let mut cmd = Command::new("qemu-system-xtensa");
    cmd.current_dir(&work_dir);
    if let Some(plugin) = &scenario.plugin {
        cmd.arg("-plugin").arg(plugin);
    }
    let rtc_in = work_dir.join("rtc-in.bin");
    if let Some(rtc) = &scenario.rtc {
        std::fs::write(&rtc_in, rtc)
            .map_err(|e| format!("cannot write {}: {e}", rtc_in.display()))?;
        cmd.arg("-device").arg(format!(
            "loader,file={},addr={RTC_USER_ADDRESS:#x},force-raw=on",
            rtc_in.display()
        ));
    }
    cmd.args([
        "-M",
        "sim",
        "-cpu",
        "lx106",
        "-semihosting",
        "-nographic",
        "-monitor",
        "none",
    ])
    .args(["-serial", "none", "-no-reboot"])
    .arg("-device")
    .arg(format!(
        "loader,file={},addr={MAILBOX_ADDRESS:#x},force-raw=on",
        mailbox.display()
    ))
    .arg("-device")
    .arg(format!("loader,file={},cpu-num=0", elf.display()))
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    // QEMU ends with xtask, however xtask ends (a test's timeout, Ctrl-C, a kill).
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe and touches only the child being started.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", util::describe(&cmd)))?;
    let stdout = child.stdout.take().ok_or("no stdout pipe")?;
    let console = std::sync::Arc::new(Mutex::new(String::new()));
    let sink = std::sync::Arc::clone(&console);
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if echo == Echo::Live {
                println!("{line}");
            }
            if let Ok(mut console) = sink.lock() {
                console.push_str(&line);
                console.push('\n');
            }
        }
    });
    Ok(Running {
        child,
        reader: Some(reader),
        console,
        mailbox,
        rtc_out,
        relay,
    })
}
