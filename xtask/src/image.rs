//! ESP8266 "v1" flash images, written from the linked firmware ELF.
//!
//! The NONOS SDK's non-OTA layout boots from two files:
//!
//! * `0x00000.bin`, read by the ESP8266 ROM loader at flash offset 0:
//!
//!   ```text
//!   u8  magic 0xE9
//!   u8  number of RAM segments (at most 15, see MAX_SEGMENTS)
//!   u8  SPI flash mode (qio 0, qout 1, dio 2, dout 3)
//!   u8  flash size code << 4 | flash frequency code
//!   u32 entry point (little-endian)
//!   then per segment: u32 load address, u32 length, `length` bytes
//!   zero padding up to 15 mod 16, then one checksum byte
//!   ```
//!
//!   The segments are the parts of the program that the ROM copies into RAM
//!   (IRAM `.text`, DRAM `.data`/`.rodata`); the checksum is 0xEF XOR every
//!   data byte of every segment (headers and padding are not included).
//! * `0x10000.bin`, written at flash offset 0x10000 and executed in place
//!   through the flash cache, which maps it at 0x40210000: the `.irom0.text`
//!   section byte for byte, zero-padded to a multiple of 4 (plus any section
//!   the linker placed directly after it).
//!
//! [`elf_to_v1_images`] produces exactly what
//! `esptool --chip esp8266 elf2image --version 1` writes for the same ELF
//! (checked byte for byte by this module's tests, against esptool 5.6.0);
//! its rules, restated from the format rather than from esptool's code:
//!
//! * an ELF section becomes image data when it has contents (type PROGBITS,
//!   INIT_ARRAY, FINI_ARRAY or PREINIT_ARRAY), is allocated, and has a
//!   non-zero address and size. NOBITS sections (`.bss`) are cleared by the
//!   SDK's startup code and never stored;
//! * each section's data is padded with zeros to a multiple of 4 bytes;
//! * sections are taken in section-table order (NOT sorted by address: the
//!   linker already writes them in layout order), and a section is merged
//!   into the previous one when it starts exactly where the previous one's
//!   padded data ends and both start in the same memory region;
//! * the one resulting segment in the flash-mapped window
//!   (0x40200000..0x40300000) is the `0x10000.bin` file (padded to 4 bytes,
//!   like every segment); every other segment goes to `0x00000.bin`.
//!
//! The module also drives esptool itself ([`ensure_esptool`],
//! [`esptool_image_info`], [`check_image_info`]) so that `cargo xtask` can
//! cross-check the images it writes.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::str::FromStr;

use object::LittleEndian;
use object::elf;
use object::read::elf::{FileHeader as _, SectionHeader as _};
use ramkey::flash_layout::{FLASH_MAP_BASE, IROM_OFFSET};

/// First byte of every ESP8266 (and ESP32) firmware image.
pub const IMAGE_MAGIC: u8 = 0xE9;

/// Initial value of the ROM loader's XOR checksum.
pub const CHECKSUM_SEED: u8 = 0xEF;

/// Most segments of one v1 image, `.irom0.text` included: esptool's
/// `elf2image` counts the flash segment too, so `0x00000.bin` holds at most
/// 15 RAM segments (its `image-info` would read 16; the ROM loader's own
/// limit is not documented, so the stricter rule is the one applied).
pub const MAX_SEGMENTS: usize = 16;

/// Addresses served by the flash cache: code here runs from flash.
pub const IROM_WINDOW: Range<u32> = 0x4020_0000..0x4030_0000;

/// Address of `.irom0.text` in the SDK's non-OTA layout (0x40210000): the
/// irom image's flash offset (0x10000) seen through the flash cache.
pub const IROM_ADDR: u32 = FLASH_MAP_BASE + IROM_OFFSET;

/// File name esptool gives the flash-mapped code image (its flash offset).
const IROM_FILE_NAME: &str = "0x10000.bin";

/// The esptool release the byte-for-byte comparisons were made with;
/// [`ensure_esptool`] installs exactly this one.
pub const ESPTOOL_REQUIREMENT: &str = "esptool==5.6.0";

/// Section whose contents become `0x10000.bin`.
const IROM_SECTION: &str = ".irom0.text";

/// Size of the per-segment header (load address, length).
const SEGMENT_HEADER_LEN: usize = 8;

// ---------------------------------------------------------------------------
// Flash parameters
// ---------------------------------------------------------------------------

/// SPI flash access mode, stored in header byte 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlashMode {
    /// Quad I/O.
    Qio,
    /// Quad output.
    Qout,
    /// Dual I/O (what most modules and this project use).
    Dio,
    /// Dual output.
    Dout,
}

/// SPI flash size and, for the `-c1` variants, layout; the high nibble of
/// header byte 3. The numbers are also the SDK's partition-map values
/// (`system_partition_table_regist`'s `map` must equal [`FlashSize::code`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlashSize {
    /// 256 KiB.
    Kib256,
    /// 512 KiB.
    Kib512,
    /// 1 MiB.
    Mib1,
    /// 2 MiB, 512 KiB + 512 KiB layout.
    Mib2,
    /// 2 MiB, 1024 KiB + 1024 KiB layout ("2MB-c1").
    Mib2C1,
    /// 4 MiB, 512 KiB + 512 KiB layout.
    Mib4,
    /// 4 MiB, 1024 KiB + 1024 KiB layout ("4MB-c1").
    Mib4C1,
    /// 8 MiB.
    Mib8,
    /// 16 MiB.
    Mib16,
}

/// SPI flash clock, the low nibble of header byte 3.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlashFreq {
    /// 20 MHz.
    Mhz20,
    /// 26.7 MHz.
    Mhz26,
    /// 40 MHz.
    Mhz40,
    /// 80 MHz.
    Mhz80,
}

impl FlashMode {
    /// Every mode, in code order.
    pub const ALL: [FlashMode; 4] = [Self::Qio, Self::Qout, Self::Dio, Self::Dout];

    /// The header code.
    pub const fn code(self) -> u8 {
        match self {
            Self::Qio => 0,
            Self::Qout => 1,
            Self::Dio => 2,
            Self::Dout => 3,
        }
    }

    /// esptool's spelling (`-fm` argument).
    pub const fn esptool_name(self) -> &'static str {
        match self {
            Self::Qio => "qio",
            Self::Qout => "qout",
            Self::Dio => "dio",
            Self::Dout => "dout",
        }
    }
}

impl FlashSize {
    /// Every size the ESP8266 header can express.
    pub const ALL: [FlashSize; 9] = [
        Self::Kib512,
        Self::Kib256,
        Self::Mib1,
        Self::Mib2,
        Self::Mib4,
        Self::Mib2C1,
        Self::Mib4C1,
        Self::Mib8,
        Self::Mib16,
    ];

    /// The header code (high nibble of byte 3, before shifting).
    pub const fn code(self) -> u8 {
        match self {
            Self::Kib512 => 0,
            Self::Kib256 => 1,
            Self::Mib1 => 2,
            Self::Mib2 => 3,
            Self::Mib4 => 4,
            Self::Mib2C1 => 5,
            Self::Mib4C1 => 6,
            Self::Mib8 => 8,
            Self::Mib16 => 9,
        }
    }

    /// esptool's spelling (`-fs` argument).
    pub const fn esptool_name(self) -> &'static str {
        match self {
            Self::Kib256 => "256KB",
            Self::Kib512 => "512KB",
            Self::Mib1 => "1MB",
            Self::Mib2 => "2MB",
            Self::Mib2C1 => "2MB-c1",
            Self::Mib4 => "4MB",
            Self::Mib4C1 => "4MB-c1",
            Self::Mib8 => "8MB",
            Self::Mib16 => "16MB",
        }
    }
}

impl FlashFreq {
    /// Every frequency, slowest first.
    pub const ALL: [FlashFreq; 4] = [Self::Mhz20, Self::Mhz26, Self::Mhz40, Self::Mhz80];

    /// The header code (low nibble of byte 3).
    pub const fn code(self) -> u8 {
        match self {
            Self::Mhz40 => 0x0,
            Self::Mhz26 => 0x1,
            Self::Mhz20 => 0x2,
            Self::Mhz80 => 0xF,
        }
    }

    /// esptool's spelling (`-ff` argument).
    pub const fn esptool_name(self) -> &'static str {
        match self {
            Self::Mhz20 => "20m",
            Self::Mhz26 => "26m",
            Self::Mhz40 => "40m",
            Self::Mhz80 => "80m",
        }
    }
}

