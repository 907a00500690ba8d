//! `cargo xtask provision-key`: a per-device setup passphrase, its identity sector and label.
//!
//! The passphrase comes from the OS's random generator (`getrandom`), 100 bits in 20
//! easy-to-type characters (`ramkey::identity::generate`). Written to
//! `target/provision/<ssid>/` (or `--out DIR`):
//! - `identity.bin`: the whole 4 KiB identity sector (record, then erased bytes), for
//!   `esptool write-flash <offset> identity.bin`, which `--port` runs itself;
//! - `label.svg`: the label to print: the network name, the passphrase, and a QR code in the
//!   standard WiFi format (`WIFI:T:WPA;S:...;P:...;;`) that phones join by scanning;
//! - `label.png`: the same QR code as a bitmap (8 pixels a module, with its quiet zone);
//! - `label.txt`: the name and passphrase as text.
//!
//! The SSID is `ramkey-` and the last three bytes of the MAC. esptool reports the station
//! MAC; the soft AP's differs only in its first byte, so the last three are the same.
//! Nothing is printed to the terminal but file paths: the passphrase is only in the files.

use std::path::{Path, PathBuf};
use std::process::Command;

use ramkey::flash_layout::{FlashSize, SECTOR_SIZE};
use ramkey::identity::{self, SetupPassphrase};

use crate::util;

/// Pixels per QR module in `label.png`.
const PNG_SCALE: usize = 8;
/// Modules of white around the code (the QR standard's quiet zone).
const QUIET: usize = 4;

/// What `provision-key` wrote.
pub struct Provisioned {
    /// The setup AP's name.
    pub ssid: String,
    /// The directory of the files.
    pub dir: PathBuf,
}

/// The identity sector for `passphrase`: the record, then erased flash (0xFF).
pub fn identity_sector(passphrase: &SetupPassphrase) -> Vec<u8> {
    let mut sector = vec![0xFFu8; SECTOR_SIZE as usize];
    let record = identity::encode(passphrase);
    sector[..record.len()].copy_from_slice(&record);
    sector
}

fn parse_mac(text: &str) -> Result<[u8; 6], String> {
    let parts: Vec<&str> = text.trim().split([':', '-']).collect();
    let mut mac = [0u8; 6];
    if parts.len() != 6 {
        return Err(format!(
            "bad MAC {text:?}: six hex bytes, like 5c:cf:7f:a1:b2:c3"
        ));
    }
    for (byte, part) in mac.iter_mut().zip(parts) {
        *byte = u8::from_str_radix(part, 16).map_err(|_| format!("bad MAC {text:?}"))?;
    }
    Ok(mac)
}

/// The QR code's modules, row by row (true = dark).
fn qr_modules(text: &str) -> Result<(usize, Vec<bool>), String> {
    let code = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| format!("QR code: {e}"))?;
    let width = code.width();
    let modules = code
        .to_colors()
        .into_iter()
        .map(|c| c == qrcode::Color::Dark)
        .collect();
    Ok((width, modules))
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The printable label: name, passphrase and QR code, 60 mm wide.
fn label_svg(ssid: &str, passphrase: &str, width: usize, modules: &[bool]) -> String {
    let size = width + 2 * QUIET;
    let mut path = String::new();
    for (i, &dark) in modules.iter().enumerate() {
        if dark {
            let (x, y) = (i % width + QUIET, i / width + QUIET);
            path.push_str(&format!("M{x} {y}h1v1h-1z"));
        }
    }
    format!(
        r##"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="60mm" height="90mm" viewBox="0 0 60 90">
<rect width="60" height="90" fill="#fff"/>
<text x="30" y="8" font-family="sans-serif" font-size="4.2" text-anchor="middle">ramkey setup</text>
<svg x="5" y="11" width="50" height="50" viewBox="0 0 {size} {size}" shape-rendering="crispEdges"><path d="{path}" fill="#000"/></svg>
<text x="30" y="68" font-family="sans-serif" font-size="3.4" text-anchor="middle">Network: {ssid}</text>
<text x="30" y="75" font-family="monospace" font-size="3.6" text-anchor="middle">{passphrase}</text>
<text x="30" y="84" font-family="sans-serif" font-size="2.6" text-anchor="middle">Scan to join, then open any web page.</text>
</svg>
"##,
        ssid = xml_escape(ssid),
        passphrase = xml_escape(passphrase),
    )
}

