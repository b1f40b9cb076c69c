//! Streaming: one step of a unidirectional stack at a time, with projections summed
//! by kernels of the layer's fixed widths.
use super::cells::cell_step;
#[cfg(target_arch = "x86_64")]
use super::cells::{cell_step_avx2, cell_step_avx512, AVX512_MIN_UNITS};
use super::inference::project;
use super::layout::{CellKind, Config};
#[cfg(target_arch = "x86_64")]
use crate::kernels::avx2;
#[cfg(target_arch = "x86_64")]
use crate::kernels::isa::{isa, Isa};

/// One streaming step of a unidirectional stack: `x [F]` in, the new top hidden
/// state out (`h[L - 1]`). `h` and `c` are `[L, H]` (`c` LSTM only); `p` and `q` hold
/// `G H` floats each. The same operations, in the same order, as [`forward`](super::forward). `F` and
/// `H` are the layer's input and hidden widths (`cfg.features`, `cfg.hidden`), known at
/// compile time: the projections are summed by kernels of that fixed width. With
/// `reverse`, each layer of a stack of more than `ALTERNATE_MIN_PARAMS` weights reads
/// its weight rows last to first (the recurrent ones first): a stream alternating the
/// order finds the rows the previous step read last still in L1. The order changes no
/// result.
///
/// With AVX2 and both widths multiples of 8, the whole step (every layer's two
/// projections and its cell arithmetic) is one function compiled for the instruction
/// set, chosen by one test of [`isa`]: the fixed-width row kernels and the cell
/// arithmetic are inlined into it, and its operands are passed as one pointer (the
/// AVX-512 form, from `AVX512_MIN_UNITS` units, differs in its cell arithmetic only).
#[allow(clippy::too_many_arguments)]
#[inline]
pub fn step<const F: usize, const H: usize>(
    cfg: &Config,
    params: &[f32],
    x: &[f32],
    h: &mut [f32],
    c: &mut [f32],
    p: &mut [f32],
    q: &mut [f32],
    reverse: bool,
) {
    debug_assert!(cfg.features == F && cfg.hidden == H);
    #[allow(unused_mut)]
    let mut step = Operands { cfg, params, x, h, c, p, q, reverse };
    #[cfg(target_arch = "x86_64")]
    if F.is_multiple_of(8) && H.is_multiple_of(8) && step.x.len() == F {
        match isa() {
            // SAFETY: the CPU has AVX-512 F, AVX2 and FMA; the widths are multiples of 8.
            Isa::Avx512 if H >= AVX512_MIN_UNITS => return unsafe { step_avx512::<F, H>(&mut step) },
            // SAFETY: the CPU has AVX2 and FMA (every `Isa` above `Portable` has them);
            // the widths are multiples of 8.
            Isa::Avx2Fma | Isa::Avx512 => return unsafe { step_avx2::<F, H>(&mut step) },
            Isa::Portable | Isa::Neon => {}
        }
    }
    step.run::<F, H>(project_any, project_any, cell_step);
}

/// Whether a stream alternates the order of the rows of a stack of `F` inputs and `H`
/// units: from `ALTERNATE_MIN_PARAMS` weights in its first layer (of up to four gates),
/// known at compile time, so that a smaller stack's step has no branch on the order.
#[inline(always)]
const fn alternates<const F: usize, const H: usize>() -> bool {
    4 * H * (F + H) >= ALTERNATE_MIN_PARAMS
}

/// Weights from which a stack's no longer all stay in L1 (32 KiB), and a stream
/// alternating the order of the rows gains (a GRU 8->64, 54 KiB: 0.85 to 0.78 µs
/// per step); below, both orders find every row in L1 and alternating costs the
/// alternating branches (a GRU 8->8: 70 ns against 62 ns, an LSTM 16->16: 140 ns against
/// 126 ns, on the AVX-512 Xeon of the README).
const ALTERNATE_MIN_PARAMS: usize = 32 * 1024 / 4;

/// The operands of one [`step`], passed to its compiled forms as one pointer.
struct Operands<'a, 'b> {
    cfg: &'a Config,
    params: &'a [f32],
    x: &'a [f32],
    h: &'b mut [f32],
    c: &'b mut [f32],
    p: &'b mut [f32],
    q: &'b mut [f32],
    reverse: bool,
}