/// Parses esptool's spelling of a value (e.g. `dio`, `4MB-c1`, `40m`).
macro_rules! parse_by_esptool_name {
    ($ty:ty, $what:literal) => {
        impl FromStr for $ty {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, String> {
                Self::ALL
                    .into_iter()
                    .find(|v| v.esptool_name() == s)
                    .ok_or_else(|| {
                        let known: Vec<&str> = Self::ALL.iter().map(|v| v.esptool_name()).collect();
                        format!(
                            "unknown {} `{s}` (expected one of {})",
                            $what,
                            known.join(", ")
                        )
                    })
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.esptool_name())
            }
        }
    };
}

parse_by_esptool_name!(FlashMode, "flash mode");
parse_by_esptool_name!(FlashSize, "flash size");
parse_by_esptool_name!(FlashFreq, "flash frequency");

/// The flash settings recorded in the image header, which the ROM loader
/// applies before it reads the rest of the flash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlashParams {
    /// SPI mode.
    pub mode: FlashMode,
    /// Flash size (and, for the SDK, the partition map).
    pub size: FlashSize,
    /// SPI clock.
    pub freq: FlashFreq,
}

impl FlashParams {
    /// Header byte 3: size code in the high nibble, frequency in the low one.
    pub const fn size_freq_byte(self) -> u8 {
        (self.size.code() << 4) | self.freq.code()
    }

    /// DIO at 40 MHz, the settings of this project's modules, with the given
    /// flash size (ramkey's own size type or this module's).
    pub fn dio_40m(size: impl Into<FlashSize>) -> Self {
        Self {
            mode: FlashMode::Dio,
            size: size.into(),
            freq: FlashFreq::Mhz40,
        }
    }
}

impl From<ramkey::flash_layout::FlashSize> for FlashSize {
    /// The header code for the non-OTA (512 KB + 512 KB) map of each size
    /// ramkey builds for; it equals the SDK partition map number
    /// (`sdk_size_map`), as the SDK requires.
    fn from(size: ramkey::flash_layout::FlashSize) -> Self {
        use ramkey::flash_layout::FlashSize as Ramkey;
        match size {
            Ramkey::OneMiB => Self::Mib1,
            Ramkey::TwoMiB => Self::Mib2,
            Ramkey::FourMiB => Self::Mib4,
        }
    }
}

impl Default for FlashParams {
    /// This project's flash: DIO, 40 MHz, 4 MB (`-fm dio -ff 40m -fs 4MB`).
    fn default() -> Self {
        Self::dio_40m(FlashSize::Mib4)
    }
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Why an ELF file cannot become a v1 image pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageError {
    /// The input is not an ELF32 little-endian Xtensa file, or is damaged.
    InvalidElf(String),
    /// There is no `.irom0.text` section, or it is empty or has no contents.
    NoIrom,
    /// `.irom0.text` is not at [`IROM_ADDR`].
    IromAddress {
        /// Where the section is.
        addr: u32,
    },
    /// A segment in the flash-mapped window does not start at [`IROM_ADDR`]:
    /// something other than `.irom0.text` (and what directly follows it) is
    /// there, and would be in neither file.
    UnexpectedFlashSegment {
        /// Start of the offending segment.
        addr: u32,
        /// The ELF sections it is made of.
        sections: String,
    },
    /// A RAM segment starts outside the ESP8266's loadable RAM
    /// (DRAM 0x3FFE8000..0x40000000, IRAM 0x40100000..0x40108000).
    SegmentOutsideRam {
        /// Load address.
        addr: u32,
        /// Length in bytes.
        len: u32,
        /// The ELF sections it is made of.
        sections: String,
    },
    /// A segment does not fit in the memory it is loaded into (its RAM
    /// region, or the flash-mapped window for `.irom0.text`).
    SegmentTooLarge {
        /// Load address.
        addr: u32,
        /// Length in bytes.
        len: u32,
        /// The largest length that fits at this address.
        max: u32,
        /// The ELF sections it is made of.
        sections: String,
    },
    /// More than [`MAX_SEGMENTS`] segments, counting `.irom0.text`.
    TooManySegments {
        /// How many there are (RAM segments + 1).
        count: usize,
    },
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidElf(reason) => {
                write!(f, "not a usable ELF32 little-endian Xtensa file: {reason}")
            }
            Self::NoIrom => write!(
                f,
                "the ELF has no (non-empty) {IROM_SECTION} section: nothing to put in {IROM_FILE_NAME}"
            ),
            Self::IromAddress { addr } => write!(
                f,
                "{IROM_SECTION} is at {addr:#010x}, but the non-OTA layout maps {IROM_FILE_NAME} \
                 at {IROM_ADDR:#010x}: check the linker script"
            ),
            Self::UnexpectedFlashSegment { addr, sections } => write!(
                f,
                "flash-mapped segment at {addr:#010x} ({sections}) does not start at \
                 {IROM_ADDR:#010x}: only {IROM_SECTION} and sections directly after it may be in \
                 the flash window (0x40200000..0x40300000)"
            ),
            Self::SegmentOutsideRam {
                addr,
                len,
                sections,
            } => write!(
                f,
                "segment at {addr:#010x}, {len} bytes ({sections}) is not in DRAM \
                 (0x3ffe8000..0x40000000) or IRAM (0x40100000..0x40108000): the ROM loader \
                 cannot load it there"
            ),
            Self::SegmentTooLarge {
                addr,
                len,
                max,
                sections,
            } => write!(
                f,
                "segment at {addr:#010x} ({sections}) is {len} bytes, but only {max} bytes fit \
                 in its memory region"
            ),
            Self::TooManySegments { count } => write!(
                f,
                "{count} segments ({} in RAM, plus {IROM_SECTION}): an ESP8266 v1 image holds at \
                 most {MAX_SEGMENTS} (esptool's limit); group the sections in the linker script",
                count - 1
            ),
        }
    }
}

impl std::error::Error for ImageError {}

// ---------------------------------------------------------------------------
// Memory map
// ---------------------------------------------------------------------------

/// ESP8266 memory regions, as esptool names them. Two sections are merged
/// only when they start in the same region (or both in none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Region {
    /// DPORT registers.
    Dport,
    /// Data RAM usable by a loaded program.
    Dram,
    /// Instruction RAM (the part not used as flash cache).
    Iram,
    /// Flash-mapped code, as esptool bounds it.
    Irom,
}

/// The regions and their address ranges (esptool's `MEMORY_MAP` for the
/// ESP8266, which is also what its `image-info` prints as "Memory types").
const MEMORY_MAP: [(Range<u32>, Region); 4] = [
    (0x3FF0_0000..0x3FF0_0010, Region::Dport),
    (0x3FFE_8000..0x4000_0000, Region::Dram),
    (0x4010_0000..0x4010_8000, Region::Iram),
    (0x4020_1010..0x402E_1010, Region::Irom),
];

/// The region `addr` is in, with the region's end address.
fn region_of(addr: u32) -> Option<(Region, u32)> {
    MEMORY_MAP
        .iter()
        .find(|(range, _)| range.contains(&addr))
        .map(|(range, region)| (*region, range.end))
}

// ---------------------------------------------------------------------------
// ELF to image
// ---------------------------------------------------------------------------

/// One image segment: consecutive ELF sections merged, data padded to 4.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Load (or, for flash, mapped) address.
    pub addr: u32,
    /// Contents, zero-padded to a multiple of 4 bytes.
    pub data: Vec<u8>,
    /// Names of the ELF sections merged into it, in order.
    pub sections: Vec<String>,
}

impl Segment {
    /// Length in bytes, as stored in the segment header.
    pub fn size(&self) -> u32 {
        // Every segment comes from ELF32 sections that fit below 4 GiB.
        u32::try_from(self.data.len()).unwrap_or(u32::MAX)
    }

    /// Address just past the (padded) data.
    fn end(&self) -> u64 {
        u64::from(self.addr) + self.data.len() as u64
    }

    /// The section names joined for messages.
    fn section_list(&self) -> String {
        self.sections.join(" ")
    }
}

/// The two files of a v1 image, plus what they were made of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct V1Images {
    /// `0x00000.bin`: header, RAM segments, checksum.
    pub image0: Vec<u8>,
    /// `0x10000.bin`: the flash-mapped code.
    pub irom: Vec<u8>,
    /// Entry point recorded in the header.
    pub entry: u32,
    /// The RAM segments of `image0`, in image order.
    pub ram_segments: Vec<Segment>,
}

