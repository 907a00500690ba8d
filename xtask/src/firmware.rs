//! The firmware build: rustc to assembly, the literal-pool fix, GNU `as`, and the link.
//!
//! 1. `cargo rustc` builds the top crate as a staticlib for the lx106 target JSON with
//!    `-Z build-std=core`, asking rustc for assembly too (`--emit=asm,link`). With fat LTO
//!    and one codegen unit, the top crate's `.s` holds the whole Rust program except
//!    `compiler_builtins`, which has its own `.s`. The `.a` that rustc also writes (made by
//!    LLVM's integrated assembler, with the literal-pool bug) is not used.
//! 2. [`crate::litfix`] moves each literal pool into its function's section.
//! 3. GNU `as --text-section-literals` assembles both files; gcc assembles the `.S` files.
//! 4. The link uses the project's linker scripts in `ld/`:
//!    - no SDK: the top crate is `ramkey-emu` (the firmware plus the emulated SDK), linked
//!      with `ld/ramkey-emu.ld` into `target/ramkey/ramkey-emu.elf` for QEMU;
//!    - `ESP8266_NONOS_SDK=<checkout>`: the top crate is `ramkey`, linked with the SDK's
//!      libraries and `ld/ramkey-sdk.ld` into `target/ramkey/ramkey.elf`, then the v1 flash
//!      images `ramkey-0x00000.bin` and `ramkey-0x10000.bin`.
//!
//! The firmware code is the same in both modes; only what it is linked against differs.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use ramkey::flash_layout::FlashSize;

use crate::util::{self, describe};

/// Target JSON for the ESP8266 (relative to the workspace root).
pub const TARGET_JSON: &str = "targets/xtensa-esp8266-none-elf.json";
/// Name of the cargo target directory for firmware builds (under `target/`).
const FIRMWARE_TARGET_DIR: &str = "fw";
/// SDK libraries, in one link group (SDK_FACTS.md, "Linking with the SDK").
const SDK_LIBRARIES: [&str; 10] = [
    "gcc", "hal", "phy", "pp", "net80211", "lwip", "wpa", "crypto", "main", "driver",
];
/// Symbols the ESP8266 ROM provides (eagle.rom.addr.v6.ld). In SDK mode compiler_builtins'
/// copies are made local, so SDK code that runs with the flash cache disabled never jumps
/// into a flash-resident memcpy.
const ROM_PROVIDED: [&str; 5] = ["memcpy", "memmove", "memset", "memcmp", "strlen"];

/// The SDK's persistent (flash-writing) setters. The link redirects every reference to them
/// to `__wrap_NAME` in `src/firmware/wrap.rs`.
pub const WRAPPED: [&str; 7] = wifi_sys::PERSISTENT_SETTERS;

/// Every name the link wraps (`--wrap=NAME`): the persistent setters (unless a test probe
/// asks otherwise), the SDK's flash calls (the firewall) and the SDK's own saves, each set
/// left out by its canary feature.
pub fn wrapped_names(options: &BuildOptions, extras: &LinkExtras) -> Vec<&'static str> {
    let has = |feature: &str| options.features.iter().any(|f| f == feature);
    let mut names = Vec::new();
    if !extras.no_wrap {
        names.extend(WRAPPED);
    }
    if !has("canary-no-firewall") {
        names.extend(wifi_sys::FIREWALLED);
    }
    if !has("canary-no-sdk-save-wrap") {
        names.extend(wifi_sys::SDK_SAVES);
    }
    names
}

/// Test-only changes to a link (see `test.rs`).
#[derive(Clone, Debug, Default)]
pub struct LinkExtras {
    /// More objects to link (kept with `-u` on their entry symbol).
    pub objects: Vec<(PathBuf, String)>,
    /// Leave out `--wrap` (to prove the check catches an unwrapped reference).
    pub no_wrap: bool,
    /// Output folder name suffix, so such links never overwrite real outputs.
    pub tag: String,
    /// Let GNU ld relax (coalesce literals): only to show that its bug is still there.
    pub relax: bool,
}

/// What to build.
#[derive(Clone, Debug)]
pub struct BuildOptions {
    /// Features of the `ramkey` crate (`production`, `selftest`).
    pub features: Vec<String>,
    /// Flash size of the board.
    pub flash_size: FlashSize,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            features: Vec::new(),
            flash_size: FlashSize::DEFAULT,
        }
    }
}

