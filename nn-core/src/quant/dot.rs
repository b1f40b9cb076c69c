//! The int8 inner products of [`fully_connected`](super::fully_connected) and
//! [`conv2d`](super::conv2d): `acc + sum_k w[k] * x[k]` with `w` int8 weights and `x`
//! the input plus its offset, packed once as `i16` ([`Packed`]) and reused by every
//! row of weights.
//!
//! On the Cortex-M4 and M7 (`thumbv7em`, whose DSP extension Rust cannot name as a
//! target feature yet: `build.rs` sets `cfg(arm_dsp)`) the products run four weights
//! at a time: one load, two `SXTB16` (sign-extend bytes 0 and 2, then 1 and 3, to two
//! 16-bit lanes each) and two `SMLAD` (two 16x16 multiply-accumulates each), as
//! CMSIS-NN does with `arm_nn_read_q7x4`. `SXTB16` splits a word of weights `w0 w1 w2
//! w3` into the lanes `(w0, w2)` and `(w1, w3)`, so [`Packed`] stores each group of
//! four inputs as `x0 x2 x1 x3`. Elsewhere (Cortex-M0, RISC-V, hosts) the same sums
//! are plain loops over the same layout.
//!
//! The results are the same bits on every target: the products fit 32 bits (`|w| <=
//! 128`, `|x| <= 32,767`), `SMLAD` adds them to the accumulator modulo 2^32 as the
//! portable `wrapping_add` does, and a sum modulo 2^32 does not depend on its order.

/// Inputs packed at a time.
pub(super) const PACK: usize = 128;

/// The input offsets whose sums with any int8 input fit an `i16`, so that [`Packed`]
/// holds them: `-32,640..=32,640`. TensorFlow Lite's offsets (minus a zero point) lie in
/// `-127..=128`.
pub(super) fn offset_fits(offset: i32) -> bool {
    (i16::MIN as i32 - i8::MIN as i32..=i16::MAX as i32 - i8::MAX as i32).contains(&offset)
}

/// Up to [`PACK`] inputs plus their offset as `i16`, each full group of four in the
/// order `x0 x2 x1 x3` (the lanes of `SXTB16`), the rest in order.
#[repr(C, align(8))]
pub(super) struct Packed {
    values: [i16; PACK],
    len: usize,
}

impl Packed {
    /// An empty buffer.
    pub(super) fn new() -> Self {
        Packed { values: [0; PACK], len: 0 }
    }

    /// The first `len` values (at most [`PACK`]) in plain order, to be filled, then
    /// [`interleave`](Self::interleave)d.
    pub(super) fn plain(&mut self, len: usize) -> &mut [i16] {
        self.len = len.min(PACK);
        &mut self.values[..self.len]
    }

    /// Reorders each full group of four plain values to `x0 x2 x1 x3`.
    #[inline(always)]
    pub(super) fn interleave(&mut self) {
        for group in self.values[..self.len].chunks_exact_mut(4) {
            group.swap(1, 2);
        }
    }

    /// `count` patches of `len` values each (`count` times the stride
    /// [`groups_for`](Self::groups_for)`(len)` groups of four at most [`PACK`] values),
    /// patch `k` from value `4 k stride` on, in plain order, to be filled, then
    /// [`interleave_patches`](Self::interleave_patches)d; the values between patches are
    /// unused.
    pub(super) fn patches(&mut self, count: usize, len: usize) -> &mut [i16] {
        self.len = (count * 4 * Self::groups_for(len)).min(PACK);
        &mut self.values[..self.len]
    }

    /// The groups of four a patch of `len` values starts apart from the next in
    /// [`patches`](Self::patches).
    pub(super) const fn groups_for(len: usize) -> usize {
        len.div_ceil(4)
    }

    /// Reorders each full group of four values of every patch of `len` values to `x0
    /// x2 x1 x3`, the rest of each patch staying in order.
    #[inline(always)]
    pub(super) fn interleave_patches(&mut self, len: usize) {
        let stride = 4 * Self::groups_for(len);
        if stride == 0 {
            return;
        }
        for patch in self.values[..self.len].chunks_exact_mut(stride) {
            for group in patch[..len].chunks_exact_mut(4) {
                group.swap(1, 2);
            }
        }
    }

