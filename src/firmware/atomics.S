/* Atomic loads and stores for the lx106.
 *
 * LLVM lowers every core::sync::atomic load/store on this target to a call to
 * __atomic_load_N / __atomic_store_N, and nothing provides them. The lx106 is single-core
 * and naturally aligned 8/16/32-bit accesses are single instructions, so a `memw` (order all
 * earlier memory accesses) around a plain access gives sequential consistency. The memory
 * order argument (a3 or a4) is therefore ignored. There is no compare-and-swap: the target
 * JSON says so ("atomic-cas": false), so the compiler never asks for one.
 */
    .macro atomic_load name, insn
    .section .text.\name, "ax", @progbits
    .global \name
    .type \name, @function
    .align 4
\name:
    memw
    \insn   a2, a2, 0
    memw
    ret
    .size \name, . - \name
    .endm

    .macro atomic_store name, insn
    .section .text.\name, "ax", @progbits
    .global \name
    .type \name, @function
    .align 4
\name:
    memw
    \insn   a3, a2, 0
    memw
    ret
    .size \name, . - \name
    .endm

    atomic_load  __atomic_load_1, l8ui
    atomic_load  __atomic_load_2, l16ui
    atomic_load  __atomic_load_4, l32i
    atomic_store __atomic_store_1, s8i
    atomic_store __atomic_store_2, s16i
    atomic_store __atomic_store_4, s32i

    .section .note.GNU-stack, "", @progbits