impl BuildOptions {
    /// A short name for this variant, used for output folders.
    pub fn variant(&self) -> String {
        let features = if self.features.is_empty() {
            "default".to_owned()
        } else {
            self.features.join("+")
        };
        format!("{features}-{}", self.flash_size.name())
    }
}

/// What the firmware is linked against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkMode {
    /// ramkey's emulated SDK, for QEMU.
    Emulated,
    /// A real NONOS SDK checkout.
    Sdk(PathBuf),
}

impl LinkMode {
    /// `ESP8266_NONOS_SDK` if set (checked to look like an SDK), else the emulation.
    pub fn from_env() -> Result<LinkMode, String> {
        match std::env::var_os("ESP8266_NONOS_SDK") {
            None => Ok(LinkMode::Emulated),
            Some(path) if path.is_empty() => Ok(LinkMode::Emulated),
            Some(path) => {
                let sdk = PathBuf::from(path);
                for needed in ["lib/libmain.a", "ld/eagle.rom.addr.v6.ld"] {
                    if !sdk.join(needed).exists() {
                        return Err(format!(
                            "ESP8266_NONOS_SDK={} does not look like a NONOS SDK 3.x checkout: {needed} is missing",
                            sdk.display()
                        ));
                    }
                }
                Ok(LinkMode::Sdk(sdk))
            }
        }
    }
}

/// Whether the literal-pool fix runs (off only for the test proving it is still needed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiteralFix {
    /// Normal builds.
    Apply,
    /// Assemble LLVM's output as it is.
    Skip,
}

/// What a build produced.
#[derive(Debug)]
pub struct BuildOutput {
    /// The options it was built with.
    pub options: BuildOptions,
    /// Link mode.
    pub mode: LinkMode,
    /// The linked ELF.
    pub elf: PathBuf,
    /// The linker map of that ELF.
    pub map: PathBuf,
    /// Set for emulated builds: the ELF QEMU boots (same file as `elf`).
    pub emu_elf: Option<PathBuf>,
    /// Set for SDK builds: the v1 images for flash offsets 0x00000 and 0x10000.
    pub images: Option<(PathBuf, PathBuf)>,
    /// File names of the project's own objects (to tell Rust's share in the map).
    pub own_objects: Vec<String>,
    /// Literal pools the fix moved.
    pub pools_moved: usize,
}

impl BuildOutput {
    /// Prints where the outputs are.
    pub fn print_summary(&self) {
        let mode = match &self.mode {
            LinkMode::Emulated => "emulated SDK".to_owned(),
            LinkMode::Sdk(path) => format!("SDK at {}", path.display()),
        };
        println!(
            "built {} ({}), linked against the {mode}; {} literal pools moved into their sections",
            self.elf.display(),
            self.options.variant(),
            self.pools_moved
        );
        if let Some((image0, image1)) = &self.images {
            println!(
                "images: {} (flash 0x00000), {} (flash 0x10000)",
                image0.display(),
                image1.display()
            );
        }
    }
}

/// Builds with the link mode from the environment and the literal fix applied.
pub fn build(options: &BuildOptions) -> Result<BuildOutput, String> {
    build_with(options, &LinkMode::from_env()?, LiteralFix::Apply)
}

/// Builds the emulated-SDK firmware with one extra cargo feature (`selftest`, `bench`, a
/// canary); returns its ELF.
pub fn emulated_elf(feature: &str) -> Result<PathBuf, String> {
    let options = BuildOptions {
        features: vec![feature.to_owned()],
        ..BuildOptions::default()
    };
    build_with(&options, &LinkMode::Emulated, LiteralFix::Apply)?
        .emu_elf
        .ok_or_else(|| "not an emulated build".to_owned())
}

/// Builds one variant in one mode. Outputs of the default variant go straight into
/// `target/ramkey/`; other variants into `target/ramkey/<variant>/`.
pub fn build_with(
    options: &BuildOptions,
    mode: &LinkMode,
    fix: LiteralFix,
) -> Result<BuildOutput, String> {
    build_with_extras(options, mode, fix, &LinkExtras::default())
}