    /// Patch `k` of `len` values (of [`patches`](Self::patches)), as
    /// [`interleave_patches`](Self::interleave_patches) left it.
    #[inline(always)]
    pub(super) fn patch(&self, k: usize, len: usize) -> Window<'_> {
        let start = k * 4 * Self::groups_for(len);
        Window(&self.values[start.min(self.len)..(start + len).min(self.len)])
    }

    /// All the packed values.
    #[inline(always)]
    fn window(&self) -> Window<'_> {
        Window(&self.values[..self.len])
    }

    /// Packs `x[k] + offset` (`x` at most [`PACK`] long, `offset` one that
    /// [`offset_fits`]).
    pub(super) fn pack(&mut self, x: &[i8], offset: i32) {
        debug_assert!(offset_fits(offset));
        for (v, &x) in self.plain(x.len()).iter_mut().zip(x) {
            *v = (x as i32 + offset) as i16;
        }
        self.interleave();
    }
}

/// Values of a [`Packed`] from a multiple of four on (so 8-byte aligned), each full
/// group of four in the order `x0 x2 x1 x3`, the rest in order.
#[derive(Clone, Copy)]
pub(super) struct Window<'a>(&'a [i16]);

/// `acc + sum_k w[k] * x[k]` (wrapping) over the packed values and as many weights.
#[inline(always)]
pub(super) fn dot(acc: i32, w: &[i8], x: &Packed) -> i32 {
    dot_window(acc, w, x.window())
}

/// [`dot2`] over one patch of a [`Packed`].
#[inline(always)]
pub(super) fn dot2_window(acc: [i32; 2], w: [&[i8]; 2], x: Window<'_>) -> [i32; 2] {
    let x = x.0;
    let n = w[0].len().min(w[1].len()).min(x.len());
    let full = n / 4 * 4;
    #[cfg(arm_dsp)]
    {
        // SAFETY: both rows and `x` hold at least `full` elements, `x` is 8-byte
        // aligned (a `Window`).
        let [a0, a1] = unsafe { dsp::dot2(acc, [w[0].as_ptr(), w[1].as_ptr()], x.as_ptr(), full / 4) };
        [tail(a0, &w[0][full..n], &x[full..n]), tail(a1, &w[1][full..n], &x[full..n])]
    }
    #[cfg(not(arm_dsp))]
    {
        let _ = full;
        [dot_window(acc[0], &w[0][..n], Window(x)), dot_window(acc[1], &w[1][..n], Window(x))]
    }
}

/// [`dot`] over one patch of a [`Packed`].
#[inline(always)]
pub(super) fn dot_window(acc: i32, w: &[i8], x: Window<'_>) -> i32 {
    let x = x.0;
    let n = w.len().min(x.len());
    let full = n / 4 * 4;
    #[cfg(arm_dsp)]
    // SAFETY: `w` and `x` hold at least `full` elements, `x` is 8-byte aligned (a
    // `Window`).
    let acc = unsafe { dsp::dot1(acc, w.as_ptr(), x.as_ptr(), full / 4) };
    #[cfg(not(arm_dsp))]
    let acc = w[..full].chunks_exact(4).zip(x[..full].chunks_exact(4)).fold(acc, |acc, (w, x)| {
        acc.wrapping_add(
            (w[0] as i32 * x[0] as i32 + w[2] as i32 * x[1] as i32)
                .wrapping_add(w[1] as i32 * x[2] as i32 + w[3] as i32 * x[3] as i32),
        )
    });
    tail(acc, &w[full..n], &x[full..n])
}

/// [`dot`] of two rows of weights against the same packed values.
#[inline(always)]
pub(super) fn dot2(acc: [i32; 2], w: [&[i8]; 2], x: &Packed) -> [i32; 2] {
    dot2_window(acc, w, x.window())
}

/// The plain-order rest: `acc + sum_k w[k] * x[k]`.
#[inline(always)]
fn tail(acc: i32, w: &[i8], x: &[i16]) -> i32 {
    w.iter().zip(x).fold(acc, |acc, (&w, &x)| acc.wrapping_add(w as i32 * x as i32))
}

/// The `SXTB16`/`SMLAD` loops.
#[cfg(arm_dsp)]
mod dsp {
    /// Four weights of one row against two words of packed values: sign-extend bytes 0
    /// and 2 into `t`, multiply-accumulate with `(x0, x2)`; bytes 1 and 3 in place,
    /// with `(x1, x3)`.
    macro_rules! row {
        ($w:literal, $acc:literal) => {
            concat!(
                "ldr {wa}, [",
                $w,
                "], #4\n",
                "sxtb16 {t}, {wa}\n",
                "smlad ",
                $acc,
                ", {t}, {xa}, ",
                $acc,
                "\n",
                "sxtb16 {wa}, {wa}, ror #8\n",
                "smlad ",
                $acc,
                ", {wa}, {xb}, ",
                $acc,
                "\n"
            )
        };
    }

