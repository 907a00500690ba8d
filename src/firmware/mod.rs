use core::panic::PanicInfo;
#[panic_handler]
fn panic(_i: &PanicInfo) -> ! { loop {} }
unsafe extern "C" { fn ets_putc(c: u8); }
#[unsafe(no_mangle)]
pub extern "C" fn user_init() {
    let mut buf = [0u8; 32];
    let v = crate::answer(core::hint::black_box(1_000_000_000_000u64), core::hint::black_box(7));
    let mut n = v; let mut i = 0;
    while n > 0 { buf[i] = b'0' + (n % 10) as u8; n /= 10; i += 1; }
    while i > 0 { i -= 1; unsafe { ets_putc(buf[i]) } }
}
