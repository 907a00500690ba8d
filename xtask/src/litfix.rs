//! The literal-pool fix: moves each literal pool into its own function's section.
//!
//! LLVM's Xtensa assembly printer writes the pool of function F (a `.literal_position` line
//! followed by `.literal` lines) *before* the `.section` directive that opens F's section.
//! GNU `as --text-section-literals` then places the pool at the end of the *previous*
//! section, unaligned, and the link fails with `dangerous relocation: l32r: misaligned
//! literal target` (or, worse, links by luck). This pass moves every such block to just after
//! the run of section directives (`.section ...` lines, or a bare `.text` for the first
//! function of a file) that follows it, so the pool lands at the start of F's own section,
//! where `as` aligns it. Everything else is left byte for byte as it was.

/// Result of [`fix`]: the rewritten assembly and how many pools were moved.
pub struct Fixed {
    /// The rewritten assembly.
    pub text: String,
    /// Literal blocks moved after a section directive.
    pub moved: usize,
}

fn is_section_switch(line: &str) -> bool {
    let t = line.trim();
    t.starts_with(".section") || t == ".text"
}

fn is_literal(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with(".literal ") || t.starts_with(".literal\t")
}

fn is_literal_position(line: &str) -> bool {
    line.trim() == ".literal_position"
}

/// Rewrites one assembly file.
pub fn fix(asm: &str) -> Fixed {
    let lines: Vec<&str> = asm.split_inclusive('\n').collect();
    let mut out = String::with_capacity(asm.len());
    let mut moved = 0;
    let mut i = 0;
    while i < lines.len() {
        if !is_literal_position(lines[i]) {
            out.push_str(lines[i]);
            i += 1;
            continue;
        }
        let block_start = i;
        i += 1;
        while i < lines.len() && is_literal(lines[i]) {
            i += 1;
        }
        let block_end = i;
        while i < lines.len() && is_section_switch(lines[i]) {
            i += 1;
        }
        let sections_end = i;
        if sections_end > block_end {
            moved += 1;
        }
        for line in &lines[block_end..sections_end] {
            out.push_str(line);
        }
        for line in &lines[block_start..block_end] {
            out.push_str(line);
        }
    }
    Fixed { text: out, moved }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The form LLVM prints between two functions: pool, then two `.section` lines.
    const BETWEEN_FUNCTIONS: &str = "\
f:
\tret
\t.literal_position
\t.literal .LCPI1_0, 305419896
\t.literal .LCPI1_1, g
\t.section\t.text.f,\"ax\",@progbits
\t.section\t.text.g,\"ax\",@progbits
\t.p2align\t2
g:
\tl32r\ta2, .LCPI1_0
";

    /// The form at the top of a file: pool, then a bare `.text`, then the section.
    const FIRST_FUNCTION: &str = "\
\t.file\t\"x\"
\t.literal_position
\t.literal .LCPI0_0, memset
\t.text
\t.section\t.text.user_init,\"ax\",@progbits
\t.global\tuser_init
user_init:
";

    #[test]
    fn pool_between_functions_moves_after_both_section_lines() {
        let fixed = fix(BETWEEN_FUNCTIONS);
        assert_eq!(fixed.moved, 1);
        assert_eq!(
            fixed.text,
            "\
f:
\tret
\t.section\t.text.f,\"ax\",@progbits
\t.section\t.text.g,\"ax\",@progbits
\t.literal_position
\t.literal .LCPI1_0, 305419896
\t.literal .LCPI1_1, g
\t.p2align\t2
g:
\tl32r\ta2, .LCPI1_0
"
        );
    }

    #[test]
    fn pool_of_first_function_moves_after_bare_text_and_section() {
        let fixed = fix(FIRST_FUNCTION);
        assert_eq!(fixed.moved, 1);
        let lines: Vec<&str> = fixed.text.lines().collect();
        assert_eq!(lines[1], "\t.text");
        assert!(lines[2].starts_with("\t.section\t.text.user_init"));
        assert_eq!(lines[3], "\t.literal_position");
        assert_eq!(lines[4], "\t.literal .LCPI0_0, memset");
    }

    #[test]
    fn text_without_pools_is_unchanged_and_lines_are_kept() {
        let plain = "a:\n\tret\n\t.section .rodata\n.byte 1\n";
        let fixed = fix(plain);
        assert_eq!(fixed.moved, 0);
        assert_eq!(fixed.text, plain);
        // A rewrite is a permutation of lines: nothing lost, nothing added.
        let mut before: Vec<&str> = BETWEEN_FUNCTIONS.lines().collect();
        let fixed = fix(BETWEEN_FUNCTIONS);
        let mut after: Vec<&str> = fixed.text.lines().collect();
        before.sort_unstable();
        after.sort_unstable();
        assert_eq!(before, after);
    }

    #[test]
    fn pool_already_inside_its_section_stays() {
        let good = "\t.section .text.h\n\t.literal_position\n\t.literal .L0, 1\nh:\n";
        let fixed = fix(good);
        assert_eq!(fixed.moved, 0);
        assert_eq!(fixed.text, good);
    }
}
