/* Tiny lx106 program for xtask's image tests (src/image.rs).
 * Not run anywhere: it only gives the image writer a real linker output with
 * the sections a NONOS SDK firmware has. Lengths are deliberately odd so that
 * the 4-byte padding of segments is exercised. */

    .section .text.entry, "ax"
    .global call_user_start
    .align 4
.Luser_func:
    .word   user_func               /* literal for l32r: call0 cannot reach flash */
call_user_start:                    /* entry point: 0x40100004, not the section start */
    movi    a2, 7
    l32r    a0, .Luser_func
    callx0  a0
    ret

    .section .data, "aw"
    .global counter
counter:
    .byte 1, 2, 3, 4, 5, 6          /* 6 bytes: padded to 8 in the image */

    .section .rodata, "a"
    .align 4
greeting:
    .ascii "ramkey"                 /* 6 bytes, follows .data directly */

    .section .bss, "aw", @nobits
    .align 4
scratch:
    .space 64                       /* NOBITS: never in an image */

    .section .irom0.text, "ax"
    .global user_func
    .align 4
user_func:
    movi    a3, 42
    add     a2, a2, a3
    ret
    .byte 0xAA                      /* odd length for the flash part too */
