//! Streaming: one step of a unidirectional stack at a time, with projections summed
//! by kernels of the layer's fixed widths.
use super::cells::cell_step;
use super::inference::project;
use super::layout::{CellKind, Config};
#[cfg(target_arch = "x86_64")]
use crate::kernels::isa::isa;

/// [`project`] with a bias, for `N` inputs known at compile time: with AVX2 and `N` a
/// multiple of 8, by the fixed-width kernel (rows at constant offsets, in `reverse`
/// order if asked), the same bits.
#[inline]
fn project_fixed<const N: usize>(weight: &[f32], bias: &[f32], x: &[f32], out: &mut [f32], reverse: bool) {
    #[cfg(target_arch = "x86_64")]
    if N.is_multiple_of(8) && x.len() == N && isa().avx2() {
        // SAFETY: the CPU has AVX2 and FMA; the kernel asserts its bounds.
        return unsafe { crate::kernels::avx2::gemv_fixed::<N>(weight, out.len(), x, Some(bias), false, reverse, out) };
    }
    let _ = reverse;
    project(weight, Some(bias), x, out);
}

/// One streaming step of a unidirectional stack: `x [F]` in, the new top hidden
/// state out (`h[L - 1]`). `h` and `c` are `[L, H]` (`c` LSTM only); `p` and `q` hold
/// `G H` floats each. The same operations, in the same order, as [`forward`](super::forward). `F` and
/// `H` are the layer's input and hidden widths (`cfg.features`, `cfg.hidden`), known at
/// compile time: the projections are summed by kernels of that fixed width. With
/// `reverse`, each layer reads its weight rows last to first (the recurrent ones
/// first): a stream alternating the order finds the rows the previous step read last
/// still in L1. The order changes no result.
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
    // Only the two projections are generic; the rest is one copy for every width.
    step_by(cfg, params, x, h, c, p, q, reverse, [project_fixed::<F>, project_fixed::<H>]);
}

/// A projection: `out = bias + weight x`, rows in `reverse` order if asked.
type Projection = fn(&[f32], &[f32], &[f32], &mut [f32], bool);

/// [`step`] with its projections for inputs of `F` floats and of `H`.
#[allow(clippy::too_many_arguments)]
fn step_by(
    cfg: &Config,
    params: &[f32],
    x: &[f32],
    h: &mut [f32],
    c: &mut [f32],
    p: &mut [f32],
    q: &mut [f32],
    reverse: bool,
    [project_f, project_h]: [Projection; 2],
) {
    debug_assert_eq!(cfg.directions, 1);
    let (hd, gh) = (cfg.hidden, cfg.gate_width());
    let (p, q) = (&mut p[..gh], &mut q[..gh]);
    for l in 0..cfg.layers {
        let w = cfg.weights(params, l, 0);
        let (below, here) = h.split_at_mut(l * hd);
        let h_l = &mut here[..hd];
        if reverse {
            project_h(w.hh, w.b_hh, h_l, q, true);
        }
        if l == 0 {
            project_f(w.ih, w.b_ih, &x[..cfg.features], p, reverse);
        } else {
            project_h(w.ih, w.b_ih, &below[(l - 1) * hd..][..hd], p, reverse);
        }
        if !reverse {
            project_h(w.hh, w.b_hh, h_l, q, false);
        }
        let c_l: &mut [f32] = if cfg.cell == CellKind::Lstm { &mut c[l * hd..(l + 1) * hd] } else { &mut [] };
        cell_step(cfg.cell, p, q, h_l, c_l);
    }
}
