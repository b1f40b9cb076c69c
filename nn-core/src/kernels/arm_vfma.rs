//! Fused multiply-add kernels for the Cortex-M FPUs that have `vfma.f32` (FPv4-SP on
//! the Cortex-M4F, FPv5 on the M7 and M33): the inner loops of `portable.rs` with
//! their sums in the 32 single-precision registers, rounding exactly as the AVX2
//! kernels (one rounding per multiply-add, the same order).
//!
//! Rust names no target feature for these FPUs yet, so the floating-point registers
//! cannot be operands of `asm!`: every block takes pointers and integers, and saves
//! the floating-point registers it uses on entry and restores them on exit, so that
//! the compiler's values in them survive.

/// `a b + c` with one rounding.
#[inline(always)]
pub fn fma(a: f32, b: f32, c: f32) -> f32 {
    let out: u32;
    // SAFETY: the block reads and writes only `s0`-`s2`, saved and restored around
    // it on the stack (12 bytes, alignment kept), and the general registers given.
    unsafe {
        core::arch::asm!(
            "vpush {{s0-s2}}",
            "vmov s0, {a}",
            "vmov s1, {b}",
            "vmov s2, {c}",
            "vfma.f32 s2, s0, s1",
            "vmov {out}, s2",
            "vpop {{s0-s2}}",
            a = in(reg) a.to_bits(),
            b = in(reg) b.to_bits(),
            c = in(reg) c.to_bits(),
            out = lateout(reg) out,
            options(preserves_flags),
        );
    }
    f32::from_bits(out)
}

/// Sixteen zeros, loaded by one instruction to start the sums.
static ZEROS: [f32; 16] = [0.0; 16];

/// Two rows of dot products in eight lanes, from zero: for each block `k < blocks` of
/// 8 floats, `lanes[8 r + l] = fma(rows[r][8 k + l], x[8 k + l], lanes[8 r + l])`
/// (`r < 2`, `l < 8`): three loads and sixteen multiply-adds per block.
///
/// # Safety
/// Both rows and `x` hold at least `8 blocks` floats; `blocks > 0`; `lanes` has room
/// for 16 floats.
#[inline]
pub unsafe fn dot2(rows: [*const f32; 2], x: *const f32, blocks: usize, lanes: *mut f32) {
    // SAFETY: the loop reads `8 blocks` floats from each row and from `x` (the
    // caller's contract) and the 16 zeros; it writes the 16 floats of `lanes`, the
    // general registers given and `s0`-`s31`, saved on the stack on entry and
    // restored on exit.
    unsafe {
        core::arch::asm!(
            "vpush {{d0-d15}}",
            "vldmia {zeros}, {{s16-s31}}",
            "2:",
            "vldmia {x}!, {{s0-s7}}",
            "vldmia {w0}!, {{s8-s15}}",
            "vfma.f32 s16, s8, s0",
            "vfma.f32 s17, s9, s1",
            "vfma.f32 s18, s10, s2",
            "vfma.f32 s19, s11, s3",
            "vfma.f32 s20, s12, s4",
            "vfma.f32 s21, s13, s5",
            "vfma.f32 s22, s14, s6",
            "vfma.f32 s23, s15, s7",
            "vldmia {w1}!, {{s8-s15}}",
            "vfma.f32 s24, s8, s0",
            "vfma.f32 s25, s9, s1",
            "vfma.f32 s26, s10, s2",
            "vfma.f32 s27, s11, s3",
            "vfma.f32 s28, s12, s4",
            "vfma.f32 s29, s13, s5",
            "vfma.f32 s30, s14, s6",
            "vfma.f32 s31, s15, s7",
            "subs {n}, {n}, #1",
            "bne 2b",
            "vstmia {lanes}, {{s16-s31}}",
            "vpop {{d0-d15}}",
            zeros = in(reg) ZEROS.as_ptr(),
            lanes = in(reg) lanes,
            x = inout(reg) x => _,
            w0 = inout(reg) rows[0] => _,
            w1 = inout(reg) rows[1] => _,
            n = inout(reg) blocks => _,
        );
    }
}

/// The loop of both 4 x 4 tiles: saves `s0`-`s31`, starts the sums in `s16`-`s31`
/// from zero and runs `{n}` steps of six loads and sixteen multiply-adds over the
/// rows `{a0}`-`{a3}` of `A` and the rows of `B` (`{b}`, `{brs}` bytes apart).
macro_rules! tile4_steps {
    () => {
        concat!(
            "vpush {{d0-d15}}\n",
            "vldmia {zeros}, {{s16-s31}}\n",
            "2:\n",
            "vldmia {a0}!, {{s0}}\n",
            "vldmia {a1}!, {{s1}}\n",
            "vldmia {a2}!, {{s2}}\n",
            "vldmia {a3}!, {{s3}}\n",
            "vldm {b}, {{s4-s7}}\n",
            "add {b}, {b}, {brs}\n",
            "vfma.f32 s16, s0, s4\n",
            "vfma.f32 s17, s0, s5\n",
            "vfma.f32 s18, s0, s6\n",
            "vfma.f32 s19, s0, s7\n",
            "vfma.f32 s20, s1, s4\n",
            "vfma.f32 s21, s1, s5\n",
            "vfma.f32 s22, s1, s6\n",
            "vfma.f32 s23, s1, s7\n",
            "vfma.f32 s24, s2, s4\n",
            "vfma.f32 s25, s2, s5\n",
            "vfma.f32 s26, s2, s6\n",
            "vfma.f32 s27, s2, s7\n",
            "vfma.f32 s28, s3, s4\n",
            "vfma.f32 s29, s3, s5\n",
            "vfma.f32 s30, s3, s6\n",
            "vfma.f32 s31, s3, s7\n",
            "subs {n}, {n}, #1\n",
            "bne 2b\n",
        )
    };
}

