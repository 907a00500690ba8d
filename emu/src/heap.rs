//! The SDK's heap (`pvPortZalloc`, `vPortFree`; docs/sdk-model.md M61), no kinder than the
//! real one: a block costs its size plus a 16-byte header, rounded up to 8 (the real
//! allocator's accounting, from libmain.a's disassembly); the arena is smaller than the
//! real heap left to the application during setup, so an allocation the real SDK would refuse
//! is refused here too (null); freeing a pointer the heap never gave, or freeing one twice,
//! ends the run, where the real SDK would corrupt its heap.

use core::ffi::{c_char, c_void};

use crate::emulate;
use crate::scheduler::Global;
use crate::sdk::EXIT_EMULATOR_LIMIT;
use crate::semihosting::{self, say};

/// Bytes of the arena: well under the ~40 KB the real SDK leaves (xtask/src/budget.rs).
const ARENA: usize = 12 * 1024;
/// Blocks live at once.
const BLOCKS: usize = 16;
/// The real allocator's header per block.
const HEADER: usize = 16;

#[repr(C, align(8))]
struct Arena([u8; ARENA]);

struct Heap {
    arena: Arena,
    /// (offset of the block's header, bytes the block takes), in no order.
    blocks: [Option<(usize, usize)>; BLOCKS],
}

static HEAP: Global<Heap> = Global::new(Heap {
    arena: Arena([0; ARENA]),
    blocks: [None; BLOCKS],
});

fn cost(size: usize) -> usize {
    (size + HEADER).div_ceil(8) * 8
}

emulate! {
    /// First fit over the arena; zeroed; null when no gap is large enough or the block table
    /// is full.
    fn pvPortZalloc(size: usize, _file: *const c_char, _line: u32) -> *mut c_void {
        let need = cost(size);
        HEAP.with(|h| {
            let Some(entry) = h.blocks.iter().position(Option::is_none) else {
                return core::ptr::null_mut();
            };
            let mut start = 0;
            loop {
                let clash = h
                    .blocks
                    .iter()
                    .flatten()
                    .filter(|(at, len)| *at < start + need && start < at + len)
                    .map(|(at, len)| at + len)
                    .max();
                match clash {
                    Some(end) => start = end,
                    None => break,
                }
            }
            if start + need > ARENA {
                return core::ptr::null_mut();
            }
            h.blocks[entry] = Some((start, need));
            let block = &mut h.arena.0[start..start + need];
            block.fill(0);
            block[HEADER..].as_mut_ptr().cast()
        })
    }
}

emulate! {
    /// Returns a block; null is ignored.
    fn vPortFree(ptr: *mut c_void, _file: *const c_char, _line: u32) {
        if ptr.is_null() {
            return;
        }
        let freed = HEAP.with(|h| {
            let base = h.arena.0.as_ptr() as usize;
            let at = (ptr as usize).wrapping_sub(base).wrapping_sub(HEADER);
            let entry = h.blocks.iter().position(|b| b.is_some_and(|(o, _)| o == at));
            if let Some(entry) = entry {
                h.blocks[entry] = None;
            }
            entry.is_some()
        });
        if !freed {
            say!("vPortFree of a pointer the heap did not give (or gave and took back)");
            semihosting::exit(EXIT_EMULATOR_LIMIT);
        }
    }
}
