//! Flash layout: where the SDK's partitions live for each supported flash size.
//!
//! One table serves the firmware (the partition table `user_pre_init` registers), the build
//! (linker script region sizes) and the tooling (flash addresses for esptool). It guarantees
//! that the SDK's system parameter sectors are the last three sectors of the chip, that
//! partitions never overlap each other or the firmware, and that the size map number is one
//! the SDK 3.x accepts. It never touches flash itself.

/// Bytes in one flash sector, the unit of erasing.
pub const SECTOR_SIZE: u32 = 0x1000;

/// Flash offset of the first image (IRAM and DRAM segments, loaded by the ROM).
pub const IMAGE0_OFFSET: u32 = 0x0_0000;

/// Flash offset of the irom image (code executed in place from flash).
pub const IROM_OFFSET: u32 = 0x1_0000;

/// CPU address at which flash offset 0 is mapped for code execution.
pub const FLASH_MAP_BASE: u32 = 0x4020_0000;

/// Largest window of flash that the cache can map for code: 1 MiB.
pub const FLASH_MAP_WINDOW: u32 = 0x10_0000;

/// Flash sizes ramkey builds for (non-OTA layout).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlashSize {
    /// 1 MiB (8 Mbit), e.g. ESP-01S.
    OneMiB,
    /// 2 MiB (16 Mbit).
    TwoMiB,
    /// 4 MiB (32 Mbit), e.g. ESP-12F / NodeMCU / Wemos D1 mini. The default.
    FourMiB,
}

/// A flash size name that is not one of `1MB`, `2MB`, `4MB`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownFlashSize;

impl core::fmt::Display for UnknownFlashSize {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("unknown flash size: use 1MB, 2MB or 4MB")
    }
}

impl core::error::Error for UnknownFlashSize {}

impl FlashSize {
    /// Every supported size, smallest first.
    pub const ALL: [FlashSize; 3] = [FlashSize::OneMiB, FlashSize::TwoMiB, FlashSize::FourMiB];

    /// The size used when none is chosen.
    pub const DEFAULT: FlashSize = FlashSize::FourMiB;

    /// Parses the names the build and esptool use: `1MB`, `2MB`, `4MB`.
    pub fn from_name(name: &str) -> Result<FlashSize, UnknownFlashSize> {
        match name {
            "1MB" => Ok(FlashSize::OneMiB),
            "2MB" => Ok(FlashSize::TwoMiB),
            "4MB" => Ok(FlashSize::FourMiB),
            _ => Err(UnknownFlashSize),
        }
    }

    /// The name esptool's `--flash-size` understands.
    pub const fn name(self) -> &'static str {
        match self {
            FlashSize::OneMiB => "1MB",
            FlashSize::TwoMiB => "2MB",
            FlashSize::FourMiB => "4MB",
        }
    }

    /// Total bytes of flash.
    pub const fn bytes(self) -> u32 {
        match self {
            FlashSize::OneMiB => 0x10_0000,
            FlashSize::TwoMiB => 0x20_0000,
            FlashSize::FourMiB => 0x40_0000,
        }
    }

    /// The SDK's `flash_size_map` number for this size with the 512 KB + 512 KB map
    /// (the non-OTA layout). SDK 3.x rejects maps 0, 1 and 7.
    pub const fn sdk_size_map(self) -> u32 {
        match self {
            FlashSize::OneMiB => 2,  // FLASH_SIZE_8M_MAP_512_512
            FlashSize::TwoMiB => 3,  // FLASH_SIZE_16M_MAP_512_512
            FlashSize::FourMiB => 4, // FLASH_SIZE_32M_MAP_512_512
        }
    }

    /// The partition layout for this size.
    pub const fn layout(self) -> Layout {
        let end = self.bytes();
        let system_parameter = end - 3 * SECTOR_SIZE;
        let phy_data = system_parameter - SECTOR_SIZE;
        let rf_cal = phy_data - SECTOR_SIZE;
        let device_identity = rf_cal - SECTOR_SIZE;
        // irom may grow up to the first partition, but never beyond the 1 MiB cache window.
        let irom_end_by_partitions = device_identity;
        let irom_end_by_window = FLASH_MAP_WINDOW;
        let irom_end = if irom_end_by_partitions < irom_end_by_window {
            irom_end_by_partitions
        } else {
            irom_end_by_window
        };
        Layout {
            size: self,
            irom: Region {
                offset: IROM_OFFSET,
                size: irom_end - IROM_OFFSET,
            },
            device_identity: Region {
                offset: device_identity,
                size: SECTOR_SIZE,
            },
            rf_cal: Region {
                offset: rf_cal,
                size: SECTOR_SIZE,
            },
            phy_data: Region {
                offset: phy_data,
                size: SECTOR_SIZE,
            },
            system_parameter: Region {
                offset: system_parameter,
                size: 3 * SECTOR_SIZE,
            },
        }
    }
}