/// [`build_with`] with test-only link changes.
pub fn build_with_extras(
    options: &BuildOptions,
    mode: &LinkMode,
    fix: LiteralFix,
    extras: &LinkExtras,
) -> Result<BuildOutput, String> {
    let root = util::root();
    let mut out_dir = output_dir(options, fix);
    if !extras.tag.is_empty() {
        out_dir = out_dir.join(&extras.tag);
    }
    let obj_dir = out_dir.join(match mode {
        LinkMode::Emulated => "obj-emu",
        LinkMode::Sdk(_) => "obj-sdk",
    });
    fs::create_dir_all(&obj_dir)
        .map_err(|e| format!("cannot create {}: {e}", obj_dir.display()))?;

    let top = match mode {
        LinkMode::Emulated => "ramkey-emu",
        LinkMode::Sdk(_) => "ramkey",
    };
    let assembly = compile_to_assembly(top, options)?;

    let mut objects = Vec::new();
    let mut pools_moved = 0;
    for (name, source) in [
        ("ramkey-firmware", &assembly.firmware),
        ("ramkey-builtins", &assembly.builtins),
    ] {
        let text = fs::read_to_string(source)
            .map_err(|e| format!("cannot read {}: {e}", source.display()))?;
        let text = match fix {
            LiteralFix::Apply => {
                let fixed = crate::litfix::fix(&text);
                pools_moved += fixed.moved;
                fixed.text
            }
            LiteralFix::Skip => text,
        };
        let asm_path = obj_dir.join(format!("{name}.s"));
        let obj_path = obj_dir.join(format!("{name}.o"));
        fs::write(&asm_path, text)
            .map_err(|e| format!("cannot write {}: {e}", asm_path.display()))?;
        util::run(
            Command::new("xtensa-lx106-elf-as")
                .arg("--text-section-literals")
                .arg("-o")
                .arg(&obj_path)
                .arg(&asm_path),
        )?;
        objects.push(obj_path);
    }
    let mut sources = vec![root.join("src/firmware/atomics.S")];
    if *mode == LinkMode::Emulated {
        sources.push(root.join("emu/start.S"));
    }
    for source in sources {
        let stem = source.file_stem().and_then(|s| s.to_str()).unwrap_or("asm");
        let obj_path = obj_dir.join(format!("ramkey-{stem}.o"));
        util::run(
            Command::new("xtensa-lx106-elf-gcc")
                .args(["-c", "-mtext-section-literals", "-o"])
                .arg(&obj_path)
                .arg(&source),
        )?;
        objects.push(obj_path);
    }
    let own_objects = objects
        .iter()
        .filter_map(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .collect();

    let (elf, map) = match mode {
        LinkMode::Emulated => (
            out_dir.join("ramkey-emu.elf"),
            out_dir.join("ramkey-emu.map"),
        ),
        LinkMode::Sdk(_) => (out_dir.join("ramkey.elf"), out_dir.join("ramkey.map")),
    };
    let memory_script = root
        .join("ld")
        .join(format!("memory-{}.ld", options.flash_size.name()));
    let mut link = Command::new("xtensa-lx106-elf-gcc");
    for (object, entry) in &extras.objects {
        objects.push(object.clone());
        link.arg(format!("-Wl,-u,{entry}"));
    }
    for name in wrapped_names(options, extras) {
        link.arg(format!("-Wl,--wrap={name}"));
    }
    // Relocations stay in the ELF so tests can see what calls what (the images ignore them).
    // No relaxation: GNU ld's Xtensa literal coalescing moves a `__wrap_NAME` symbol twice when
    // the object that defines it also references NAME (ramkey's does: the emulator and ramkey's
    // own flash calls), so the symbol lands inside its literal pool and the first call executes
    // data. `cargo xtask test` checks every function symbol against its object and shows the
    // relaxed link still breaks (a canary, like the literal-pool one).
    if !extras.relax && *mode == LinkMode::Emulated {
        link.arg("-Wl,--no-relax");
    }
    link.args([
        "-nostdlib",
        "-Wl,--gc-sections",
        "-Wl,--emit-relocs",
        "-Wl,--no-warn-rwx-segments",
        "-Wl,--no-warn-execstack",
    ])
    .arg(format!("-Wl,-Map={}", map.display()))
    .arg("-T")
    .arg(&memory_script);
    match mode {
        LinkMode::Emulated => {
            link.arg("-T")
                .arg(root.join("ld/ramkey-emu.ld"))
                .args(&objects);
        }
        LinkMode::Sdk(sdk) => {
            let builtins = &objects[1];
            let mut localize = Command::new("xtensa-lx106-elf-objcopy");
            for symbol in ROM_PROVIDED {
                localize.arg(format!("--localize-symbol={symbol}"));
            }
            util::run(localize.arg(builtins))?;
            link.args([
                "-u",
                "call_user_start1",
                "-Wl,-static",
                "-Wl,--no-check-sections",
            ])
            .arg(format!("-L{}", sdk.join("lib").display()))
            .arg(format!("-L{}", sdk.join("ld").display()))
            .arg("-T")
            .arg(root.join("ld/ramkey-sdk.ld"))
            .arg("-Wl,--start-group")
            .args(&objects)
            .args(SDK_LIBRARIES.iter().map(|lib| format!("-l{lib}")))
            .arg("-Wl,--end-group");
        }
    }
    link.arg("-o").arg(&elf);
    util::run(&mut link).map_err(|e| format!("link failed: {e}"))?;

    let images = match mode {
        LinkMode::Emulated => None,
        LinkMode::Sdk(_) => Some(write_images(&elf, &out_dir, options.flash_size)?),
    };
    Ok(BuildOutput {
        options: options.clone(),
        mode: mode.clone(),
        emu_elf: (*mode == LinkMode::Emulated).then(|| elf.clone()),
        elf,
        map,
        images,
        own_objects,
        pools_moved,
    })
}

fn output_dir(options: &BuildOptions, fix: LiteralFix) -> PathBuf {
    let base = util::out_dir();
    let default = BuildOptions::default();
    let dir = if options.features.is_empty() && options.flash_size == default.flash_size {
        base
    } else {
        base.join(options.variant())
    };
    match fix {
        LiteralFix::Apply => dir,
        LiteralFix::Skip => dir.join("unfixed"),
    }
}

/// The two assembly files of one build.
struct Assembly {
    firmware: PathBuf,
    builtins: PathBuf,
}

fn compile_to_assembly(top: &str, options: &BuildOptions) -> Result<Assembly, String> {
    let root = util::root();
    let target_dir = root.join("target").join(FIRMWARE_TARGET_DIR);
    let features: Vec<String> = options
        .features
        .iter()
        .map(|f| format!("ramkey/{f}"))
        .collect();
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    cargo
        .current_dir(&root)
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("CARGO_ENCODED_RUSTFLAGS", "--emit=asm,link")
        .env("RAMKEY_FLASH_SIZE", options.flash_size.name())
        .args([
            "rustc",
            "--quiet",
            "--message-format=json-render-diagnostics",
            "-p",
            top,
        ])
        .args(["--profile", "firmware", "--target", TARGET_JSON])
        .args([
            "-Z",
            "build-std=core",
            "-Z",
            "build-std-features=compiler-builtins-mem",
        ])
        .args(["-Z", "json-target-spec", "--crate-type", "staticlib"]);
    if !features.is_empty() {
        cargo.arg("--features").arg(features.join(","));
    }
    let output = cargo
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "{} failed:\n{}",
            describe(&cargo),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let mut firmware = None;
    let mut builtins = None;
    let crate_name = top.replace('-', "_");
    for line in stdout.lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if message["reason"] != "compiler-artifact" {
            continue;
        }
        let name = message["target"]["name"]
            .as_str()
            .unwrap_or_default()
            .replace('-', "_");
        let Some(files) = message["filenames"].as_array() else {
            continue;
        };
        for file in files.iter().filter_map(|f| f.as_str()) {
            let path = Path::new(file);
            if name == crate_name && file.ends_with(".a") {
                firmware = Some(assembly_of(path, &crate_name)?);
            } else if name == "compiler_builtins" && file.ends_with(".rlib") {
                builtins = Some(assembly_of(path, "compiler_builtins")?);
            }
        }
    }
    match (firmware, builtins) {
        (Some(firmware), Some(builtins)) => Ok(Assembly { firmware, builtins }),
        _ => Err(format!(
            "cargo did not report the {top} and compiler_builtins artifacts"
        )),
    }
}

