//! A real Mosquitto for the report tests: started on a free loopback port with a password
//! file and no anonymous access, stopped when dropped.
//!
//! Run as root, Mosquitto drops to the `mosquitto` user, so its folder and files are made
//! readable by others (GARDEN.md); they live under `target/ramkey/` and hold only the test's
//! own throw-away password.

use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{setup, util};

/// The broker's one user.
pub const USER: &str = "garden";
/// Its password (a test's own).
pub const PASSWORD: &str = "broker-test-password-7f3a";

/// A running broker.
pub struct Broker {
    child: Child,
    /// Its loopback port.
    pub port: u16,
    dir: PathBuf,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).map_err(|e| e.to_string())?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

fn mosquitto_binary() -> PathBuf {
    ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("mosquitto"))
}

/// Starts Mosquitto (installing it first if needed) and waits until it accepts connections.
pub fn start() -> Result<Broker, String> {
    start_on(None)
}

/// Starts Mosquitto on `port` (a broker coming back where it was), or on a free port.
pub fn start_on(port: Option<u16>) -> Result<Broker, String> {
    setup::ensure_mosquitto()?;
    let port = match port {
        Some(port) => port,
        None => free_port()?,
    };
    let dir = util::out_dir().join(format!("mosquitto-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let readable = |path: &PathBuf, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| format!("cannot set permissions of {}: {e}", path.display()))
    };
    readable(&dir, 0o755)?;
    let passwords = dir.join("passwords");
    util::run(
        Command::new("mosquitto_passwd")
            .args(["-b", "-c"])
            .arg(&passwords)
            .args([USER, PASSWORD]),
    )?;
    readable(&passwords, 0o644)?;
    let config = dir.join("mosquitto.conf");
    std::fs::write(
        &config,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {}\npersistence false\nlog_dest stderr\n",
            passwords.display()
        ),
    )
    .map_err(|e| e.to_string())?;
    readable(&config, 0o644)?;
    let log = std::fs::File::create(dir.join("log.txt")).map_err(|e| e.to_string())?;
    let child = Command::new(mosquitto_binary())
        .arg("-c")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start mosquitto: {e}"))?;
    let broker = Broker { child, port, dir };
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(broker.dir.join("log.txt")).unwrap_or_default();
            return Err(format!("mosquitto did not listen on {port}:\n{log}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(broker)
}

/// A `mosquitto_sub` for `topics` that prints `topic payload` lines and exits after `count`
/// messages or `seconds`.
pub fn subscribe(
    broker: &Broker,
    topics: &[&str],
    count: usize,
    seconds: u32,
) -> Result<Child, String> {
    let mut command = Command::new("mosquitto_sub");
    for topic in topics {
        command.args(["-t", topic]);
    }
    command
        .args(["-h", "127.0.0.1", "-p", &broker.port.to_string()])
        .args(["-u", USER, "-P", PASSWORD, "-v"])
        .args(["-C", &count.to_string(), "-W", &seconds.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start mosquitto_sub: {e}"))
}