/// A 4 x 4 tile of a matrix product over `kc` steps, from zero: for `p < kc`,
/// `sums[4 r + q] = fma(a[r][p], b[p brs + q], sums[4 r + q])`, with the four rows of
/// `A` contiguous (`a[r]`) and four contiguous columns of `B` per row (`brs` floats
/// apart): six loads and sixteen multiply-adds per step.
///
/// # Safety
/// Each row of `A` holds `kc` floats; `B` holds `(kc - 1) brs + 4` floats; `kc > 0`;
/// `sums` has room for 16 floats.
#[inline]
pub unsafe fn tile4(a: [*const f32; 4], b: *const f32, brs: usize, kc: usize, sums: *mut f32) {
    // SAFETY: the loop reads `kc` floats from each row of A, four floats of each of
    // `kc` rows of B (the caller's contract) and the 16 zeros; it writes the 16 floats
    // of `sums`, the general registers given and `s0`-`s31`, saved on the stack on
    // entry and restored on exit.
    unsafe {
        core::arch::asm!(
            tile4_steps!(),
            "vstmia {sums}, {{s16-s31}}",
            "vpop {{d0-d15}}",
            zeros = in(reg) ZEROS.as_ptr(),
            sums = in(reg) sums,
            a0 = inout(reg) a[0] => _,
            a1 = inout(reg) a[1] => _,
            a2 = inout(reg) a[2] => _,
            a3 = inout(reg) a[3] => _,
            b = inout(reg) b => _,
            brs = in(reg) brs * 4,
            n = inout(reg) kc => _,
        );
    }
}

/// A 4 x 4 tile of a matrix product over `kc` steps, from zero, added to `C`: for
/// `p < kc`, `s[r][q] = fma(a[r][p], b[p brs + q], s[r][q])`, then
/// `c[r ldc + q] += s[r][q]`; with the four rows of `A` contiguous (`a[r]`) and four
/// contiguous columns of `B` per row (`brs` floats apart): six loads and sixteen
/// multiply-adds per step.
///
/// # Safety
/// Each row of `A` holds `kc` floats; `B` holds `(kc - 1) brs + 4` floats; `kc > 0`;
/// `C`'s four rows of four floats (`ldc` apart) are writable and not otherwise
/// borrowed.
#[inline]
pub unsafe fn tile4_add(a: [*const f32; 4], b: *const f32, brs: usize, kc: usize, c: *mut f32, ldc: usize) {
    // SAFETY: the loop reads `kc` floats from each row of A, four floats of each of
    // `kc` rows of B (the caller's contract) and the 16 zeros; it reads and writes the
    // four rows of four floats of C, the general registers given and `s0`-`s31`,
    // saved on the stack on entry and restored on exit.
    unsafe {
        core::arch::asm!(
            tile4_steps!(),
            "vldm {c}, {{s0-s3}}",
            "vadd.f32 s16, s16, s0",
            "vadd.f32 s17, s17, s1",
            "vadd.f32 s18, s18, s2",
            "vadd.f32 s19, s19, s3",
            "vstm {c}, {{s16-s19}}",
            "add {c}, {c}, {ldc}",
            "vldm {c}, {{s0-s3}}",
            "vadd.f32 s20, s20, s0",
            "vadd.f32 s21, s21, s1",
            "vadd.f32 s22, s22, s2",
            "vadd.f32 s23, s23, s3",
            "vstm {c}, {{s20-s23}}",
            "add {c}, {c}, {ldc}",
            "vldm {c}, {{s0-s3}}",
            "vadd.f32 s24, s24, s0",
            "vadd.f32 s25, s25, s1",
            "vadd.f32 s26, s26, s2",
            "vadd.f32 s27, s27, s3",
            "vstm {c}, {{s24-s27}}",
            "add {c}, {c}, {ldc}",
            "vldm {c}, {{s0-s3}}",
            "vadd.f32 s28, s28, s0",
            "vadd.f32 s29, s29, s1",
            "vadd.f32 s30, s30, s2",
            "vadd.f32 s31, s31, s3",
            "vstm {c}, {{s28-s31}}",
            "vpop {{d0-d15}}",
            zeros = in(reg) ZEROS.as_ptr(),
            a0 = inout(reg) a[0] => _,
            a1 = inout(reg) a[1] => _,
            a2 = inout(reg) a[2] => _,
            a3 = inout(reg) a[3] => _,
            b = inout(reg) b => _,
            brs = in(reg) brs * 4,
            n = inout(reg) kc => _,
            c = inout(reg) c => _,
            ldc = in(reg) ldc * 4,
        );
    }
}