    /// `acc + w . x` over `4 blocks` weights and packed values.
    ///
    /// # Safety
    /// `w` and `x` point to at least `4 blocks` elements; `x` is 4-byte aligned.
    #[inline]
    pub(super) unsafe fn dot1(mut acc: i32, w: *const i8, x: *const i16, blocks: usize) -> i32 {
        if blocks == 0 {
            return acc;
        }
        // SAFETY: the loop runs `blocks` times (at least once), each reading 4 bytes at
        // `w` (single loads: unaligned is allowed) and 8 aligned bytes at `x`, both
        // within the caller's bounds; it writes only the registers given. `SMLAD` may
        // set the Q flag, so the flags are not preserved.
        unsafe {
            core::arch::asm!(
                "2:",
                "ldrd {xa}, {xb}, [{x}], #8",
                row!("{w0}", "{a0}"),
                "subs {n}, {n}, #1",
                "bne 2b",
                a0 = inout(reg) acc,
                w0 = inout(reg) w => _,
                x = inout(reg) x => _,
                n = inout(reg) blocks => _,
                xa = out(reg) _,
                xb = out(reg) _,
                wa = out(reg) _,
                t = out(reg) _,
                options(nostack, readonly),
            );
        }
        acc
    }

    /// [`dot1`] of two rows against the same packed values: one load of the values per
    /// two rows.
    ///
    /// # Safety
    /// Both rows and `x` point to at least `4 blocks` elements; `x` is 4-byte aligned.
    #[inline]
    pub(super) unsafe fn dot2(acc: [i32; 2], w: [*const i8; 2], x: *const i16, blocks: usize) -> [i32; 2] {
        if blocks == 0 {
            return acc;
        }
        let [mut a0, mut a1] = acc;
        // SAFETY: the blocks run `blocks` times (at least once), each reading 4 bytes at
        // `w0` and at `w1` (single loads: unaligned is allowed) and 8 aligned bytes at
        // `x`, all within the caller's bounds; it writes only the registers given.
        // `SMLAD` may set the Q flag, so the flags are not preserved.
        unsafe {
            core::arch::asm!(
                // An odd block first, then two blocks an iteration.
                "tst {n}, #1",
                "beq 3f",
                "ldrd {xa}, {xb}, [{x}], #8",
                row!("{w0}", "{a0}"),
                row!("{w1}", "{a1}"),
                "3:",
                "lsrs {n}, {n}, #1",
                "beq 4f",
                "2:",
                "ldrd {xa}, {xb}, [{x}], #8",
                row!("{w0}", "{a0}"),
                row!("{w1}", "{a1}"),
                "ldrd {xa}, {xb}, [{x}], #8",
                row!("{w0}", "{a0}"),
                row!("{w1}", "{a1}"),
                "subs {n}, {n}, #1",
                "bne 2b",
                "4:",
                a0 = inout(reg) a0,
                a1 = inout(reg) a1,
                w0 = inout(reg) w[0] => _,
                w1 = inout(reg) w[1] => _,
                x = inout(reg) x => _,
                n = inout(reg) blocks => _,
                xa = out(reg) _,
                xb = out(reg) _,
                wa = out(reg) _,
                t = out(reg) _,
                options(nostack, readonly),
            );
        }
        [a0, a1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The packed products equal the plain sums, for every length up to a few groups
    /// and the extreme offsets, with wrapping.
    #[test]
    fn packed_dots_equal_the_plain_sums() {
        let x: [i8; 11] = [-128, 127, -1, 0, 1, 77, -77, 5, -128, 127, 3];
        let w0: [i8; 11] = [127, -128, 3, -7, 127, 127, -128, 0, -128, 127, -1];
        let w1: [i8; 11] = [-128, -128, 1, 2, 3, 4, 5, 6, 7, 8, -9];
        for offset in [-32_640, -128, 0, 127, 32_640] {
            assert!(offset_fits(offset));
            for n in 0..=x.len() {
                let mut packed = Packed::new();
                packed.pack(&x[..n], offset);
                let plain = |acc: i32, w: &[i8]| {
                    w.iter().zip(&x[..n]).fold(acc, |a, (&w, &x)| a.wrapping_add(w as i32 * (x as i32 + offset)))
                };
                for acc in [0, i32::MAX - 5, i32::MIN + 3] {
                    assert_eq!(dot(acc, &w0[..n], &packed), plain(acc, &w0[..n]));
                    assert_eq!(
                        dot2([acc, -acc], [&w0[..n], &w1[..n]], &packed),
                        [plain(acc, &w0[..n]), plain(-acc, &w1[..n])]
                    );
                }
            }
        }
        assert!(!offset_fits(32_641) && !offset_fits(-32_641));
    }
}
