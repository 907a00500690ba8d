//! SPI flash, backed by the host file `flash.bin` in QEMU's working directory.
//!
//! The harness creates the file (erased, 0xFF) with the board's flash size, optionally with
//! an older firmware's station settings planted in the SDK's parameter area, and searches it
//! after the run. Like the chip: erasing sets a sector to 0xFF, and writing can only clear
//! bits (new = old AND data). Addresses and lengths must be 4-byte aligned.
//!
//! The emulated SDK keeps its stored station settings (what `wifi_station_get_config_default`
//! returns) as a `station_config` at the start of the first SYSTEM_PARAMETER sector. The real
//! SDK's block has a different, undocumented layout; only the fact that it lives in those
//! three sectors matters to ramkey.

use wifi_sys::station_config;

use crate::emulate;
use crate::semihosting::{self, say};

/// Result codes of the SDK's flash calls.
const SPI_FLASH_RESULT_OK: u32 = 0;
const SPI_FLASH_RESULT_ERR: u32 = 1;
const SECTOR: u32 = 0x1000;

fn with_flash<R>(f: impl FnOnce(u32) -> Option<R>) -> Option<R> {
    let fd = semihosting::open(c"flash.bin", semihosting::O_RDWR)?;
    let result = f(fd);
    semihosting::close(fd);
    result
}

fn read_at(fd: u32, address: u32, buffer: &mut [u8]) -> Option<()> {
    if !semihosting::seek(fd, address) {
        return None;
    }
    (semihosting::read(fd, buffer)? == buffer.len()).then_some(())
}

fn write_at(fd: u32, address: u32, bytes: &[u8]) -> Option<()> {
    if !semihosting::seek(fd, address) {
        return None;
    }
    semihosting::write_all(fd, bytes).then_some(())
}

emulate! {
    /// Erases one 4 KiB sector to 0xFF.
    fn spi_flash_erase_sector(sec: u16) -> u32 {
        let ok = if crate::sdk::settings().erase_fails {
            None
        } else {
            with_flash(|fd| write_at(fd, u32::from(sec) * SECTOR, &[0xFF; SECTOR as usize]))
        };
        say!("flash erase sector {sec:#x}: {}", if ok.is_some() { "ok" } else { "error" });
        if ok.is_some() { SPI_FLASH_RESULT_OK } else { SPI_FLASH_RESULT_ERR }
    }
}

emulate! {
    /// Programs bytes: each byte becomes old AND new, as on NOR flash.
    fn spi_flash_write(des_addr: u32, src_addr: *mut u32, size: u32) -> u32 {
        if src_addr.is_null() || des_addr % 4 != 0 || size % 4 != 0 {
            return SPI_FLASH_RESULT_ERR;
        }
        // SAFETY: the caller passes a readable buffer of `size` bytes.
        let data = unsafe { core::slice::from_raw_parts(src_addr as *const u8, size as usize) };
        let ok = with_flash(|fd| {
            let mut chunk = [0u8; 256];
            for (i, part) in data.chunks(chunk.len()).enumerate() {
                let address = des_addr + (i * chunk.len()) as u32;
                let old = &mut chunk[..part.len()];
                read_at(fd, address, old)?;
                for (o, n) in old.iter_mut().zip(part) {
                    *o &= *n;
                }
                write_at(fd, address, old)?;
            }
            Some(())
        });
        if ok.is_some() { SPI_FLASH_RESULT_OK } else { SPI_FLASH_RESULT_ERR }
    }
}

emulate! {
    /// Reads bytes.
    fn spi_flash_read(src_addr: u32, des_addr: *mut u32, size: u32) -> u32 {
        if des_addr.is_null() || src_addr % 4 != 0 || size % 4 != 0 {
            return SPI_FLASH_RESULT_ERR;
        }
        // SAFETY: the caller passes a writable buffer of `size` bytes.
        let buffer = unsafe { core::slice::from_raw_parts_mut(des_addr as *mut u8, size as usize) };
        match with_flash(|fd| read_at(fd, src_addr, buffer)) {
            Some(()) => SPI_FLASH_RESULT_OK,
            None => SPI_FLASH_RESULT_ERR,
        }
    }
}

/// Flash offset of the emulated SDK's stored station settings, for the registered map.
pub fn stored_config_address() -> Option<u32> {
    let bytes = crate::sdk::flash_bytes()?;
    Some(bytes - 3 * SECTOR)
}

emulate! {
    /// The station settings stored in flash (all zero when the area is erased or unreadable,
    /// as the SDK reports after it rewrote defaults).
    fn wifi_station_get_config_default(config: *mut station_config) -> bool {
        if config.is_null() {
            return false;
        }
        let mut bytes = [0u8; core::mem::size_of::<station_config>()];
        let read = stored_config_address().and_then(|address| with_flash(|fd| read_at(fd, address, &mut bytes)));
        if read.is_none() || bytes.iter().all(|&b| b == 0xFF) {
            bytes = [0; core::mem::size_of::<station_config>()];
        }
        // SAFETY: `config` points to a writable station_config (checked non-null); the bytes
        // are a plain-old-data image of that struct (byte arrays and integers only).
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), config as *mut u8, bytes.len()) };
        true
    }
}