/// `…/deps/libNAME-HASH.{a,rlib}` -> `…/deps/NAME-HASH.s`. The top crate is reported by its
/// uplifted copy `…/libNAME.a`, which has no hash in its name: the hashed original in `deps/`
/// is the file that is the same inode (cargo hard-links) or has the same bytes.
fn assembly_of(artifact: &Path, crate_name: &str) -> Result<PathBuf, String> {
    let dir = artifact.parent().unwrap_or(Path::new("."));
    let deps = if dir.ends_with("deps") {
        dir.to_path_buf()
    } else {
        dir.join("deps")
    };
    let stem = artifact
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    let hash = match stem.rsplit_once('-') {
        Some((_, hash)) => hash.to_owned(),
        None => hash_of_uplifted(artifact, &deps, crate_name)?,
    };
    let candidate = deps.join(format!("{crate_name}-{hash}.s"));
    if candidate.exists() {
        return Ok(candidate);
    }
    Err(format!(
        "no assembly for {} (looked for {})",
        artifact.display(),
        candidate.display()
    ))
}

fn hash_of_uplifted(uplifted: &Path, deps: &Path, crate_name: &str) -> Result<String, String> {
    use std::os::unix::fs::MetadataExt;
    let target = fs::metadata(uplifted).map_err(|e| format!("{}: {e}", uplifted.display()))?;
    let prefix = format!("lib{crate_name}-");
    let entries = fs::read_dir(deps).map_err(|e| format!("{}: {e}", deps.display()))?;
    let mut same_bytes = None;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(hash) = name
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(".a"))
        else {
            continue;
        };
        let Ok(meta) = entry.metadata() else { continue };
        if meta.ino() == target.ino() && meta.dev() == target.dev() {
            return Ok(hash.to_owned());
        }
        if meta.len() == target.len() && fs::read(entry.path()).ok() == fs::read(uplifted).ok() {
            same_bytes = Some(hash.to_owned());
        }
    }
    same_bytes.ok_or_else(|| {
        format!(
            "cannot find the hashed original of {} in {}",
            uplifted.display(),
            deps.display()
        )
    })
}