/// Builds the ESP8266 v1 image pair (`0x00000.bin`, `0x10000.bin`) for the
/// SDK's non-OTA layout from a linked ELF, as `esptool --chip esp8266
/// elf2image --version 1` would (see the module documentation for the
/// rules).
pub fn elf_to_v1_images(elf: &[u8], flash: FlashParams) -> Result<V1Images, ImageError> {
    let parsed = read_elf(elf)?;

    let irom_addr = parsed.irom_addr.ok_or(ImageError::NoIrom)?;
    if irom_addr != IROM_ADDR {
        return Err(ImageError::IromAddress { addr: irom_addr });
    }

    let (flash_segments, ram_segments): (Vec<Segment>, Vec<Segment>) =
        merge_adjacent(parsed.sections)
            .into_iter()
            .partition(|s| IROM_WINDOW.contains(&s.addr));

    // `.irom0.text` is non-empty at IROM_ADDR, so exactly one flash segment
    // starts there unless something else in the window precedes it.
    let mut irom = None;
    for segment in flash_segments {
        if segment.addr == IROM_ADDR && irom.is_none() {
            irom = Some(segment);
        } else {
            return Err(ImageError::UnexpectedFlashSegment {
                addr: segment.addr,
                sections: segment.section_list(),
            });
        }
    }
    let irom = irom.ok_or(ImageError::NoIrom)?;
    if irom.end() > u64::from(IROM_WINDOW.end) {
        return Err(ImageError::SegmentTooLarge {
            addr: irom.addr,
            len: irom.size(),
            max: IROM_WINDOW.end - irom.addr,
            sections: irom.section_list(),
        });
    }

    let count = ram_segments.len() + 1;
    if count > MAX_SEGMENTS {
        return Err(ImageError::TooManySegments { count });
    }
    for segment in &ram_segments {
        check_ram_segment(segment)?;
    }

    let image0 = write_app_image(parsed.entry, flash, &ram_segments);
    Ok(V1Images {
        image0,
        irom: irom.data,
        entry: parsed.entry,
        ram_segments,
    })
}

/// What [`read_elf`] extracts.
struct ParsedElf {
    /// `e_entry`.
    entry: u32,
    /// Address of `.irom0.text` if it holds image data.
    irom_addr: Option<u32>,
    /// Sections that become image data, in section-table order, each as a
    /// one-section segment with padded data.
    sections: Vec<Segment>,
}

/// Checks the ELF identity and collects the sections that carry image data.
fn read_elf(data: &[u8]) -> Result<ParsedElf, ImageError> {
    let invalid = |reason: String| ImageError::InvalidElf(reason);

    if data.get(..4) != Some(elf::ELFMAG.as_slice()) {
        return Err(invalid("no ELF magic number".into()));
    }
    let ident = |i: usize| data.get(i).copied().unwrap_or(0);
    if ident(4) != elf::ELFCLASS32 {
        return Err(invalid(format!("ELF class {} is not ELF32", ident(4))));
    }
    if ident(5) != elf::ELFDATA2LSB {
        return Err(invalid(format!(
            "ELF data encoding {} is not little-endian",
            ident(5)
        )));
    }
    let endian = LittleEndian;
    let header = elf::FileHeader32::<LittleEndian>::parse(data)
        .map_err(|e| invalid(format!("ELF header: {e}")))?;
    let machine = header.e_machine(endian);
    if machine != elf::EM_XTENSA {
        return Err(invalid(format!(
            "machine {machine} is not Xtensa ({})",
            elf::EM_XTENSA
        )));
    }
    let table = header
        .sections(endian, data)
        .map_err(|e| invalid(format!("section table: {e}")))?;

    let mut sections = Vec::new();
    let mut irom_addr = None;
    for section in table.iter() {
        let name = table
            .section_name(endian, section)
            .map_err(|e| invalid(format!("section name: {e}")))?;
        let name = String::from_utf8_lossy(name).into_owned();
        let has_contents = matches!(
            section.sh_type(endian),
            elf::SHT_PROGBITS | elf::SHT_INIT_ARRAY | elf::SHT_FINI_ARRAY | elf::SHT_PREINIT_ARRAY
        );
        let allocated = section.sh_flags(endian) & elf::SHF_ALLOC != 0;
        let addr = section.sh_addr(endian);
        // esptool skips sections at address 0 or of size 0 and does not look
        // at SHF_ALLOC; linkers give every non-allocated section address 0,
        // so the extra check changes nothing for linker output and keeps
        // hand-made oddities out of the image.
        if !has_contents || !allocated || addr == 0 || section.sh_size(endian) == 0 {
            continue;
        }
        let bytes = section
            .data(endian, data)
            .map_err(|e| invalid(format!("section {name}: {e}")))?;
        if name == IROM_SECTION && irom_addr.is_none() {
            irom_addr = Some(addr);
        }
        let mut padded = bytes.to_vec();
        padded.resize(bytes.len().next_multiple_of(4), 0);
        sections.push(Segment {
            addr,
            data: padded,
            sections: vec![name],
        });
    }
    Ok(ParsedElf {
        entry: header.e_entry(endian),
        irom_addr,
        sections,
    })
}

/// Merges each section into the previous one when it starts exactly at the
/// end of the previous one's padded data, in the same memory region. The
/// order is kept: the linker writes sections in layout order, and the image
/// keeps that order (esptool does the same and does not sort).
fn merge_adjacent(sections: Vec<Segment>) -> Vec<Segment> {
    let mut merged: Vec<Segment> = Vec::with_capacity(sections.len());
    // Start address of the last section merged, for the region comparison.
    let mut last_start = 0;
    for section in sections {
        if let Some(previous) = merged.last_mut() {
            let same_region =
                region_of(last_start).map(|r| r.0) == region_of(section.addr).map(|r| r.0);
            if same_region && previous.end() == u64::from(section.addr) {
                last_start = section.addr;
                previous.data.extend_from_slice(&section.data);
                previous.sections.extend(section.sections);
                continue;
            }
        }
        last_start = section.addr;
        merged.push(section);
    }
    merged
}

/// Checks that a RAM segment lies inside DRAM or IRAM.
fn check_ram_segment(segment: &Segment) -> Result<(), ImageError> {
    match region_of(segment.addr) {
        Some((Region::Dram | Region::Iram, end)) => {
            if segment.end() > u64::from(end) {
                return Err(ImageError::SegmentTooLarge {
                    addr: segment.addr,
                    len: segment.size(),
                    max: end - segment.addr,
                    sections: segment.section_list(),
                });
            }
            Ok(())
        }
        _ => Err(ImageError::SegmentOutsideRam {
            addr: segment.addr,
            len: segment.size(),
            sections: segment.section_list(),
        }),
    }
}

/// Lays out `0x00000.bin`. The segments are already checked (count, sizes).
fn write_app_image(entry: u32, flash: FlashParams, segments: &[Segment]) -> Vec<u8> {
    let body: usize = segments
        .iter()
        .map(|s| SEGMENT_HEADER_LEN + s.data.len())
        .sum();
    let mut image = Vec::with_capacity(8 + body + 16);
    image.push(IMAGE_MAGIC);
    // At most MAX_SEGMENTS - 1 (15): checked by the caller.
    image.push(u8::try_from(segments.len()).unwrap_or(u8::MAX));
    image.push(flash.mode.code());
    image.push(flash.size_freq_byte());
    image.extend_from_slice(&entry.to_le_bytes());

    let mut checksum = CHECKSUM_SEED;
    for segment in segments {
        image.extend_from_slice(&segment.addr.to_le_bytes());
        image.extend_from_slice(&segment.size().to_le_bytes());
        image.extend_from_slice(&segment.data);
        checksum = segment.data.iter().fold(checksum, |c, b| c ^ b);
    }
    // The checksum is the last byte of a 16-byte block.
    let padded = (image.len() + 1).next_multiple_of(16) - 1;
    image.resize(padded, 0);
    image.push(checksum);
    image
}

// ---------------------------------------------------------------------------
// esptool
// ---------------------------------------------------------------------------