/// [`step`] compiled for AVX2 and FMA: the rows by the kernels of `F` and `H` floats and
/// the eight-lane cell arithmetic, inlined.
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn step_avx2<const F: usize, const H: usize>(step: &mut Operands) {
    step.run::<F, H>(
        // SAFETY: the CPU has AVX2 and FMA; `N` is a multiple of 8 (checked by
        // `step`) and the kernel asserts its bounds.
        |w, b, x, out, reverse| unsafe { avx2::gemv_fixed::<F>(w, out.len(), x, Some(b), false, reverse, out) },
        // SAFETY: as above.
        |w, b, x, out, reverse| unsafe { avx2::gemv_fixed::<H>(w, out.len(), x, Some(b), false, reverse, out) },
        // SAFETY: the CPU has AVX2 and FMA.
        |cell, p, q, h, c| unsafe { cell_step_avx2(cell, p, q, h, c) },
    )
}

/// [`step_avx2`] with the cell arithmetic on sixteen lanes.
///
/// # Safety
/// The CPU must have AVX-512 F, AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn step_avx512<const F: usize, const H: usize>(step: &mut Operands) {
    step.run::<F, H>(
        // SAFETY: the CPU has AVX2 and FMA; `N` is a multiple of 8 (checked by
        // `step`) and the kernel asserts its bounds.
        |w, b, x, out, reverse| unsafe { avx2::gemv_fixed::<F>(w, out.len(), x, Some(b), false, reverse, out) },
        // SAFETY: as above.
        |w, b, x, out, reverse| unsafe { avx2::gemv_fixed::<H>(w, out.len(), x, Some(b), false, reverse, out) },
        // SAFETY: the CPU has AVX-512 F, AVX2 and FMA.
        |cell, p, q, h, c| unsafe { cell_step_avx512(cell, p, q, h, c) },
    )
}

/// [`project`] with a bias, rows in any order (the order changes no result).
#[inline]
fn project_any(weight: &[f32], bias: &[f32], x: &[f32], out: &mut [f32], _reverse: bool) {
    project(weight, Some(bias), x, out);
}

impl Operands<'_, '_> {
    /// The step for inputs of `F` floats and `H` units,
    /// with `project_f` and `project_h` (`out = bias + weight x`, rows in
    /// `reverse` order if asked) for the projections of `F` and of `H` inputs, and
    /// `cell_step` for the cell arithmetic.
    #[inline(always)]
    fn run<const F: usize, const H: usize>(
        &mut self,
        project_f: impl Fn(&[f32], &[f32], &[f32], &mut [f32], bool),
        project_h: impl Fn(&[f32], &[f32], &[f32], &mut [f32], bool),
        cell_step: impl Fn(CellKind, &mut [f32], &[f32], &mut [f32], &mut [f32]),
    ) {
        let (cfg, reverse) = (self.cfg, self.reverse && alternates::<F, H>());
        debug_assert_eq!(cfg.directions, 1);
        let (hd, gh) = (cfg.hidden, cfg.gate_width());
        let (p, q) = (&mut self.p[..gh], &mut self.q[..gh]);
        for l in 0..cfg.layers {
            let w = cfg.weights(self.params, l, 0);
            let (below, here) = self.h.split_at_mut(l * hd);
            let h_l = &mut here[..hd];
            if reverse {
                project_h(w.hh, w.b_hh, h_l, q, true);
            }
            if l == 0 {
                project_f(w.ih, w.b_ih, &self.x[..cfg.features], p, reverse);
            } else {
                project_h(w.ih, w.b_ih, &below[(l - 1) * hd..][..hd], p, reverse);
            }
            if !reverse {
                project_h(w.hh, w.b_hh, h_l, q, false);
            }
            let c_l: &mut [f32] = if cfg.cell == CellKind::Lstm { &mut self.c[l * hd..(l + 1) * hd] } else { &mut [] };
            cell_step(cfg.cell, p, q, h_l, c_l);
        }
    }
}