/// The QR code as a greyscale PNG.
fn qr_png(width: usize, modules: &[bool]) -> Result<Vec<u8>, String> {
    let side = (width + 2 * QUIET) * PNG_SCALE;
    let mut pixels = vec![255u8; side * side];
    for (i, &dark) in modules.iter().enumerate() {
        if !dark {
            continue;
        }
        let (mx, my) = (i % width + QUIET, i / width + QUIET);
        for y in my * PNG_SCALE..(my + 1) * PNG_SCALE {
            pixels[y * side + mx * PNG_SCALE..y * side + (mx + 1) * PNG_SCALE].fill(0);
        }
    }
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, side as u32, side as u32);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
        writer
            .write_image_data(&pixels)
            .map_err(|e| e.to_string())?;
    }
    Ok(bytes)
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// Generates a passphrase for the device with `mac` and writes its files into `dir`
/// (default `target/provision/<ssid>`).
pub fn provision(mac: [u8; 6], dir: Option<PathBuf>) -> Result<Provisioned, String> {
    let mut random = [0u8; 16];
    getrandom::fill(&mut random).map_err(|e| format!("no OS randomness: {e}"))?;
    let passphrase = identity::generate(&random);
    random.fill(0);
    let ssid = identity::ap_ssid(mac).as_str().to_owned();
    let dir = dir.unwrap_or_else(|| util::root().join("target/provision").join(&ssid));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let text = std::str::from_utf8(passphrase.expose_secret()).map_err(|e| e.to_string())?;
    let qr = identity::wifi_qr_text(&ssid, &passphrase);
    let (width, modules) = qr_modules(qr.as_str())?;
    write(&dir.join("identity.bin"), &identity_sector(&passphrase))?;
    write(
        &dir.join("label.svg"),
        label_svg(&ssid, text, width, &modules).as_bytes(),
    )?;
    write(&dir.join("label.png"), &qr_png(width, &modules)?)?;
    write(
        &dir.join("label.txt"),
        format!("Setup network: {ssid}\nSetup passphrase: {text}\n").as_bytes(),
    )?;
    Ok(Provisioned { ssid, dir })
}

fn read_mac(esptool: &Path, port: &str) -> Result<[u8; 6], String> {
    let out =
        util::run(Command::new(esptool).args(["--chip", "esp8266", "--port", port, "read-mac"]))?;
    let line = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("MAC:"))
        .ok_or_else(|| format!("esptool printed no MAC:\n{out}"))?;
    parse_mac(line)
}

/// `cargo xtask provision-key (--mac AA:BB:CC:DD:EE:FF | --port SERIAL) [--flash-size S] [--out DIR]`.
pub fn command(args: &[String]) -> Result<(), String> {
    let mut mac = None;
    let mut port = None;
    let mut out = None;
    let mut flash_size = FlashSize::DEFAULT;
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        let mut value = || rest.next().cloned().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--mac" => mac = Some(parse_mac(&value()?)?),
            "--port" => port = Some(value()?),
            "--out" => out = Some(PathBuf::from(value()?)),
            "--flash-size" => {
                let name = value()?;
                flash_size =
                    FlashSize::from_name(&name).map_err(|_| format!("bad flash size {name:?}"))?;
            }
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    let esptool = match &port {
        Some(_) => Some(crate::setup::ensure_esptool()?),
        None => None,
    };
    let mac = match (mac, &port, &esptool) {
        (Some(mac), _, _) => mac,
        (None, Some(port), Some(esptool)) => read_mac(esptool, port)?,
        _ => return Err("usage: cargo xtask provision-key (--mac AA:BB:CC:DD:EE:FF | --port SERIAL) [--flash-size 1MB|2MB|4MB] [--out DIR]".to_owned()),
    };
    let done = provision(mac, out)?;
    println!(
        "device {}: identity and label written to {}",
        done.ssid,
        done.dir.display()
    );
    println!("  print {}", done.dir.join("label.svg").display());
    if let (Some(port), Some(esptool)) = (port, esptool) {
        let offset = flash_size.layout().device_identity.offset;
        util::run_live(
            Command::new(esptool)
                .args(["--chip", "esp8266", "--port", &port, "write-flash"])
                .arg(format!("{offset:#x}"))
                .arg(done.dir.join("identity.bin")),
        )?;
        println!("identity sector written at {offset:#x}");
    } else {
        let offset = flash_size.layout().device_identity.offset;
        println!(
            "  flash it: esptool --chip esp8266 --port <serial> write-flash {offset:#x} {}",
            done.dir.join("identity.bin").display()
        );
    }
    Ok(())
}

/// Decodes the one QR code in a PNG (greyscale, RGB or RGBA, 8 bits).
pub fn decode_qr_png(bytes: &[u8]) -> Result<String, String> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().map_err(|e| format!("PNG: {e}"))?;
    let mut pixels = vec![0u8; reader.output_buffer_size().ok_or("PNG too large")?];
    let info = reader
        .next_frame(&mut pixels)
        .map_err(|e| format!("PNG: {e}"))?;
    let channels = info.color_type.samples();
    let (w, h) = (info.width as usize, info.height as usize);
    let luminance = |x: usize, y: usize| -> u8 {
        let at = (y * w + x) * channels;
        match channels {
            1 | 2 => pixels[at],
            _ => {
                ((u16::from(pixels[at]) + u16::from(pixels[at + 1]) + u16::from(pixels[at + 2]))
                    / 3) as u8
            }
        }
    };
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(w, h, luminance);
    let grids = image.detect_grids();
    if grids.len() != 1 {
        return Err(format!("{} QR codes found, expected one", grids.len()));
    }
    grids[0]
        .decode()
        .map(|(_, text)| text)
        .map_err(|e| format!("QR code unreadable: {e:?}"))
}