/// A range of flash, by offset from the start of the chip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// First byte.
    pub offset: u32,
    /// Length in bytes.
    pub size: u32,
}

impl Region {
    /// One past the last byte.
    pub const fn end(self) -> u32 {
        self.offset + self.size
    }

    /// Whether two regions share any byte.
    pub const fn overlaps(self, other: Region) -> bool {
        self.offset < other.end() && other.offset < self.end()
    }

    /// The first sector number of the region.
    pub const fn first_sector(self) -> u16 {
        (self.offset / SECTOR_SIZE) as u16
    }
}

/// Where everything lives on a chip of one size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The flash size this layout is for.
    pub size: FlashSize,
    /// Code executed from flash (`.irom0.text`), at [`IROM_OFFSET`].
    pub irom: Region,
    /// One sector for the device identity (setup passphrase), outside the SDK's sectors.
    pub device_identity: Region,
    /// RF calibration sector (SDK partition `RF_CAL`).
    pub rf_cal: Region,
    /// PHY init data (SDK partition `PHY_DATA`; holds esp_init_data_default).
    pub phy_data: Region,
    /// The SDK's parameter block: two data sectors and a flag sector. Credentials left by
    /// an older firmware live here; ramkey scrubs it and never writes it.
    pub system_parameter: Region,
}

impl Layout {
    /// The irom window as CPU addresses (for the linker script).
    pub const fn irom_cpu_address(self) -> u32 {
        FLASH_MAP_BASE + self.irom.offset
    }

    /// Every region, for overlap checks and reports.
    pub const fn regions(self) -> [(&'static str, Region); 5] {
        [
            ("irom", self.irom),
            ("device_identity", self.device_identity),
            ("rf_cal", self.rf_cal),
            ("phy_data", self.phy_data),
            ("system_parameter", self.system_parameter),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_mib_matches_the_sdk_convention() {
        let l = FlashSize::FourMiB.layout();
        assert_eq!(l.rf_cal.offset, 0x3F_B000);
        assert_eq!(l.phy_data.offset, 0x3F_C000);
        assert_eq!(l.system_parameter.offset, 0x3F_D000);
        assert_eq!(l.system_parameter.end(), 0x40_0000);
        assert_eq!(
            l.irom.size, 0xF_0000,
            "irom is capped by the 1 MiB cache window"
        );
        assert_eq!(FlashSize::FourMiB.sdk_size_map(), 4);
    }

    #[test]
    fn one_mib_irom_stops_before_the_partitions() {
        let l = FlashSize::OneMiB.layout();
        assert_eq!(l.system_parameter.offset, 0xF_D000);
        assert_eq!(l.device_identity.offset, 0xF_A000);
        assert_eq!(l.irom.end(), l.device_identity.offset);
    }

    #[test]
    fn no_region_overlaps_another_or_leaves_the_chip() {
        for size in FlashSize::ALL {
            let regions = size.layout().regions();
            for (i, (name_a, a)) in regions.iter().enumerate() {
                assert!(
                    a.end() <= size.bytes(),
                    "{name_a} leaves a {} chip",
                    size.name()
                );
                assert_eq!(a.offset % SECTOR_SIZE, 0, "{name_a} is not sector aligned");
                for (name_b, b) in &regions[i + 1..] {
                    assert!(
                        !a.overlaps(*b),
                        "{name_a} overlaps {name_b} on {}",
                        size.name()
                    );
                }
            }
            assert!(
                !matches!(size.sdk_size_map(), 0 | 1 | 7),
                "SDK 3.x rejects this map"
            );
        }
    }

    #[test]
    fn names_round_trip_and_unknown_is_an_error() {
        for size in FlashSize::ALL {
            assert_eq!(FlashSize::from_name(size.name()), Ok(size));
        }
        assert_eq!(FlashSize::from_name("8MB"), Err(UnknownFlashSize));
        assert_eq!(FlashSize::from_name(""), Err(UnknownFlashSize));
    }
}
