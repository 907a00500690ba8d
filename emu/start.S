/* Start-up for the emulated SDK on QEMU's `sim` machine (lx106, CALL0 ABI).
 *
 * The real SDK owns reset and calls user_pre_init/user_init itself; here QEMU's ELF loader
 * jumps to _start, which sets the stack, clears .bss and hands over to the Rust side of the
 * emulator (ramkey_emu_main), which never returns.
 */
    .section .text.ramkey_emu_start, "ax", @progbits
    .literal_position
    .literal .Lstack_top, _ramkey_emu_stack_top
    .literal .Lbss_start, _bss_start
    .literal .Lbss_end, _bss_end
    .literal .Lmain, ramkey_emu_main
    .global _start
    .type _start, @function
    .align 4
_start:
    l32r    a1, .Lstack_top
    l32r    a2, .Lbss_start
    l32r    a3, .Lbss_end
    movi    a4, 0
1:  bgeu    a2, a3, 2f
    s32i    a4, a2, 0
    addi    a2, a2, 4
    j       1b
2:  l32r    a0, .Lmain
    callx0  a0
3:  j       3b
    .size _start, . - _start

/* u32 ramkey_emu_simcall(u32 call, u32 a, u32 b, u32 c): QEMU semihosting.
 * Arguments arrive in a2..a5, which is exactly where `simcall` reads them; the result
 * comes back in a2 (and errno in a3, ignored). */
    .section .text.ramkey_emu_simcall, "ax", @progbits
    .global ramkey_emu_simcall
    .type ramkey_emu_simcall, @function
    .align 4
ramkey_emu_simcall:
    simcall
    ret
    .size ramkey_emu_simcall, . - ramkey_emu_simcall

    .section .note.GNU-stack, "", @progbits