/// The printed label as a browser draws it: `label.svg` rendered by headless Chromium must
/// carry a QR code that decodes to the device's WiFi payload.
pub fn check_rendered_label() -> Result<(), String> {
    let dir = util::out_dir().join("label-check");
    let _ = std::fs::remove_dir_all(&dir);
    let done = provision([0x5C, 0xCF, 0x7F, 0xA1, 0xB2, 0xC3], Some(dir.clone()))?;
    let sector = std::fs::read(done.dir.join("identity.bin")).map_err(|e| e.to_string())?;
    let passphrase = identity::decode(&sector).map_err(|e| e.to_string())?;
    let expected = identity::wifi_qr_text(&done.ssid, &passphrase);
    let shot = dir.join("label-rendered.png");
    util::run(
        Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
            ])
            .args(["--force-device-scale-factor=2", "--window-size=227,340"])
            .arg(format!("--screenshot={}", shot.display()))
            .arg(format!("file://{}", done.dir.join("label.svg").display())),
    )?;
    let png = std::fs::read(&shot).map_err(|e| format!("{}: {e}", shot.display()))?;
    let text = decode_qr_png(&png)?;
    if text != expected.as_str() {
        return Err("the rendered label's QR code does not carry the device's payload".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_png(bytes: &[u8]) -> String {
        decode_qr_png(bytes).expect("one readable QR code")
    }

    #[test]
    fn label_png_decodes_to_the_wifi_payload_and_the_sector_to_the_passphrase() {
        let dir = std::env::temp_dir().join(format!("ramkey-provision-{}", std::process::id()));
        let done = provision([0x5C, 0xCF, 0x7F, 0xA1, 0xB2, 0xC3], Some(dir.clone()))
            .expect("provisioned");
        assert_eq!(done.ssid, "ramkey-A1B2C3");
        let sector = std::fs::read(dir.join("identity.bin")).expect("sector");
        assert_eq!(sector.len(), 4096);
        assert!(sector[identity::RECORD_LEN..].iter().all(|&b| b == 0xFF));
        let passphrase = identity::decode(&sector).expect("valid identity");
        let text = std::str::from_utf8(passphrase.expose_secret())
            .expect("ASCII")
            .to_owned();
        assert_eq!(text.len(), 23);
        let payload = decode_png(&std::fs::read(dir.join("label.png")).expect("png"));
        assert_eq!(payload, format!("WIFI:T:WPA;S:ramkey-A1B2C3;P:{text};;"));
        let svg = std::fs::read_to_string(dir.join("label.svg")).expect("svg");
        assert!(svg.contains(&text) && svg.contains("ramkey-A1B2C3"));
        assert_eq!(svg.matches("<svg").count(), svg.matches("</svg>").count());
        assert!(
            std::fs::read_to_string(dir.join("label.txt"))
                .expect("txt")
                .contains(&text)
        );
        // A second run draws a new passphrase.
        let again =
            provision([0x5C, 0xCF, 0x7F, 0xA1, 0xB2, 0xC3], Some(dir.clone())).expect("again");
        let other =
            identity::decode(&std::fs::read(again.dir.join("identity.bin")).expect("sector"))
                .expect("valid");
        assert_ne!(other.expose_secret(), text.as_bytes());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn svg_modules_match_the_qr_matrix() {
        let (width, modules) = qr_modules("WIFI:T:WPA;S:ramkey-A1B2C3;P:a\\;b;;").expect("qr");
        let svg = label_svg("ramkey-A1B2C3", "a;b", width, &modules);
        let dark = modules.iter().filter(|&&d| d).count();
        assert_eq!(svg.matches("h1v1h-1z").count(), dark);
        assert!(svg.contains("&lt;") || !svg.contains("<b"));
    }

    #[test]
    fn mac_parsing() {
        assert_eq!(
            parse_mac("5c:cf:7f:a1:b2:c3"),
            Ok([0x5C, 0xCF, 0x7F, 0xA1, 0xB2, 0xC3])
        );
        assert_eq!(
            parse_mac("5C-CF-7F-A1-B2-C3\n"),
            Ok([0x5C, 0xCF, 0x7F, 0xA1, 0xB2, 0xC3])
        );
        assert!(parse_mac("5c:cf:7f:a1:b2").is_err());
        assert!(parse_mac("5c:cf:7f:a1:b2:zz").is_err());
    }
}