fn write_images(
    elf: &Path,
    out_dir: &Path,
    flash_size: FlashSize,
) -> Result<(PathBuf, PathBuf), String> {
    let bytes = fs::read(elf).map_err(|e| format!("cannot read {}: {e}", elf.display()))?;
    let images =
        crate::image::elf_to_v1_images(&bytes, crate::image::FlashParams::dio_40m(flash_size))
            .map_err(|e| format!("cannot make images from {}: {e}", elf.display()))?;
    let image0 = out_dir.join("ramkey-0x00000.bin");
    let image1 = out_dir.join("ramkey-0x10000.bin");
    fs::write(&image0, &images.image0)
        .map_err(|e| format!("cannot write {}: {e}", image0.display()))?;
    fs::write(&image1, &images.irom)
        .map_err(|e| format!("cannot write {}: {e}", image1.display()))?;
    Ok((image0, image1))
}

/// Flashes an SDK build with esptool: both images, plus blank RF calibration and system
/// parameter sectors (so no credentials of an older firmware survive a reflash).
pub fn flash(out: &BuildOutput, esptool: &Path, port: &str) -> Result<(), String> {
    let Some((image0, image1)) = &out.images else {
        return Err("only an SDK build makes flash images: set ESP8266_NONOS_SDK".to_owned());
    };
    let LinkMode::Sdk(sdk) = &out.mode else {
        return Err("only an SDK build can be flashed".to_owned());
    };
    let layout = out.options.flash_size.layout();
    let init_data = sdk.join("bin/esp_init_data_default_v08.bin");
    let blank = out.elf.with_file_name("blank-4k.bin");
    fs::write(&blank, vec![0xFFu8; 0x1000])
        .map_err(|e| format!("cannot write {}: {e}", blank.display()))?;
    let mut cmd = Command::new(esptool);
    cmd.args([
        "--chip",
        "esp8266",
        "--port",
        port,
        "write-flash",
        "--flash-mode",
        "dio",
    ])
    .args(["--flash-size", out.options.flash_size.name()])
    .arg("0x00000")
    .arg(image0)
    .arg("0x10000")
    .arg(image1)
    .arg(format!("{:#x}", layout.rf_cal.offset))
    .arg(&blank)
    .arg(format!("{:#x}", layout.phy_data.offset))
    .arg(&init_data);
    for sector in 0..3 {
        cmd.arg(format!(
            "{:#x}",
            layout.system_parameter.offset + sector * 0x1000
        ))
        .arg(&blank);
    }
    util::run_live(&mut cmd)
}