/// Runs a command, returning its output if it exited successfully and a
/// message naming the command, status and stderr otherwise.
fn run(command: &mut Command) -> Result<Output, String> {
    let described = format!("{command:?}");
    let output = command
        .output()
        .map_err(|e| format!("cannot run {described}: {e}"))?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(format!(
            "{described} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// esptool's version as (major, minor, patch), from `esptool version`,
/// whose last line is the bare version number.
pub fn esptool_version(esptool: &Path) -> Result<(u32, u32, u32), String> {
    let output = run(Command::new(esptool).arg("version"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let mut parts = line.trim_start_matches('v').split('.').map(|p| {
        let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
        digits.parse::<u32>().ok()
    });
    match (
        parts.next().flatten(),
        parts.next().flatten(),
        parts.next().flatten(),
    ) {
        (Some(major), Some(minor), patch) => Ok((major, minor, patch.unwrap_or(0))),
        _ => Err(format!(
            "cannot read a version in `{} version` output: {text:?}",
            esptool.display()
        )),
    }
}

/// The image-info subcommand's spelling: esptool 5 renamed `image_info` to
/// `image-info` (the old name still works there, with a deprecation warning).
fn image_info_subcommand(esptool: &Path) -> Result<&'static str, String> {
    let (major, _, _) = esptool_version(esptool)?;
    Ok(if major >= 5 {
        "image-info"
    } else {
        "image_info"
    })
}

/// Runs `esptool --chip esp8266 image-info <image>` and returns what it
/// printed (stdout, then stderr, where esptool writes its warnings).
/// Fails if esptool cannot run or rejects the file.
pub fn esptool_image_info(esptool: &Path, image: &Path) -> Result<String, String> {
    let subcommand = image_info_subcommand(esptool)?;
    let output = run(Command::new(esptool)
        .args(["--chip", "esp8266", subcommand])
        .arg(image)
        .env("NO_COLOR", "1"))?;
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    Ok(text)
}

/// The facts of an esptool `image-info` report that the xtask checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageInfo {
    /// "Entry point: 0x..." (None when esptool says "Entry point not set").
    pub entry: Option<u32>,
    /// "Segments: N".
    pub segments: usize,
    /// Whether the "Checksum:" line says "(valid)".
    pub checksum_valid: bool,
}

/// Reads entry point, segment count and checksum verdict from the output of
/// [`esptool_image_info`].
pub fn parse_image_info(info: &str) -> Result<ImageInfo, String> {
    let value = |key: &str| {
        info.lines()
            .find_map(|l| l.trim().strip_prefix(key).map(str::trim))
    };
    let entry = match value("Entry point:") {
        Some(hex) => {
            let digits = hex.trim_start_matches("0x");
            Some(u32::from_str_radix(digits, 16).map_err(|e| format!("entry point `{hex}`: {e}"))?)
        }
        None if info.contains("Entry point not set") => None,
        None => return Err(format!("no entry point in esptool's output:\n{info}")),
    };
    let segments = value("Segments:")
        .ok_or_else(|| format!("no segment count in esptool's output:\n{info}"))?
        .parse()
        .map_err(|e| format!("segment count: {e}"))?;
    let checksum = value("Checksum:")
        .ok_or_else(|| format!("no checksum line in esptool's output:\n{info}"))?;
    Ok(ImageInfo {
        entry,
        segments,
        checksum_valid: checksum.ends_with("(valid)"),
    })
}

/// Ok only if esptool's `image-info` output reports a valid checksum
/// ([`parse_image_info`] gives the details).
pub fn check_image_info(info: &str) -> Result<(), String> {
    if parse_image_info(info)?.checksum_valid {
        Ok(())
    } else {
        Err(format!("esptool reports an invalid checksum:\n{info}"))
    }
}

/// Returns the esptool executable of the virtualenv `venv_dir`, creating the
/// virtualenv (`python3 -m venv`) and installing [`ESPTOOL_REQUIREMENT`]
/// with its pip when esptool is not there yet (needs python3-venv and
/// network access to PyPI the first time).
pub fn ensure_esptool(venv_dir: &Path) -> Result<PathBuf, String> {
    let bin = venv_dir.join("bin");
    let esptool = bin.join("esptool");
    if esptool.is_file() && esptool_version(&esptool).is_ok() {
        return Ok(esptool);
    }
    let python = bin.join("python3");
    if !python.is_file() {
        run(Command::new("python3").args(["-m", "venv"]).arg(venv_dir))?;
    }
    run(Command::new(&python).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        ESPTOOL_REQUIREMENT,
    ]))?;
    esptool_version(&esptool)
        .map(|_| esptool.clone())
        .map_err(|e| {
            format!(
                "esptool installed in {} but does not run: {e}",
                venv_dir.display()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    // -----------------------------------------------------------------------
    // A minimal ELF32 writer, so that every case (including broken files) is
    // built in the test itself, without the cross toolchain.
    // -----------------------------------------------------------------------

    /// One section of a hand-made ELF.
    #[derive(Clone)]
    struct Sec {
        name: String,
        sh_type: u32,
        flags: u32,
        addr: u32,
        data: Vec<u8>,
        /// sh_size of a NOBITS section (no file data).
        nobits_size: u32,
    }

    impl Sec {
        /// An allocated PROGBITS section.
        fn progbits(name: &str, addr: u32, data: &[u8]) -> Self {
            Self {
                name: name.into(),
                sh_type: elf::SHT_PROGBITS,
                flags: elf::SHF_ALLOC | elf::SHF_EXECINSTR,
                addr,
                data: data.to_vec(),
                nobits_size: 0,
            }
        }

        /// An allocated NOBITS section (like `.bss`).
        fn nobits(name: &str, addr: u32, size: u32) -> Self {
            Self {
                name: name.into(),
                sh_type: elf::SHT_NOBITS,
                flags: elf::SHF_ALLOC | elf::SHF_WRITE,
                addr,
                data: Vec::new(),
                nobits_size: size,
            }
        }

        fn with_type(mut self, sh_type: u32) -> Self {
            self.sh_type = sh_type;
            self
        }

        fn with_flags(mut self, flags: u32) -> Self {
            self.flags = flags;
            self
        }
    }

    /// Section data: a recognisable byte pattern of `len` bytes.
    fn pattern(seed: u8, len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| seed.wrapping_add((i as u8).wrapping_mul(7)))
            .collect()
    }

    /// Writes an ELF32 little-endian Xtensa executable holding `sections`
    /// (plus the null section and `.shstrtab`), without program headers.
    fn build_elf(entry: u32, sections: &[Sec]) -> Vec<u8> {
        fn put16(v: &mut Vec<u8>, x: u16) {
            v.extend_from_slice(&x.to_le_bytes());
        }
        fn put32(v: &mut Vec<u8>, x: u32) {
            v.extend_from_slice(&x.to_le_bytes());
        }
        fn align4(v: &mut Vec<u8>) {
            v.resize(v.len().next_multiple_of(4), 0);
        }

        // Section name table: "\0" then each name, then ".shstrtab".
        let mut shstrtab = vec![0u8];
        let mut name_offsets = Vec::new();
        for s in sections
            .iter()
            .map(|s| s.name.as_str())
            .chain([".shstrtab"])
        {
            name_offsets.push(shstrtab.len() as u32);
            shstrtab.extend_from_slice(s.as_bytes());
            shstrtab.push(0);
        }

        let mut file = vec![0u8; 52];
        let mut data_offsets = Vec::new();
        for s in sections {
            align4(&mut file);
            data_offsets.push(file.len() as u32);
            file.extend_from_slice(&s.data);
        }
        let shstrtab_offset = file.len() as u32;
        file.extend_from_slice(&shstrtab);
        align4(&mut file);
        let shoff = file.len() as u32;

        // Section headers: null, the sections, .shstrtab.
        file.extend_from_slice(&[0u8; 40]);
        for (i, s) in sections.iter().enumerate() {
            let size = if s.sh_type == elf::SHT_NOBITS {
                s.nobits_size
            } else {
                s.data.len() as u32
            };
            for word in [
                name_offsets[i],
                s.sh_type,
                s.flags,
                s.addr,
                data_offsets[i],
                size,
                0,
                0,
                4,
                0,
            ] {
                put32(&mut file, word);
            }
        }
        for word in [
            name_offsets[sections.len()],
            elf::SHT_STRTAB,
            0,
            0,
            shstrtab_offset,
            shstrtab.len() as u32,
            0,
            0,
            1,
            0,
        ] {
            put32(&mut file, word);
        }

        let mut header = Vec::with_capacity(52);
        header.extend_from_slice(&[0x7F, b'E', b'L', b'F', 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        put16(&mut header, elf::ET_EXEC);
        put16(&mut header, elf::EM_XTENSA);
        put32(&mut header, 1); // e_version
        put32(&mut header, entry);
        put32(&mut header, 0); // e_phoff
        put32(&mut header, shoff);
        put32(&mut header, 0x300); // e_flags, as GNU ld writes for lx106
        put16(&mut header, 52); // e_ehsize
        put16(&mut header, 32); // e_phentsize
        put16(&mut header, 0); // e_phnum
        put16(&mut header, 40); // e_shentsize
        put16(&mut header, (sections.len() + 2) as u16);
        put16(&mut header, (sections.len() + 1) as u16); // e_shstrndx
        file[..52].copy_from_slice(&header);
        file
    }

    const ENTRY: u32 = 0x4010_0004;

    /// A firmware-like ELF in the SDK's section order (DRAM, IRAM, flash),
    /// with odd lengths and the sections that must be left out.
    fn sample_sections() -> Vec<Sec> {
        vec![
            Sec::progbits(".data", 0x3FFE_8000, &[1, 2, 3, 4, 5, 6])
                .with_flags(elf::SHF_ALLOC | elf::SHF_WRITE),
            Sec::progbits(".rodata", 0x3FFE_8008, b"ramkey").with_flags(elf::SHF_ALLOC),
            Sec::nobits(".bss", 0x3FFE_8010, 0x40),
            Sec::progbits(".text", 0x4010_0000, &pattern(0x10, 14)),
            Sec::progbits(".irom0.text", IROM_ADDR, &pattern(0x80, 7)),
            Sec::progbits(".comment", 0, b"GCC: test").with_flags(0),
            Sec::progbits(".xt.prop", 0, &[9; 12]).with_flags(0),
        ]
    }

    fn sample_elf() -> Vec<u8> {
        build_elf(ENTRY, &sample_sections())
    }

    fn convert(sections: &[Sec]) -> Result<V1Images, ImageError> {
        elf_to_v1_images(&build_elf(ENTRY, sections), FlashParams::default())
    }

    /// A segment read back from an image: (load address, data).
    type RawSegment = (u32, Vec<u8>);

    /// Splits a `0x00000.bin` back into (header, segments, checksum),
    /// asserting the layout rules on the way.
    fn parse_app(app: &[u8]) -> ([u8; 8], Vec<RawSegment>, u8) {
        assert_eq!(app.len() % 16, 0, "image length must be a multiple of 16");
        let header: [u8; 8] = app[..8].try_into().expect("header");
        let mut pos = 8;
        let mut segments = Vec::new();
        for _ in 0..app[1] {
            let addr = u32::from_le_bytes(app[pos..pos + 4].try_into().expect("addr"));
            let len = u32::from_le_bytes(app[pos + 4..pos + 8].try_into().expect("len")) as usize;
            assert_eq!(len % 4, 0, "segment lengths are multiples of 4");
            segments.push((addr, app[pos + 8..pos + 8 + len].to_vec()));
            pos += 8 + len;
        }
        let last = app.len() - 1;
        assert!(last - pos < 16, "at most 15 padding bytes");
        assert!(app[pos..last].iter().all(|&b| b == 0), "padding is zeros");
        (header, segments, app[last])
    }

    // -----------------------------------------------------------------------
    // Header, segments, checksum
    // -----------------------------------------------------------------------

    #[test]
    fn header_fields() {
        let images = elf_to_v1_images(&sample_elf(), FlashParams::default()).expect("image");
        let (header, segments, _) = parse_app(&images.image0);
        assert_eq!(header[0], 0xE9);
        assert_eq!(header[1], 2, "DRAM (.data+.rodata) and IRAM (.text)");
        assert_eq!(header[2], 2, "dio");
        assert_eq!(header[3], 0x40, "4MB, 40m");
        assert_eq!(
            u32::from_le_bytes(header[4..8].try_into().expect("entry")),
            ENTRY
        );
        assert_eq!(images.entry, ENTRY);
        assert_eq!(segments.len(), images.ram_segments.len());
    }

    #[test]
    fn flash_codes() {
        let mode = [
            (FlashMode::Qio, 0),
            (FlashMode::Qout, 1),
            (FlashMode::Dio, 2),
            (FlashMode::Dout, 3),
        ];
        let size = [
            (FlashSize::Kib512, 0x00),
            (FlashSize::Kib256, 0x10),
            (FlashSize::Mib1, 0x20),
            (FlashSize::Mib2, 0x30),
            (FlashSize::Mib4, 0x40),
            (FlashSize::Mib2C1, 0x50),
            (FlashSize::Mib4C1, 0x60),
            (FlashSize::Mib8, 0x80),
            (FlashSize::Mib16, 0x90),
        ];
        let freq = [
            (FlashFreq::Mhz40, 0x0),
            (FlashFreq::Mhz26, 0x1),
            (FlashFreq::Mhz20, 0x2),
            (FlashFreq::Mhz80, 0xF),
        ];
        let elf = sample_elf();
        for (m, m_code) in mode {
            for (s, s_code) in size {
                for (f, f_code) in freq {
                    let params = FlashParams {
                        mode: m,
                        size: s,
                        freq: f,
                    };
                    let app = elf_to_v1_images(&elf, params).expect("image").image0;
                    assert_eq!(app[2], m_code, "{params:?}");
                    assert_eq!(app[3], s_code | f_code, "{params:?}");
                }
            }
        }
    }

    #[test]
    fn ramkey_sizes_match_the_sdk_partition_map() {
        for size in ramkey::flash_layout::FlashSize::ALL {
            let params = FlashParams::dio_40m(size);
            assert_eq!(
                u32::from(params.size.code()),
                size.sdk_size_map(),
                "{size:?}"
            );
            assert_eq!(params.size.esptool_name(), size.name());
            assert_eq!(params.mode, FlashMode::Dio);
            assert_eq!(params.freq, FlashFreq::Mhz40);
        }
        assert_eq!(
            FlashParams::default(),
            FlashParams::dio_40m(ramkey::flash_layout::FlashSize::DEFAULT)
        );
    }

    #[test]
    fn flash_param_names() {
        for m in FlashMode::ALL {
            assert_eq!(m.esptool_name().parse::<FlashMode>(), Ok(m));
        }
        for s in FlashSize::ALL {
            assert_eq!(s.to_string().parse::<FlashSize>(), Ok(s));
        }
        for f in FlashFreq::ALL {
            assert_eq!(f.esptool_name().parse::<FlashFreq>(), Ok(f));
        }
        assert_eq!("4MB-c1".parse::<FlashSize>(), Ok(FlashSize::Mib4C1));
        let err = "4M"
            .parse::<FlashSize>()
            .expect_err("not esptool's spelling");
        assert!(err.contains("4MB-c1"), "{err}");
        assert_eq!(
            esptool_args(FlashParams::default()),
            ["-fm", "dio", "-ff", "40m", "-fs", "4MB"]
        );
    }

    #[test]
    fn segment_contents_and_padding() {
        let images = elf_to_v1_images(&sample_elf(), FlashParams::default()).expect("image");
        let (_, segments, _) = parse_app(&images.image0);

        // .data (6 bytes, padded to 8) then .rodata (6, padded to 8), merged
        // because .rodata starts where padded .data ends.
        let mut dram = vec![1, 2, 3, 4, 5, 6, 0, 0];
        dram.extend_from_slice(b"ramkey\0\0");
        assert_eq!(segments[0], (0x3FFE_8000, dram));
        let mut iram = pattern(0x10, 14);
        iram.extend_from_slice(&[0, 0]);
        assert_eq!(segments[1], (0x4010_0000, iram));

        assert_eq!(images.ram_segments[0].sections, [".data", ".rodata"]);
        assert_eq!(images.ram_segments[1].sections, [".text"]);
        assert_eq!(images.ram_segments[0].size(), 16);
        // Header + 2 segment headers + 32 bytes of data = 56, so 7 bytes of
        // padding then the checksum.
        assert_eq!(images.image0.len(), 64);
    }

    #[test]
    fn checksum_covers_segment_data_only() {
        let images = elf_to_v1_images(&sample_elf(), FlashParams::default()).expect("image");
        let (_, segments, checksum) = parse_app(&images.image0);
        let expected = segments
            .iter()
            .flat_map(|(_, d)| d)
            .fold(0xEF, |c, b| c ^ b);
        assert_eq!(checksum, expected);

        // Flash parameters and entry point do not enter the checksum.
        let other = FlashParams {
            mode: FlashMode::Qio,
            size: FlashSize::Mib1,
            freq: FlashFreq::Mhz80,
        };
        let app = elf_to_v1_images(&sample_elf(), other)
            .expect("image")
            .image0;
        assert_eq!(app.last(), images.image0.last());
    }

    #[test]
    fn padding_lengths() {
        // One segment of n*4 bytes: 8 + 8 + 4n bytes before the padding.
        for words in 0..8usize {
            let len = 4 * words + 4;
            let sections = [
                Sec::progbits(".text", 0x4010_0000, &pattern(1, len)),
                Sec::progbits(".irom0.text", IROM_ADDR, &[1, 2, 3, 4]),
            ];
            let app = convert(&sections).expect("image").image0;
            let unpadded = 16 + len;
            assert_eq!(app.len(), (unpadded + 1).next_multiple_of(16), "len {len}");
            parse_app(&app);
        }
    }

    #[test]
    fn irom_is_the_section_padded_to_4() {
        let images = elf_to_v1_images(&sample_elf(), FlashParams::default()).expect("image");
        let mut expected = pattern(0x80, 7);
        expected.push(0);
        assert_eq!(images.irom, expected);
    }

    #[test]
    fn irom_absorbs_sections_directly_after_it() {
        let mut sections = sample_sections();
        sections.push(Sec::progbits(".irom0.rodata", IROM_ADDR + 8, &[0xCC; 4]));
        let images = convert(&sections).expect("image");
        assert_eq!(images.irom.len(), 12);
        assert_eq!(&images.irom[8..], &[0xCC; 4]);
    }

    #[test]
    fn section_table_order_is_kept() {
        // IRAM listed before DRAM, and a DRAM section listed before the one
        // that precedes it in memory: no sorting, no merging backwards.
        let sections = [
            Sec::progbits(".text", 0x4010_0000, &[0xA0; 8]),
            Sec::progbits(".data", 0x3FFE_8010, &[0xD0; 4]),
            Sec::progbits(".rodata", 0x3FFE_8000, &[0xD1; 16]),
            Sec::progbits(".irom0.text", IROM_ADDR, &[1, 2, 3, 4]),
        ];
        let images = convert(&sections).expect("image");
        let addrs: Vec<u32> = images.ram_segments.iter().map(|s| s.addr).collect();
        assert_eq!(addrs, [0x4010_0000, 0x3FFE_8010, 0x3FFE_8000]);
        let (_, segments, _) = parse_app(&images.image0);
        assert_eq!(segments[1], (0x3FFE_8010, vec![0xD0; 4]));
    }

    #[test]
    fn merge_rules() {
        let seg = |addr: u32, len: usize, name: &str| Segment {
            addr,
            data: vec![0x55; len],
            sections: vec![name.into()],
        };
        // Contiguous chain in one region: one segment.
        let merged = merge_adjacent(vec![
            seg(0x3FFE_8000, 8, "a"),
            seg(0x3FFE_8008, 4, "b"),
            seg(0x3FFE_800C, 4, "c"),
        ]);
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].sections, ["a", "b", "c"]);
        assert_eq!(merged[0].data.len(), 16);

        // A gap (even of 4 bytes) keeps segments apart.
        let merged = merge_adjacent(vec![seg(0x3FFE_8000, 8, "a"), seg(0x3FFE_800C, 4, "b")]);
        assert_eq!(merged.len(), 2);

        // Contiguous addresses in different regions are not merged.
        let merged = merge_adjacent(vec![
            seg(0x3FFF_FFFC, 4, "dram"),
            seg(0x4000_0000, 4, "rom"),
        ]);
        assert_eq!(merged.len(), 2);
        let merged = merge_adjacent(vec![
            seg(0x4020_1000, 0x10, "low"),
            seg(0x4020_1010, 4, "irom"),
        ]);
        assert_eq!(merged.len(), 2);

        // Two addresses outside every region count as the same region.
        let merged = merge_adjacent(vec![
            seg(0x6000_1200, 4, "rtc0"),
            seg(0x6000_1204, 4, "rtc1"),
        ]);
        assert_eq!(merged.len(), 1);
    }

    #[test]
    fn unaligned_successor_is_not_merged() {
        // .data is 6 bytes, padded to 8; a section at +6 does not start at
        // the padded end, so it stays a segment of its own.
        let sections = [
            Sec::progbits(".data", 0x3FFE_8000, &[1; 6]),
            Sec::progbits(".rodata", 0x3FFE_8006, &[2; 2]),
            Sec::progbits(".irom0.text", IROM_ADDR, &[1, 2, 3, 4]),
        ];
        let images = convert(&sections).expect("image");
        assert_eq!(images.ram_segments.len(), 2);
        assert_eq!(images.ram_segments[1].data, [2, 2, 0, 0]);
    }

    #[test]
    fn sections_without_image_data_are_skipped() {
        let mut sections = sample_sections();
        sections.extend([
            Sec::progbits(".empty", 0x3FFE_9000, &[]),
            Sec::progbits(".noalloc", 0x3FFE_9000, &[1; 4]).with_flags(0),
            Sec::progbits(".note", 0x3FFE_9000, &[1; 4]).with_type(elf::SHT_NOTE),
            Sec::nobits(".heap", 0x3FFE_A000, 0x1000),
        ]);
        let images = convert(&sections).expect("image");
        let names: Vec<&str> = images
            .ram_segments
            .iter()
            .flat_map(|s| s.sections.iter().map(String::as_str))
            .collect();
        assert_eq!(names, [".data", ".rodata", ".text"]);
        assert_eq!(
            images.image0,
            elf_to_v1_images(&sample_elf(), FlashParams::default())
                .expect("image")
                .image0
        );
    }

    #[test]
    fn init_arrays_are_image_data() {
        let mut sections = sample_sections();
        sections.push(
            Sec::progbits(".init_array", 0x3FFE_9000, &[7; 4]).with_type(elf::SHT_INIT_ARRAY),
        );
        let images = convert(&sections).expect("image");
        assert_eq!(images.ram_segments.len(), 3);
        assert_eq!(images.ram_segments[2].addr, 0x3FFE_9000);
    }

    // -----------------------------------------------------------------------
    // Errors
    // -----------------------------------------------------------------------

    fn invalid_elf(elf: &[u8]) -> String {
        match elf_to_v1_images(elf, FlashParams::default()) {
            Err(ImageError::InvalidElf(reason)) => reason,
            other => panic!("expected InvalidElf, got {other:?}"),
        }
    }

    #[test]
    fn rejects_non_xtensa_elf32_le() {
        assert!(invalid_elf(b"").contains("magic"));
        assert!(invalid_elf(b"#!/bin/sh\necho not an ELF\n").contains("magic"));

        let mut elf64 = sample_elf();
        elf64[4] = elf::ELFCLASS64;
        assert!(invalid_elf(&elf64).contains("ELF32"));

        let mut big_endian = sample_elf();
        big_endian[5] = elf::ELFDATA2MSB;
        assert!(invalid_elf(&big_endian).contains("little-endian"));

        let mut arm = sample_elf();
        arm[18..20].copy_from_slice(&elf::EM_ARM.to_le_bytes());
        assert!(invalid_elf(&arm).contains("not Xtensa"));

        let truncated = &sample_elf()[..40];
        assert!(invalid_elf(truncated).contains("header"));

        // Section table pointing past the end of the file.
        let mut elf = sample_elf();
        let shoff = u32::from_le_bytes(elf[32..36].try_into().expect("shoff"));
        elf.truncate(shoff as usize + 20);
        assert!(invalid_elf(&elf).contains("section"));

        // Section data outside the file.
        let mut elf = sample_elf();
        let shoff = u32::from_le_bytes(elf[32..36].try_into().expect("shoff")) as usize;
        let data_offset = shoff + 40 + 16; // section 1 (.data), sh_offset
        elf[data_offset..data_offset + 4].copy_from_slice(&0x00FF_FFFFu32.to_le_bytes());
        assert!(invalid_elf(&elf).contains(".data"));
    }

    #[test]
    fn rejects_missing_or_empty_irom() {
        let without: Vec<Sec> = sample_sections()
            .into_iter()
            .filter(|s| s.name != ".irom0.text")
            .collect();
        assert_eq!(convert(&without), Err(ImageError::NoIrom));

        let empty: Vec<Sec> = sample_sections()
            .into_iter()
            .map(|s| {
                if s.name == ".irom0.text" {
                    Sec::progbits(".irom0.text", IROM_ADDR, &[])
                } else {
                    s
                }
            })
            .collect();
        assert_eq!(convert(&empty), Err(ImageError::NoIrom));

        let nobits: Vec<Sec> = sample_sections()
            .into_iter()
            .map(|s| {
                if s.name == ".irom0.text" {
                    Sec::nobits(".irom0.text", IROM_ADDR, 16)
                } else {
                    s
                }
            })
            .collect();
        assert_eq!(convert(&nobits), Err(ImageError::NoIrom));
    }

    #[test]
    fn rejects_irom_at_wrong_address() {
        for addr in [0x4020_0000, 0x4020_1010, 0x4021_0004, 0x4010_8000] {
            let sections = [
                Sec::progbits(".text", 0x4010_0000, &[0; 4]),
                Sec::progbits(".irom0.text", addr, &[0; 4]),
            ];
            assert_eq!(convert(&sections), Err(ImageError::IromAddress { addr }));
        }
    }

    #[test]
    fn rejects_other_flash_segments() {
        let mut sections = sample_sections();
        sections.push(Sec::progbits(".irom.far", 0x4028_0000, &[0; 4]));
        assert_eq!(
            convert(&sections),
            Err(ImageError::UnexpectedFlashSegment {
                addr: 0x4028_0000,
                sections: ".irom.far".into()
            })
        );

        // Something right before .irom0.text merges with it and moves the
        // segment's start off 0x40210000.
        let mut sections = sample_sections();
        sections.insert(4, Sec::progbits(".flash.before", IROM_ADDR - 16, &[0; 16]));
        assert_eq!(
            convert(&sections),
            Err(ImageError::UnexpectedFlashSegment {
                addr: IROM_ADDR - 16,
                sections: ".flash.before .irom0.text".into()
            })
        );
    }

    #[test]
    fn rejects_too_many_segments() {
        let build = |count: u32| {
            let mut sections: Vec<Sec> = (0..count)
                .map(|i| Sec::progbits(&format!(".d{i}"), 0x3FFE_8000 + 0x10 * i, &[i as u8; 4]))
                .collect();
            sections.push(Sec::progbits(".irom0.text", IROM_ADDR, &[0; 4]));
            sections
        };
        // 15 RAM segments + .irom0.text = 16, esptool's maximum.
        let images = convert(&build(15)).expect("15 RAM segments are fine");
        assert_eq!(images.image0[1], 15);
        assert_eq!(
            convert(&build(16)),
            Err(ImageError::TooManySegments { count: 17 })
        );
    }

    #[test]
    fn rejects_segments_that_do_not_fit() {
        let irom = || Sec::progbits(".irom0.text", IROM_ADDR, &[0; 4]);

        // IRAM is 32 KiB: exactly full is fine, one word more is not.
        assert!(
            convert(&[
                Sec::progbits(".text", 0x4010_0000, &vec![0; 0x8000]),
                irom()
            ])
            .is_ok()
        );
        assert_eq!(
            convert(&[
                Sec::progbits(".text", 0x4010_0000, &vec![0; 0x8004]),
                irom()
            ]),
            Err(ImageError::SegmentTooLarge {
                addr: 0x4010_0000,
                len: 0x8004,
                max: 0x8000,
                sections: ".text".into()
            })
        );

        // DRAM ends at 0x40000000 (the size check uses the padded length).
        assert_eq!(
            convert(&[Sec::progbits(".data", 0x3FFF_FFF0, &[0; 0x11]), irom()]),
            Err(ImageError::SegmentTooLarge {
                addr: 0x3FFF_FFF0,
                len: 0x14,
                max: 0x10,
                sections: ".data".into()
            })
        );

        // The flash window ends at 0x40300000: 960 KiB after 0x40210000.
        assert_eq!(
            convert(&[Sec::progbits(".irom0.text", IROM_ADDR, &vec![0; 0xF_0004])]),
            Err(ImageError::SegmentTooLarge {
                addr: IROM_ADDR,
                len: 0xF_0004,
                max: 0xF_0000,
                sections: ".irom0.text".into()
            })
        );
    }

    #[test]
    fn rejects_segments_outside_ram() {
        let irom = || Sec::progbits(".irom0.text", IROM_ADDR, &[0; 4]);
        for addr in [0x6000_1200, 0x3FFE_0000, 0x4010_8000, 0x4000_0000] {
            assert_eq!(
                convert(&[Sec::progbits(".odd", addr, &[0; 8]), irom()]),
                Err(ImageError::SegmentOutsideRam {
                    addr,
                    len: 8,
                    sections: ".odd".into()
                })
            );
        }
    }

    #[test]
    fn error_messages_name_the_problem() {
        let cases = [
            (
                ImageError::InvalidElf("machine 40 is not Xtensa (94)".into()),
                "machine 40",
            ),
            (ImageError::NoIrom, ".irom0.text"),
            (ImageError::IromAddress { addr: 0x4020_0000 }, "0x40200000"),
            (
                ImageError::UnexpectedFlashSegment {
                    addr: 0x4028_0000,
                    sections: ".x".into(),
                },
                "0x40280000 (.x)",
            ),
            (
                ImageError::SegmentOutsideRam {
                    addr: 0x6000_1200,
                    len: 8,
                    sections: ".rtc".into(),
                },
                "0x60001200",
            ),
            (
                ImageError::SegmentTooLarge {
                    addr: 0x4010_0000,
                    len: 40000,
                    max: 32768,
                    sections: ".text".into(),
                },
                "40000 bytes, but only 32768",
            ),
            (
                ImageError::TooManySegments { count: 17 },
                "17 segments (16 in RAM",
            ),
        ];
        for (error, needle) in cases {
            let text = error.to_string();
            assert!(text.contains(needle), "{text:?} should contain {needle:?}");
        }
    }

    // -----------------------------------------------------------------------
    // image-info parsing (text captured from esptool 5.6.0)
    // -----------------------------------------------------------------------

    const INFO_VALID: &str = "esptool v5.6.0
Image size: 64 bytes

ESP8266 Image Header
====================
Image version: 1
Entry point: 0x40100004
Segments: 2
Flash size: 4MB
Flash freq: 40m
Flash mode: DIO

Segments Information
====================
Segment   Length   Load addr   File offs  Memory types
-------  -------  ----------  ----------  ------------
      0  0x00010  0x3ffe8000  0x00000008  DRAM
      1  0x00010  0x40100000  0x00000020  IRAM

ESP8266 Image Footer
====================
Checksum: 0xc3 (valid)
";

    #[test]
    fn parses_image_info() {
        check_image_info(INFO_VALID).expect("valid");
        let info = parse_image_info(INFO_VALID).expect("parses");
        assert_eq!(
            info,
            ImageInfo {
                entry: Some(0x4010_0004),
                segments: 2,
                checksum_valid: true
            }
        );

        let bad = INFO_VALID.replace("0xc3 (valid)", "0xc2 (invalid - calculated 0xc3)");
        assert!(!parse_image_info(&bad).expect("parses").checksum_valid);
        assert!(
            check_image_info(&bad)
                .expect_err("invalid")
                .contains("invalid checksum")
        );

        let unset = INFO_VALID.replace("Entry point: 0x40100004", "Entry point not set");
        assert_eq!(parse_image_info(&unset).expect("parses").entry, None);

        assert!(check_image_info("A fatal error occurred: invalid magic").is_err());
        let no_checksum = INFO_VALID.replace("Checksum", "Cheksum");
        assert!(check_image_info(&no_checksum).is_err());
    }

    // -----------------------------------------------------------------------
    // A real linker output (xtensa-lx106-elf-gcc, tests/data/image_test.*)
    // -----------------------------------------------------------------------

    /// A directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            let path = std::env::temp_dir()
                .join(format!("ramkey-xtask-image-{}-{tag}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).expect("create temp dir");
            Self(path)
        }

        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Assembles and links tests/data/image_test.S with the cross GCC.
    fn toolchain_elf(dir: &Path) -> Vec<u8> {
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
        let elf = dir.join("image_test.elf");
        let gcc = "xtensa-lx106-elf-gcc";
        let status = Command::new(gcc)
            .arg("-nostdlib")
            .arg("-T")
            .arg(data.join("image_test.ld"))
            .arg(data.join("image_test.S"))
            .arg("-o")
            .arg(&elf)
            .status()
            .unwrap_or_else(|e| {
                panic!("cannot run {gcc} ({e}): install gcc-xtensa-lx106 (TOOLCHAIN.md)")
            });
        assert!(status.success(), "{gcc} failed: {status}");
        std::fs::read(&elf).expect("read linked ELF")
    }

    #[test]
    fn converts_linker_output() {
        let dir = TempDir::new("linker_output");
        let images =
            elf_to_v1_images(&toolchain_elf(dir.path()), FlashParams::default()).expect("image");
        assert_eq!(images.entry, 0x4010_0004);
        let summary: Vec<(u32, u32, Vec<String>)> = images
            .ram_segments
            .iter()
            .map(|s| (s.addr, s.size(), s.sections.clone()))
            .collect();
        assert_eq!(
            summary,
            [
                (
                    0x3FFE_8000,
                    16,
                    vec![".data".to_string(), ".rodata".to_string()]
                ),
                (0x4010_0000, 16, vec![".text".to_string()]),
            ]
        );
        let (_, segments, _) = parse_app(&images.image0);
        assert_eq!(&segments[0].1[8..14], b"ramkey");
        // The literal at the start of .text is the address of user_func.
        assert_eq!(&segments[1].1[..4], &IROM_ADDR.to_le_bytes());
        assert_eq!(images.irom.len(), 8);
        assert_eq!(images.irom[7], 0, "0xAA then one byte of padding");
        assert_eq!(images.irom[6], 0xAA);
    }

    // -----------------------------------------------------------------------
    // Against esptool (run by `cargo xtask test` with RAMKEY_ESPTOOL set)
    // -----------------------------------------------------------------------

    /// The esptool executable named by RAMKEY_ESPTOOL.
    fn esptool() -> PathBuf {
        match std::env::var_os("RAMKEY_ESPTOOL") {
            Some(path) => PathBuf::from(path),
            None => panic!(
                "RAMKEY_ESPTOOL is not set. Run these tests through `cargo xtask test`, or by hand: \
                 `python3 -m venv target/esptool-venv && target/esptool-venv/bin/pip install {ESPTOOL_REQUIREMENT}`, \
                 then `RAMKEY_ESPTOOL=$PWD/target/esptool-venv/bin/esptool cargo test -p xtask -- --ignored`"
            ),
        }
    }

    /// The esptool arguments for `flash`: `-fm <mode> -ff <freq> -fs <size>`.
    fn esptool_args(flash: FlashParams) -> [&'static str; 6] {
        let FlashParams { mode, size, freq } = flash;
        [
            "-fm",
            mode.esptool_name(),
            "-ff",
            freq.esptool_name(),
            "-fs",
            size.esptool_name(),
        ]
    }

    /// Runs `esptool --chip esp8266 elf2image --version 1` on `elf` and
    /// returns (0x00000.bin, 0x10000.bin), or esptool's error output.
    fn esptool_elf2image(
        dir: &Path,
        elf: &[u8],
        flash: FlashParams,
    ) -> Result<(Vec<u8>, Vec<u8>), String> {
        let elf_path = dir.join("input.elf");
        std::fs::write(&elf_path, elf).expect("write ELF");
        let prefix = dir.join("esptool-");
        let files = ["0x00000.bin", "0x10000.bin"];
        for name in files {
            let _ = std::fs::remove_file(dir.join(format!("esptool-{name}")));
        }
        run(Command::new(esptool())
            .args(["--chip", "esp8266", "elf2image", "--version", "1"])
            .args(esptool_args(flash))
            .arg("-o")
            .arg(&prefix)
            .arg(&elf_path))?;
        let read = |name: &str| {
            std::fs::read(dir.join(format!("esptool-{name}")))
                .map_err(|e| format!("esptool wrote no {name}: {e}"))
        };
        Ok((read(files[0])?, read(files[1])?))
    }

    #[test]
    #[ignore = "needs esptool: run through cargo xtask test"]
    fn esptool_image_info_accepts_our_image() {
        let esptool = esptool();
        let dir = TempDir::new("image_info");
        let images =
            elf_to_v1_images(&toolchain_elf(dir.path()), FlashParams::default()).expect("image");
        let app = dir.path().join("0x00000.bin");
        std::fs::write(&app, &images.image0).expect("write");

        let text = esptool_image_info(&esptool, &app).expect("image-info runs");
        check_image_info(&text).expect("checksum valid");
        let info = parse_image_info(&text).expect("parses");
        assert_eq!(info.entry, Some(0x4010_0004), "{text}");
        assert_eq!(info.segments, 2, "{text}");
        for line in [
            "Flash size: 4MB",
            "Flash freq: 40m",
            "Flash mode: DIO",
            "0x3ffe8000",
            "0x40100000",
        ] {
            assert!(text.contains(line), "{line:?} missing in:\n{text}");
        }
        assert!(!text.contains("WARNING"), "{text}");

        // A damaged data byte must make the checker fail.
        let mut damaged = images.image0.clone();
        damaged[16] ^= 0x01;
        let damaged_path = dir.path().join("damaged.bin");
        std::fs::write(&damaged_path, &damaged).expect("write");
        let text = esptool_image_info(&esptool, &damaged_path).expect("image-info runs");
        assert!(check_image_info(&text).is_err(), "{text}");
    }

    #[test]
    #[ignore = "needs esptool: run through cargo xtask test"]
    fn esptool_elf2image_writes_the_same_bytes() {
        let dir = TempDir::new("same_bytes");
        let unsorted_and_odd = [
            Sec::progbits(".text", 0x4010_0000, &pattern(3, 10)),
            Sec::progbits(".iram.more", 0x4010_000C, &pattern(4, 5)),
            Sec::progbits(".data", 0x3FFE_8010, &pattern(5, 3)),
            Sec::progbits(".rodata", 0x3FFE_8000, &pattern(6, 16)),
            Sec::progbits(".rodata.after", 0x3FFE_8010, &pattern(7, 4)),
            Sec::progbits(".data.gap", 0x3FFE_8006 + 0x100, &pattern(8, 1)),
            Sec::nobits(".bss", 0x3FFE_9000, 64),
            Sec::progbits(".init_array", 0x3FFE_A000, &pattern(9, 8))
                .with_type(elf::SHT_INIT_ARRAY),
            Sec::progbits(".irom0.text", IROM_ADDR, &pattern(10, 1001)),
            Sec::progbits(".irom0.more", IROM_ADDR + 1004, &pattern(11, 6)),
            Sec::progbits(".comment", 0, b"x").with_flags(0),
        ];
        let fifteen: Vec<Sec> = (0..15u32)
            .map(|i| {
                Sec::progbits(
                    &format!(".d{i}"),
                    0x3FFE_8000 + 0x20 * i,
                    &pattern(i as u8, 1 + i as usize),
                )
            })
            .chain([Sec::progbits(".irom0.text", IROM_ADDR, &[0xAB; 4])])
            .collect();
        let cases = [
            ("linker output", toolchain_elf(dir.path())),
            ("sample", sample_elf()),
            (
                "unsorted, odd lengths, merges",
                build_elf(0x4010_0008, &unsorted_and_odd),
            ),
            ("15 RAM segments", build_elf(0x3FFE_8000, &fifteen)),
        ];
        for (name, elf) in &cases {
            let ours = elf_to_v1_images(elf, FlashParams::default()).expect(name);
            let (app, irom) = esptool_elf2image(dir.path(), elf, FlashParams::default())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(ours.image0, app, "{name}: 0x00000.bin differs");
            assert_eq!(ours.irom, irom, "{name}: 0x10000.bin differs");
        }

        // And esptool refuses a 16th RAM segment too (17 with the irom).
        let sixteen: Vec<Sec> = (0..16u32)
            .map(|i| Sec::progbits(&format!(".d{i}"), 0x3FFE_8000 + 0x20 * i, &[1; 4]))
            .chain([Sec::progbits(".irom0.text", IROM_ADDR, &[0xAB; 4])])
            .collect();
        let elf = build_elf(0x3FFE_8000, &sixteen);
        assert_eq!(
            elf_to_v1_images(&elf, FlashParams::default()),
            Err(ImageError::TooManySegments { count: 17 })
        );
        let err = esptool_elf2image(dir.path(), &elf, FlashParams::default())
            .expect_err("esptool refuses");
        assert!(err.contains("segment count 17 (max 16)"), "{err}");
    }

    #[test]
    #[ignore = "needs esptool: run through cargo xtask test"]
    fn esptool_agrees_on_flash_codes() {
        let dir = TempDir::new("flash_codes");
        let elf = sample_elf();
        let base = FlashParams::default();
        let variants = FlashMode::ALL
            .map(|mode| FlashParams { mode, ..base })
            .into_iter()
            .chain(FlashSize::ALL.map(|size| FlashParams { size, ..base }))
            .chain(FlashFreq::ALL.map(|freq| FlashParams { freq, ..base }));
        for params in variants {
            let ours = elf_to_v1_images(&elf, params).expect("image");
            let (app, _) =
                esptool_elf2image(dir.path(), &elf, params).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(ours.image0[..8], app[..8], "{params:?}");
            assert_eq!(ours.image0, app, "{params:?}");
        }
    }

    #[test]
    #[ignore = "needs esptool: run through cargo xtask test"]
    fn ensure_esptool_reuses_an_installed_venv() {
        let esptool = esptool();
        let venv = esptool
            .parent()
            .and_then(Path::parent)
            .expect("esptool is <venv>/bin/esptool");
        assert_eq!(ensure_esptool(venv), Ok(esptool.clone()));
        let (major, _, _) = esptool_version(&esptool).expect("version");
        assert!(major >= 4, "esptool {major}.x");
    }
}
