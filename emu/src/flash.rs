//! SPI flash, backed by the host file `flash.bin` in QEMU's working directory.
//!
//! The harness creates the file (erased, 0xFF) with the board's flash size, optionally with
//! an older firmware's parameter block planted in the SDK's area, and searches it after the
//! run. Like the chip: erasing sets a sector to 0xFF, and writing can only clear bits
//! (new = old AND data). Addresses and lengths must be 4-byte aligned.
//!
//! `spi_flash_erase_sector`, `spi_flash_write` and `spi_flash_read` are defined here under
//! `ramkey_emu_sdk_*` names and given their SDK names by the linker script, so that every
//! caller, the emulated SDK's own parameter saves included, reaches them through an
//! undefined reference that the firmware's `--wrap` redirects, as in the SDK link. The boot
//! load uses [`raw_read`] instead, as the real start-up code uses the ROM's `SPIRead`.

use crate::emulate_wrappable;
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

/// Bytes of flash: the size of `flash.bin` (the real start-up reads it from the image
/// header, M1). `None` without a flash file.
pub fn size() -> Option<u32> {
    with_flash(semihosting::size).filter(|&bytes| bytes >= 0x10_0000 && bytes % SECTOR == 0)
}

/// Reads flash directly (the ROM's `SPIRead`, which no wrapper sees).
pub fn raw_read(address: u32, buffer: &mut [u8]) -> Option<()> {
    with_flash(|fd| read_at(fd, address, buffer))
}

emulate_wrappable! {
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

emulate_wrappable! {
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

emulate_wrappable! {
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
