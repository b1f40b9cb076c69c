//! Streaming: one step of a unidirectional stack at a time, with projections summed
//! by kernels of the layer's fixed widths.
use super::cells::cell_step;
#[cfg(target_arch = "x86_64")]
use super::cells::{cell_step_units, cell_units_at, gru_units_activated, lstm_units, AVX512_MIN_UNITS};
use super::inference::project;
use super::layout::{CellKind, Config};
#[cfg(target_arch = "x86_64")]
use crate::kernels::isa::{isa, Isa};
#[cfg(target_arch = "x86_64")]
use crate::kernels::{avx2, avx512};

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
/// arithmetic are inlined into it, and its operands are passed as one pointer. With
/// AVX-512 the projections of the first layer run on sixteen lanes over `panels` (when
/// given), and from `AVX512_MIN_UNITS` units the cell arithmetic too.
///
/// `panels`, when given, are the first layer's `weight_ih` and `weight_hh` in step order
/// ([`StepPanels`], built from `params` by [`to_step_order`]): on x86-64 its projections then
/// read them instead of the rows of `params`, sixteen rows across the lanes of a
/// register with AVX-512, eight with AVX2 (there for projections of up to 16 inputs;
/// from more, the rows of the copy, aligned where those of `params` may not be),
/// with the same bits. With AVX2, a one-layer GRU of up to 16 inputs and units keeps
/// its projections in registers for its cell (`avx2::gru_step_panels`); a one-layer GRU
/// of 32 or 64 units computes the sigmoids of its reset and update gates beside the
/// recurrent rows that come from L2 (`gru_gates_beside_rows`: a GRU 8->64 step 578 to
/// 530 ns on a 2-core AMD EPYC Zen 4 under `NN_ISA=avx2`), and with AVX-512 a one-layer
/// GRU of a multiple of 32 units beside its pairs of panels (`gru_gates_beside_panels`:
/// 540 to 500 ns, the same CPU); both with the exponentials of one scaling by `2^n`
/// (the same bits; 534 to 530 ns under `NN_ISA=avx2`, 512 to 509 ns natively, medians of
/// alternated runs), the GRU of up to 16 units too (`avx2::gru_step_panels`). A
/// one-layer LSTM of a multiple of 16 units from 32 and more than 32 KiB of weights
/// computes its gates' activations and cell state beside
/// the recurrent rows that come from L2 the same way (`lstm_gates_beside_panels`, with
/// AVX2 up to 64 units and inputs `lstm_gates_beside_rows`: an LSTM 8->64 step 764 to
/// 750 ns, under `NN_ISA=avx2` 897 to 858 ns, the same CPU; then with AVX2 its
/// sigmoids and `tanh` of fewer operations, `avx2::sigmoid_sum8_one_scale`, 858 to
/// 795 ns, and with the gates' blocks of rows taken without a call, 795 to 780 ns,
/// natively 750 to 730 ns). Otherwise, from 32 units
/// (a multiple of 16) the first layer of an LSTM or RNN runs 16 units at a time: the rows of every gate of those units in both
/// projections, then their cell arithmetic, so that the cell of one chunk of units
/// overlaps the projections of the next (an LSTM 8->64 step 0.50 to 0.44 µs with
/// AVX-512, 0.65 to 0.61 µs with AVX2, on a 2-core AMD EPYC under load). A GRU's
/// lighter cell runs over the whole layer after its projections, its chunks' chains
/// side by side (a GRU 8->64 step 0.30 µs chunked, 0.29 µs whole, the same CPU).
/// With AVX2, a one-layer LSTM of up to 16 inputs and units sums both projections in
/// one pass over its panels, two panels of each at a time, so that each broadcast of
/// an input serves 32 rows (`avx2::gemv_panels_pair`; an LSTM 16->16 step 164 to
/// 139 ns on a 2-core AMD EPYC Zen 3 without AVX-512), each group of four inputs one
/// load and each input an in-lane shuffle of it (107 to 104 ns on a 2-core AMD EPYC
/// Zen 4 under `NN_ISA=avx2`). With AVX-512, a one-layer LSTM
/// of up to 16 inputs and 16 units runs one written-out step on sixteen lanes
/// (`avx512::lstm16_step_panels`): its projections stay in registers for the cell, the
/// input projection first, then the recurrent one gate by gate, each gate's activation
/// beside the next gate's rows (an LSTM 16->16 step 111 to 95 ns on a 2-core AMD EPYC
/// Zen 4, where the hand-written loops take 119 to 121 ns), called with its operands'
/// addresses alone (`lstm16_step_avx512`: 91.2 to 94.6 ns before, 88.4 to 90.4 ns
/// after, the same CPU), each input an in-lane shuffle of four loaded together (88.9
/// to 91.4 ns before, 82.0 to 84.4 ns after).
#[allow(clippy::too_many_arguments)]
#[inline]
pub fn step<const F: usize, const H: usize>(
    cfg: &Config,
    params: &[f32],
    panels: Option<StepPanels<'_>>,
    x: &[f32],
    h: &mut [f32],
    c: &mut [f32],
    p: &mut [f32],
    q: &mut [f32],
    reverse: bool,
) {
    debug_assert!(cfg.features == F && cfg.hidden == H);
    #[cfg(target_arch = "x86_64")]
    if H == 16 && (F == 8 || F == 16) && cfg.cell == CellKind::Lstm && cfg.layers == 1 && x.len() == F {
        if let Some(panels) = panels {
            if isa() == Isa::Avx512 {
                return lstm16_step_avx512::<F>(params, panels, x, h, c, p, q);
            }
        }
    }
    #[allow(unused_mut)]
    let mut step = Operands { cfg, params, panels, x, h, c, p, q, reverse };
    #[cfg(target_arch = "x86_64")]
    if F.is_multiple_of(8) && H.is_multiple_of(8) && step.x.len() == F {
        match isa() {
            set if avx512_form(set, H) => {
                if H.is_multiple_of(32) && alternates::<F, H>() && cfg.cell == CellKind::Gru && cfg.layers == 1 {
                    if let Some(panels) = step.panels {
                        // SAFETY: the CPU has AVX-512 F, AVX2 and FMA; `F` is a multiple of
                        // 8, `H` of 32.
                        return unsafe { gru_gates_beside_panels::<F, H>(&mut step, panels) };
                    }
                }
                if lstm_gates_beside::<F, H>(cfg) {
                    if let Some(panels) = step.panels {
                        // SAFETY: the CPU has AVX-512 F, AVX2 and FMA; `F` is a multiple of
                        // 8, `H` of 16 from 32.
                        return unsafe { lstm_gates_beside_panels::<F, H>(&mut step, panels) };
                    }
                }
                // SAFETY: the CPU has AVX-512 F, AVX2 and FMA; the widths are multiples of 8.
                return unsafe { step_avx512::<F, H>(&mut step) };
            }
            // SAFETY: the CPU has AVX2 and FMA (every `Isa` above `Portable` has them);
            // the widths are multiples of 8.
            Isa::Avx2Fma | Isa::Avx512 => return unsafe { step_avx2::<F, H>(&mut step) },
            Isa::Portable | Isa::Neon => {}
        }
    }
    // The portable and NEON kernels read the rows of `params`.
    step.panels = None;
    let rows =
        |_: &[f32], w: &[f32], b: &[f32], x: &[f32], out: &mut [f32], reverse: bool| project_any(w, b, x, out, reverse);
    step.run::<F, H>(rows, rows, project_any, project_any, cell_step);
}

/// [`step`] of a one-layer LSTM of `F` (8 or 16) inputs and 16 units on a CPU with
/// AVX-512: `avx512::lstm16_step_panels` over the weights in step order, called with
/// its operands' addresses alone. The lengths are checked here, inlined into the
/// caller, where those of a stream's state are known at compile time (only that of
/// `params` is tested), rather than written into the step's operands and read back
/// by the kernel.
///
/// # Panics
/// If `x`, `h`, `c`, `p`, `q` or the panels are shorter than the layer's widths, or
/// `params` does not hold the biases after the weights.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn lstm16_step_avx512<const F: usize>(
    params: &[f32],
    panels: StepPanels<'_>,
    x: &[f32],
    h: &mut [f32],
    c: &mut [f32],
    p: &mut [f32],
    q: &mut [f32],
) {
    const H: usize = 16;
    const M: usize = 4 * H;
    let biases = &params[M * (F + H)..M * (F + H + 2)];
    let (ih, hh, x) = (&panels.ih[..M * F], &panels.hh[..M * H], &x[..F]);
    let (h, c, p, q) = (&mut h[..H], &mut c[..H], &mut p[..M], &mut q[..M]);
    // SAFETY: the caller found AVX-512 F (hence AVX2 and FMA; `isa`); every operand
    // holds the floats the kernel reads and writes (sliced above), `biases` both
    // biases, `M` floats each.
    unsafe {
        lstm16_step_avx512_at::<F>(
            ih.as_ptr(),
            hh.as_ptr(),
            biases.as_ptr(),
            x.as_ptr(),
            h.as_mut_ptr(),
            c.as_mut_ptr(),
            p.as_mut_ptr(),
            q.as_mut_ptr(),
        )
    }
}

/// [`lstm16_step_avx512`] compiled for AVX-512: the slices rebuilt from the addresses,
/// of lengths known at compile time, so that the kernel's tests of them vanish.
///
/// # Safety
/// The CPU must have AVX-512 F, AVX2 and FMA; `ih` holds `64 F` floats, `hh` `64 16`,
/// `biases` 128 (`bias_ih`, then `bias_hh`), `x` `F`, `h` and `c` 16, `p` and `q` 64;
/// `h`, `c`, `p` and `q` do not overlap each other or the others.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn lstm16_step_avx512_at<const F: usize>(
    ih: *const f32,
    hh: *const f32,
    biases: *const f32,
    x: *const f32,
    h: *mut f32,
    c: *mut f32,
    p: *mut f32,
    q: *mut f32,
) {
    use core::slice::{from_raw_parts, from_raw_parts_mut};
    const M: usize = 64;
    // SAFETY: the caller's contract.
    unsafe {
        avx512::lstm16_step_panels::<F>(
            from_raw_parts(ih, M * F),
            from_raw_parts(hh, M * 16),
            from_raw_parts(biases, M),
            from_raw_parts(biases.add(M), M),
            from_raw_parts(x, F),
            from_raw_parts_mut(h, 16),
            from_raw_parts_mut(c, 16),
            from_raw_parts_mut(p, M),
            from_raw_parts_mut(q, M),
        )
    }
}

/// Whether the step of a layer of `hidden` units runs its AVX-512 form ([`step`]) on a
/// CPU of instruction set `isa`: with AVX-512, from `AVX512_MIN_UNITS` units.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn avx512_form(isa: Isa, hidden: usize) -> bool {
    isa == Isa::Avx512 && hidden >= AVX512_MIN_UNITS
}

/// The first layer's `weight_ih [G H, F]` and `weight_hh [G H, H]` in step order (see
/// [`to_step_order`]), for [`step`].
#[derive(Clone, Copy, Debug)]
pub struct StepPanels<'a> {
    /// `weight_ih` in step order, `G H F` floats.
    pub ih: &'a [f32],
    /// `weight_hh` in step order, `G H H` floats.
    pub hh: &'a [f32],
}

/// Writes `weight [m, n]` (row-major, `m` a multiple of 8) into `out` (`m n` floats) in
/// the step order of the projection kernels (`avx2::gemv_panels`): the rows in panels of
/// 16 (the last one of 8 when `m` is an odd multiple of 8), each panel column after
/// column, element `(r, i)` of a panel of width `S` at `i S + r` from the panel's start.
///
/// # Panics
/// If `m` is not a multiple of 8, `weight` or `out` holds fewer than `m n` floats.
#[cfg(any(target_arch = "x86_64", feature = "internals"))]
pub fn to_panels(weight: &[f32], m: usize, n: usize, out: &mut [f32]) {
    const ROWS: usize = 16;
    assert!(m.is_multiple_of(8), "to_panels: {m} rows, not a multiple of 8");
    let len = m.checked_mul(n);
    assert!(len.is_some_and(|len| weight.len() >= len && out.len() >= len), "to_panels: shapes");
    for (r, row) in weight.chunks_exact(n.max(1)).take(m).enumerate() {
        let (panel, lane) = (r / ROWS, r % ROWS);
        let width = ROWS.min(m - panel * ROWS);
        let start = panel * ROWS * n;
        for (i, &w) in row.iter().enumerate().take(n) {
            out[start + i * width + lane] = w;
        }
    }
}

/// Writes `weight [m, n]` (row-major, `m` a multiple of 8) of a layer of `hidden` units
/// into `out` (`m n` floats) in the order the step of this CPU reads it ([`step`]'s
/// `panels`): [`to_panels`], except where the step runs its AVX2 form (AVX2 alone, or
/// AVX-512 below `AVX512_MIN_UNITS` units) from more than 16 inputs (`PANEL_INPUTS`),
/// where it reads eight rows at a time: the rows unchanged. In a stream's state the copy
/// is aligned to a cache line, so that no load of eight floats of a row spans two
/// (over the rows of `params` as a caller's allocator placed them, 16 bytes past a
/// line, a GRU 8->64 step took 748 ns against 702 ns from a copy, on an AVX2 AMD EPYC).
///
/// # Panics
/// As [`to_panels`].
#[cfg(target_arch = "x86_64")]
pub fn to_step_order(weight: &[f32], m: usize, n: usize, hidden: usize, out: &mut [f32]) {
    if n > PANEL_INPUTS && !avx512_form(isa(), hidden) {
        assert!(m.is_multiple_of(8), "to_step_order: {m} rows, not a multiple of 8");
        let len = m.checked_mul(n).filter(|&len| weight.len() >= len && out.len() >= len);
        let len = len.expect("to_step_order: shapes");
        out[..len].copy_from_slice(&weight[..len]);
    } else {
        to_panels(weight, m, n, out);
    }
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
/// 126 ns, on the AVX-512 Xeon of `docs/speed.md`).
const ALTERNATE_MIN_PARAMS: usize = 32 * 1024 / 4;

/// The operands of one [`step`], passed to its compiled forms as one pointer.
struct Operands<'a, 'b> {
    cfg: &'a Config,
    params: &'a [f32],
    panels: Option<StepPanels<'a>>,
    x: &'a [f32],
    h: &'b mut [f32],
    c: &'b mut [f32],
    p: &'b mut [f32],
    q: &'b mut [f32],
    reverse: bool,
}

/// One LSTM layer of up to 16 inputs and units: both projections in one pass, panel
/// beside panel, by the eight-lane pair kernel (each broadcast of an input serves 32
/// rows of both projections; the order of the rows changes no result, so `reverse` is
/// moot), then the cell, compiled for AVX2 in [`step_avx2`]. Its biases follow its
/// weights in `params` (`G H (F + H)` floats). Of 16 units, the gates are paired `i`
/// with `g`, then `f` with `o` (`avx2::lstm16_panels_pair`), and the cell activates `g`
/// first: the candidate's `tanh`, the longest chain, starts while the last pair is
/// summed (an LSTM 16->16 step 102.5 to 103.6 ns before, 100.1 to 101.3 ns after, on
/// a 2-core AMD EPYC Zen 4 under `NN_ISA=avx2`, alternated).
///
/// # Safety
/// The CPU must have AVX2 and FMA; `F` and `H` are multiples of 8 (checked by `step`).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn lstm_pair_step<const F: usize, const H: usize>(step: &mut Operands, panels: StepPanels<'_>) {
    let gh = 4 * H;
    let (_, biases) = step.params[..gh * (F + H + 2)].split_at(gh * (F + H));
    let (b_ih, b_hh) = biases.split_at(gh);
    let (p, q, h, c) = (&mut step.p[..gh], &mut step.q[..gh], &mut step.h[..H], &mut step.c[..H]);
    if H == 16 {
        // SAFETY: the caller's CPU has AVX2 and FMA, `F` is 8 or 16; the kernel asserts
        // its bounds.
        unsafe { avx2::lstm16_panels_pair::<F>(panels.ih, panels.hh, step.x, h, b_ih, b_hh, p, q) };
        lstm_units::<H, true>(p, q, h, c)
    } else {
        // SAFETY: the caller's CPU has AVX2 and FMA, `F` and `H` are multiples of 8; the
        // kernel asserts its bounds.
        unsafe { avx2::gemv_panels_pair::<F, H>(panels.ih, panels.hh, gh, step.x, h, b_ih, b_hh, p, q) };
        lstm_units::<H, false>(p, q, h, c)
    }
}

/// [`step`] compiled for AVX2 and FMA: the rows by the kernels of `F` and `H` floats
/// (over the panels, when given, for a projection of up to 16 inputs) and the
/// eight-lane cell arithmetic, inlined.
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
// The cell's closures are not redundant: a function item passed in their place would
// be called through a shim compiled without these instruction sets.
#[allow(clippy::redundant_closure)]
unsafe fn step_avx2<const F: usize, const H: usize>(step: &mut Operands) {
    // A one-layer GRU of up to 16 inputs and units: its projections in registers,
    // straight into the cell.
    if F <= PANEL_INPUTS && H <= PANEL_INPUTS && step.cfg.layers == 1 && step.cfg.cell == CellKind::Gru {
        if let Some(panels) = step.panels {
            let gh = 3 * H;
            let biases = &step.params[gh * (F + H)..gh * (F + H + 2)];
            let (b_ih, b_hh) = biases.split_at(gh);
            // SAFETY: the CPU has AVX2 and FMA; `F` and `H` are 8 or 16 (multiples of 8
            // up to 16); the kernel asserts its bounds.
            return unsafe {
                avx2::gru_step_panels::<F, H>(panels.ih, panels.hh, b_ih, b_hh, step.x, step.h, step.p, step.q)
            };
        }
    }
    if F <= PANEL_INPUTS && H <= PANEL_INPUTS && step.cfg.cell == CellKind::Lstm && step.cfg.layers == 1 {
        if let Some(panels) = step.panels {
            // SAFETY: the CPU has AVX2 and FMA.
            return unsafe { lstm_pair_step::<F, H>(step, panels) };
        }
    }
    if H.is_multiple_of(32)
        && H <= avx2::HELD_COLUMNS
        && F <= avx2::HELD_COLUMNS
        && alternates::<F, H>()
        && step.cfg.cell == CellKind::Gru
        && step.cfg.layers == 1
    {
        if let Some(panels) = step.panels {
            // SAFETY: the CPU has AVX2 and FMA; `F` is a multiple of 8 up to 64, `H` 32
            // or 64.
            return unsafe { gru_gates_beside_rows::<F, H>(step, panels) };
        }
    }
    if H <= avx2::HELD_COLUMNS && F <= avx2::HELD_COLUMNS && lstm_gates_beside::<F, H>(step.cfg) {
        if let Some(panels) = step.panels {
            // SAFETY: the CPU has AVX2 and FMA; `F` is a multiple of 8 up to 64, `H` 32,
            // 48 or 64.
            return unsafe { lstm_gates_beside_rows::<F, H>(step, panels) };
        }
    }
    step.run_chunked::<F, H, 16>(
        // Over panels up to 16 inputs: from 24 the rows' form is faster with eight lanes
        // (each input of a panel is one more load, a broadcast, where the rows load `x`
        // once per eight rows and keep it in registers; a GRU 8->64 step took 0.62 µs
        // over panels against 0.52 µs over the rows, on the AVX-512 Xeon of `docs/speed.md`).
        // SAFETY: the CPU has AVX2 and FMA; `F` and the rows are multiples of 8 (checked
        // by `step`) and the kernels assert their bounds.
        // The rows from 24 inputs are those of the copy in step order (`to_step_order`:
        // the rows unchanged with AVX2, aligned to a cache line in a stream's state);
        // up to 64 inputs with the input held in registers (`avx2::gemv_held`: an LSTM
        // 8->64 step 885 to 897 ns before, 873 to 881 ns after, on an AMD EPYC Zen 4
        // under `NN_ISA=avx2`).
        |panels, _, b, x, out, reverse| unsafe {
            if F <= PANEL_INPUTS {
                avx2::gemv_panels::<F>(panels, out.len(), x, b, reverse, out)
            } else if F <= avx2::HELD_COLUMNS {
                avx2::gemv_held::<F>(panels, out.len(), x, b, reverse, out)
            } else {
                avx2::gemv_fixed::<F>(panels, out.len(), x, Some(b), false, reverse, out)
            }
        },
        // SAFETY: as above.
        |panels, _, b, x, out, reverse| unsafe {
            if H <= PANEL_INPUTS {
                avx2::gemv_panels::<H>(panels, out.len(), x, b, reverse, out)
            } else if H <= avx2::HELD_COLUMNS {
                avx2::gemv_held::<H>(panels, out.len(), x, b, reverse, out)
            } else {
                avx2::gemv_fixed::<H>(panels, out.len(), x, Some(b), false, reverse, out)
            }
        },
        // SAFETY: as above; `run_chunked` gives chunks of 16 units of a multiple of 16.
        |panels, _, b, x, out, j, gates| unsafe { chunk_avx2::<F, H>(panels, b, x, out, j, gates) },
        // SAFETY: as above.
        |panels, _, b, x, out, j, gates| unsafe { chunk_avx2::<H, H>(panels, b, x, out, j, gates) },
        // SAFETY: the CPU has AVX2 and FMA; `N` is a multiple of 8 (checked by
        // `step`) and the kernel asserts its bounds.
        |w, b, x, out, reverse| unsafe { avx2::gemv_fixed::<F>(w, out.len(), x, Some(b), false, reverse, out) },
        // SAFETY: as above.
        |w, b, x, out, reverse| unsafe { avx2::gemv_fixed::<H>(w, out.len(), x, Some(b), false, reverse, out) },
        // Inlined here, as the whole cell below.
        |cell, p, q, h, c, j| cell_units_at::<16>(cell, p, q, h, c, j),
        // Inlined here, for `H` units: compiled for AVX2 and FMA (a closure, which
        // takes this function's instruction set, where a function item would not).
        // SAFETY: the CPU has AVX2 and FMA.
        |cell, p, q, h, c| unsafe { cell_fixed::<H>(cell, p, q, h, c) },
    )
}

/// A one-layer GRU step's operands, for the steps whose gates run beside the rows
/// ([`gru_gates_beside_rows`], [`gru_gates_beside_panels`]): the recurrent rows in
/// step order and their biases split by gate (`r`, `z`, `n`).
#[cfg(target_arch = "x86_64")]
struct GruOperands<'s> {
    /// Whether this step reads the rows in the reverse order.
    reverse: bool,
    x: &'s [f32],
    h: &'s mut [f32],
    /// The input and recurrent projections, `3 H` floats each (gates `r`, `z`, `n`).
    p: &'s mut [f32],
    q: &'s mut [f32],
    /// `weight_ih` in step order and its biases.
    ih: &'s [f32],
    b_ih: &'s [f32],
    hh: [&'s [f32]; 3],
    b_hh: [&'s [f32]; 3],
}

#[cfg(target_arch = "x86_64")]
impl<'s> GruOperands<'s> {
    /// `step`'s operands for a GRU of `F` inputs and `H` units with `panels`.
    #[inline(always)]
    fn split<const F: usize, const H: usize>(step: &'s mut Operands, panels: StepPanels<'s>) -> Self {
        let gh = 3 * H;
        let (b_ih, b_hh) = step.params[gh * (F + H)..gh * (F + H + 2)].split_at(gh);
        let hh = &panels.hh[..gh * H];
        GruOperands {
            reverse: step.reverse && alternates::<F, H>(),
            x: &step.x[..F],
            h: &mut step.h[..H],
            p: &mut step.p[..gh],
            q: &mut step.q[..gh],
            ih: panels.ih,
            b_ih,
            hh: [&hh[..H * H], &hh[H * H..2 * H * H], &hh[2 * H * H..]],
            b_hh: [&b_hh[..H], &b_hh[H..2 * H], &b_hh[2 * H..3 * H]],
        }
    }
}

/// One step of a one-layer GRU of 32 or 64 units (up to 64 inputs, more than 32 KiB of
/// weights: the stream alternates the order of the rows) with AVX2, its reset
/// and update gates' activations computed beside the recurrent rows that come from L2:
/// in the forward order (the input rows, then the recurrent rows of the gates `r`,
/// `z`, `n`) the reset gate's sigmoids beside the rows of `z` and the update gate's
/// beside those of `n`, eight units after every other block of four rows; in the
/// reverse order (the recurrent rows of `n`, then `z`, then the input rows,
/// then the recurrent rows of `r`) the update gate's sigmoids run beside the rows of
/// `r`, by `avx2::sigmoid_sum8_one_scale` (the bits of `sigmoid` by fewer operations:
/// 527 to 531 ns over the lane function (`maths::sigmoid_lanes`), 521 to 526 ns, best of four
/// alternated runs on a 2-core AMD EPYC Zen 4 under `NN_ISA=avx2`). Then the rest of
/// the cell, 32 units at a time, the candidate's `tanh` with one scaling factor
/// (`maths::tanh_lanes_one_scale`, the bits of `tanh`: a GRU 8->64 step 532.6 to 538.7 ns
/// over `tanh`, 529.6 to 533.0 ns, the same CPU; the cell eight units at a time by
/// `avx2::sigmoid8_one_scale` and `avx2::tanh8_one_scale` took 546 to 560 ns). The rows still alternate their
/// order from step to step (the rows one step reads last are the first the next one
/// reads) and every element gets the results of the whole-layer path, the same bits.
/// Out of line, so that the code of the step's other cells (an LSTM of the same widths
/// runs the same compiled step) stays as it was.
///
/// # Safety
/// The CPU must have AVX2 and FMA; `F` a multiple of 8 up to 64, `H` 32 or 64 (checked
/// by the caller).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline(never)]
unsafe fn gru_gates_beside_rows<const F: usize, const H: usize>(step: &mut Operands, panels: StepPanels<'_>) {
    let GruOperands { reverse, x, h, p, q, ih, b_ih, hh, b_hh } = GruOperands::split::<F, H>(step, panels);
    let gh = 3 * H;
    let (q_r, q_zn) = q.split_at_mut(H);
    let (q_z, q_n) = q_zn.split_at_mut(H);
    // SAFETY: the CPU has AVX2 and FMA; `F` is a multiple of 8 up to 64; the kernels
    // assert their bounds.
    let input = |p: &mut [f32]| unsafe {
        if F <= PANEL_INPUTS {
            avx2::gemv_panels::<F>(ih, gh, x, b_ih, reverse, p)
        } else {
            avx2::gemv_held::<F>(ih, gh, x, b_ih, reverse, p)
        }
    };
    let vectors = H / 8;
    if reverse {
        // SAFETY: the CPU has AVX2 and FMA; `H` is 32 or 64; the kernels assert their
        // bounds.
        unsafe {
            avx2::gemv_held::<H>(hh[2], H, h, b_hh[2], true, q_n);
            avx2::gemv_held::<H>(hh[1], H, h, b_hh[1], true, q_z);
        }
        input(p);
        let (pz, qz) = (p[H..2 * H].as_mut_ptr(), q_z.as_ptr());
        // `H / 4` blocks of four rows of `r`: the update gate's `H / 8` vectors after
        // every other block.
        // SAFETY: as above; the closure's pointers address `p` and `q_z`, which the
        // kernel does not hold.
        unsafe {
            avx2::gemv_held_with::<H>(hh[0], H, h, b_hh[0], true, q_r, |k| {
                if k % 2 == 0 && k / 2 < vectors {
                    // SAFETY: `8 (k / 2) + 8 <= H` floats from `pz` and `qz`.
                    avx2::sigmoid_sum8_one_scale(pz.add(8 * (k / 2)), qz.add(8 * (k / 2)))
                }
            })
        };
    } else {
        input(p);
        // SAFETY: as in the reverse order.
        unsafe { avx2::gemv_held::<H>(hh[0], H, h, b_hh[0], false, q_r) };
        let (pp, qr) = (p[..2 * H].as_mut_ptr(), q_r.as_ptr());
        // `H / 4` blocks of four rows of `z`: the reset gate's `H / 8` vectors after
        // every other block.
        // SAFETY: as above; the closure's pointers address `p` and `q_r`, which the
        // kernel does not hold.
        unsafe {
            avx2::gemv_held_with::<H>(hh[1], H, h, b_hh[1], false, q_z, |k| {
                if k % 2 == 0 && k / 2 < vectors {
                    // SAFETY: `8 (k / 2) + 8 <= H` floats from `pp` and `qr`.
                    avx2::sigmoid_sum8_one_scale(pp.add(8 * (k / 2)), qr.add(8 * (k / 2)))
                }
            })
        };
        // The same for the update gate beside the rows of `n`.
        // `q_z` is summed: a pointer into it from here on.
        let qz = q_z.as_ptr();
        // SAFETY: as above; the closure's pointers address `p` and `q_z`, which the
        // kernel does not hold.
        unsafe {
            avx2::gemv_held_with::<H>(hh[2], H, h, b_hh[2], false, q_n, |k| {
                if k % 2 == 0 && k / 2 < vectors {
                    // SAFETY: `H + 8 (k / 2) + 8 <= 2 H` floats from `pp`, `8 (k / 2) + 8
                    // <= H` from `qz`.
                    avx2::sigmoid_sum8_one_scale(pp.add(H + 8 * (k / 2)), qz.add(8 * (k / 2)))
                }
            })
        };
    }
    let (p, q) = (&*p, &*q);
    for j in (0..H).step_by(32) {
        let v = gru_units_activated::<32>(p, q, h, j, !reverse);
        h[j..j + 32].copy_from_slice(&v);
    }
}

/// Whether a step of `cfg` (`F` inputs, `H` units) is a one-layer LSTM whose gates
/// run beside its rows ([`lstm_gates_beside_panels`], [`lstm_gates_beside_rows`]): a
/// multiple of 16 units from 32, more than 32 KiB of weights (the stream alternates
/// the order of the rows).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn lstm_gates_beside<const F: usize, const H: usize>(cfg: &Config) -> bool {
    H.is_multiple_of(16) && H >= 32 && alternates::<F, H>() && cfg.cell == CellKind::Lstm && cfg.layers == 1
}

/// A one-layer LSTM step's operands, for the steps whose gates run beside the rows
/// ([`lstm_gates_beside_rows`], [`lstm_gates_beside_panels`]): the recurrent rows in
/// step order and their biases split by gate (`i`, `f`, `g`, `o`).
#[cfg(target_arch = "x86_64")]
struct LstmOperands<'s> {
    /// Whether this step reads the rows in the reverse order.
    reverse: bool,
    x: &'s [f32],
    h: &'s mut [f32],
    c: &'s mut [f32],
    /// The input and recurrent projections, `4 H` floats each (gates `i`, `f`, `g`,
    /// `o`).
    p: &'s mut [f32],
    q: &'s mut [f32],
    /// `weight_ih` in step order and its biases.
    ih: &'s [f32],
    b_ih: &'s [f32],
    hh: [&'s [f32]; 4],
    b_hh: [&'s [f32]; 4],
}

#[cfg(target_arch = "x86_64")]
impl<'s> LstmOperands<'s> {
    /// `step`'s operands for an LSTM of `F` inputs and `H` units with `panels`.
    #[inline(always)]
    fn split<const F: usize, const H: usize>(step: &'s mut Operands, panels: StepPanels<'s>) -> Self {
        let gh = 4 * H;
        let (b_ih, b_hh) = step.params[gh * (F + H)..gh * (F + H + 2)].split_at(gh);
        let hh = &panels.hh[..gh * H];
        LstmOperands {
            reverse: step.reverse && alternates::<F, H>(),
            x: &step.x[..F],
            h: &mut step.h[..H],
            c: &mut step.c[..H],
            p: &mut step.p[..gh],
            q: &mut step.q[..gh],
            ih: panels.ih,
            b_ih,
            // Written out where `cells::blocks` (`array::from_fn`) was a call per step.
            hh: [&hh[..H * H], &hh[H * H..2 * H * H], &hh[2 * H * H..3 * H * H], &hh[3 * H * H..]],
            b_hh: [&b_hh[..H], &b_hh[H..2 * H], &b_hh[2 * H..3 * H], &b_hh[3 * H..]],
        }
    }
}

/// One step of a one-layer LSTM of a multiple of 16 units from 32 (more than 32 KiB of
/// weights: the stream alternates the order of the rows) with AVX-512, over the panels
/// of sixteen rows, its gates' activations computed beside the recurrent rows that come
/// from L2, two 16-lane vectors after each pair of panels (32 rows). In the forward
/// order (the input rows, then the recurrent rows of `i`, `f`, `g`, `o`) the sigmoids
/// of `i` beside the rows of `f`, those of `f` beside the rows of `g`, and beside the
/// rows of `o` the `tanh` of `g`, the new cell state and its `tanh`; then the sigmoids
/// of `o` and the new hidden state. In the reverse order (the recurrent rows of `o`,
/// `g`, the input rows, then the rows of `f`, `i`) the sigmoids of `o` and the `tanh`
/// of `g` beside the rows of `f`, the sigmoids of `f` beside those of `i`; then the
/// rest of the cell. The rows still alternate their order from step to step (the rows
/// one step reads last are the first the next one reads) and every element gets the
/// operations of the whole-layer path, the same bits (an LSTM 8->64 step 762 to 765 ns
/// 16 units at a time, 745 to 756 ns, best of alternated runs on a 2-core AMD EPYC
/// Zen 4; the rows alone, without the cell, take about 735 ns). A function of its own,
/// called by [`step`] ahead of [`step_avx512`], as [`gru_gates_beside_panels`].
///
/// # Safety
/// The CPU must have AVX-512 F, AVX2 and FMA; `F` a multiple of 8, `H` of 16 from 32
/// (checked by the caller).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline(never)]
unsafe fn lstm_gates_beside_panels<const F: usize, const H: usize>(step: &mut Operands, panels: StepPanels<'_>) {
    let LstmOperands { reverse, x, h, c, p, q, ih, b_ih, hh, b_hh } = LstmOperands::split::<F, H>(step, panels);
    let gh = 4 * H;
    let [q_i, q_f, q_g, q_o] = super::cells::blocks_mut::<4>(q, H);
    // Vectors of 16 units per gate; after the `k`-th pair of panels of a gate's rows
    // (or its last lone panel), vectors `2 k` and `2 k + 1` of another gate.
    let vectors = H / 16;
    #[inline(always)]
    fn each(k: usize, vectors: usize, mut f: impl FnMut(usize)) {
        for v in [2 * k, 2 * k + 1] {
            if v < vectors {
                f(16 * v)
            }
        }
    }
    let cp = c.as_mut_ptr();
    // SAFETY (every closure below): `u + 16 <= H` for the offsets `u` of `each`, inside
    // each gate's block of `H` floats of `p` (`4 H`), of `q` and of `c`; the kernel it
    // runs beside holds neither `p` nor `c` nor the block of `q` the closure reads, and
    // each pointer into a block of `q` is taken after the kernel that writes that block
    // has returned.
    if reverse {
        // SAFETY: the CPU has AVX-512 F, AVX2 and FMA; `F` is a multiple of 8, `H` of
        // 16; the kernels assert their bounds.
        unsafe {
            avx512::gemv_panels::<H>(hh[3], H, h, b_hh[3], true, q_o);
            avx512::gemv_panels::<H>(hh[2], H, h, b_hh[2], true, q_g);
            avx512::gemv_panels::<F>(ih, gh, x, b_ih, true, p);
        }
        let (pp, qo, qg) = (p.as_mut_ptr(), q_o.as_ptr(), q_g.as_ptr());
        // SAFETY: as above.
        unsafe {
            avx512::gemv_panels_with::<H>(hh[1], H, h, b_hh[1], true, q_f, |k| {
                each(k, vectors, |u| {
                    avx512::sigmoid_sum16(pp.add(3 * H + u), qo.add(u));
                    avx512::tanh_sum16(pp.add(2 * H + u), qg.add(u));
                })
            });
            let qf = q_f.as_ptr();
            avx512::gemv_panels_with::<H>(hh[0], H, h, b_hh[0], true, q_i, |k| {
                each(k, vectors, |u| avx512::sigmoid_sum16(pp.add(H + u), qf.add(u)))
            });
        }
    } else {
        // SAFETY: as in the reverse order.
        unsafe {
            avx512::gemv_panels::<F>(ih, gh, x, b_ih, false, p);
            avx512::gemv_panels::<H>(hh[0], H, h, b_hh[0], false, q_i);
        }
        let (pp, qi) = (p.as_mut_ptr(), q_i.as_ptr());
        // SAFETY: as above.
        unsafe {
            avx512::gemv_panels_with::<H>(hh[1], H, h, b_hh[1], false, q_f, |k| {
                each(k, vectors, |u| avx512::sigmoid_sum16(pp.add(u), qi.add(u)))
            });
            let qf = q_f.as_ptr();
            avx512::gemv_panels_with::<H>(hh[2], H, h, b_hh[2], false, q_g, |k| {
                each(k, vectors, |u| avx512::sigmoid_sum16(pp.add(H + u), qf.add(u)))
            });
            let qg = q_g.as_ptr();
            avx512::gemv_panels_with::<H>(hh[3], H, h, b_hh[3], false, q_o, |k| {
                each(k, vectors, |u| {
                    avx512::tanh_sum16(pp.add(2 * H + u), qg.add(u));
                    avx512::lstm_state16(pp.add(u), pp.add(H + u), pp.add(2 * H + u), cp.add(u));
                })
            });
        }
    }
    // The rest of the cell: in the reverse order the sigmoids of `i`, the new cell
    // state and its `tanh`, in the forward one the sigmoids of `o`; then the new hidden
    // state.
    let (pp, qp, hp) = (p.as_mut_ptr(), q.as_ptr(), h.as_mut_ptr());
    for u in (0..H).step_by(16) {
        // SAFETY: `u + 16 <= H`: inside each gate's block of `p` and `q` and inside `c`
        // and `h` (`H` floats); no reference to them is live.
        unsafe {
            if reverse {
                avx512::sigmoid_sum16(pp.add(u), qp.add(u));
                avx512::lstm_state16(pp.add(u), pp.add(H + u), pp.add(2 * H + u), cp.add(u));
            } else {
                avx512::sigmoid_sum16(pp.add(3 * H + u), qp.add(3 * H + u));
            }
            avx512::lstm_hidden16(pp.add(3 * H + u), pp.add(2 * H + u), hp.add(u));
        }
    }
}

/// [`lstm_gates_beside_panels`] with AVX2, over the rows (`avx2::gemv_held_with`, the
/// input held in registers): one step of a one-layer LSTM of 32, 48 or 64 units and up
/// to 64 inputs, its gates' activations computed beside the recurrent rows that come
/// from L2, eight units after every block or every other block of four rows, in the
/// same places as there: where two activations of eight units run beside one gate's
/// rows (the sigmoids of `o` and the `tanh` of `g` beside the rows of `f` in the
/// reverse order, the `tanh` of `g` and the new cell state beside the rows of `o` in the
/// forward one), the first after the even blocks, the second after the odd ones. The
/// rest of the cell after the rows runs in the order the last gate's rows were summed.
/// The sigmoids and `tanh` are `avx2::sigmoid_sum8_one_scale` and
/// `avx2::tanh_sum8` (fewer operations on the exponential's scaling), with the bits of
/// the portable functions. The same bits (an LSTM 8->64 step 890 to 904 ns 16 units at
/// a time, 854 to 863 ns with the activations beside the rows, 791 to 798 ns with these
/// activations and places, 780 to 794 ns with the gates' blocks taken without a call,
/// best of alternated runs on a 2-core AMD EPYC Zen 4 under `NN_ISA=avx2`).
///
/// # Safety
/// The CPU must have AVX2 and FMA; `F` a multiple of 8 up to 64, `H` 32, 48 or 64
/// (checked by the caller).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline(never)]
unsafe fn lstm_gates_beside_rows<const F: usize, const H: usize>(step: &mut Operands, panels: StepPanels<'_>) {
    let LstmOperands { reverse, x, h, c, p, q, ih, b_ih, hh, b_hh } = LstmOperands::split::<F, H>(step, panels);
    let gh = 4 * H;
    let [q_i, q_f, q_g, q_o] = super::cells::blocks_mut::<4>(q, H);
    // SAFETY: the CPU has AVX2 and FMA; `F` is a multiple of 8 up to 64; the kernels
    // assert their bounds.
    let input = |p: &mut [f32]| unsafe {
        if F <= PANEL_INPUTS {
            avx2::gemv_panels::<F>(ih, gh, x, b_ih, reverse, p)
        } else {
            avx2::gemv_held::<F>(ih, gh, x, b_ih, reverse, p)
        }
    };
    // Vectors of 8 units per gate (a gate's rows are `2 vectors` blocks of four); after
    // every other block of four rows of a gate (the `k`-th, `k` even), vector `k / 2` of
    // another gate, or after every block, vector `k / 2`'s first activation (`k` even)
    // or its second (`k` odd).
    let vectors = H / 8;
    #[inline(always)]
    fn each(k: usize, vectors: usize, mut f: impl FnMut(usize)) {
        if k.is_multiple_of(2) && k / 2 < vectors {
            f(8 * (k / 2))
        }
    }
    let cp = c.as_mut_ptr();
    // SAFETY (every closure below): `u + 8 <= H` for the offsets `u` of `each` and
    // `8 (k / 2)` (`k < H / 4`, the blocks of a gate), inside each gate's block of `H`
    // floats of `p` (`4 H`), of `q` and of `c`; the kernel it runs beside holds neither
    // `p` nor `c` nor the block of `q` the closure reads, and each pointer into a block
    // of `q` is taken after the kernel that writes that block has returned.
    if reverse {
        // SAFETY: the CPU has AVX2 and FMA; `H` is 32, 48 or 64; the kernels assert
        // their bounds.
        unsafe {
            avx2::gemv_held::<H>(hh[3], H, h, b_hh[3], true, q_o);
            avx2::gemv_held::<H>(hh[2], H, h, b_hh[2], true, q_g);
        }
        input(p);
        let (pp, qo, qg) = (p.as_mut_ptr(), q_o.as_ptr(), q_g.as_ptr());
        // SAFETY: as above.
        unsafe {
            avx2::gemv_held_with::<H>(hh[1], H, h, b_hh[1], true, q_f, |k| {
                let u = 8 * (k / 2);
                if k.is_multiple_of(2) {
                    avx2::sigmoid_sum8_one_scale(pp.add(3 * H + u), qo.add(u));
                } else {
                    avx2::tanh_sum8(pp.add(2 * H + u), qg.add(u));
                }
            });
            let qf = q_f.as_ptr();
            avx2::gemv_held_with::<H>(hh[0], H, h, b_hh[0], true, q_i, |k| {
                each(k, vectors, |u| avx2::sigmoid_sum8_one_scale(pp.add(H + u), qf.add(u)))
            });
        }
    } else {
        input(p);
        // SAFETY: as in the reverse order.
        unsafe { avx2::gemv_held::<H>(hh[0], H, h, b_hh[0], false, q_i) };
        let (pp, qi) = (p.as_mut_ptr(), q_i.as_ptr());
        // SAFETY: as above.
        unsafe {
            avx2::gemv_held_with::<H>(hh[1], H, h, b_hh[1], false, q_f, |k| {
                each(k, vectors, |u| avx2::sigmoid_sum8_one_scale(pp.add(u), qi.add(u)))
            });
            let qf = q_f.as_ptr();
            avx2::gemv_held_with::<H>(hh[2], H, h, b_hh[2], false, q_g, |k| {
                each(k, vectors, |u| avx2::sigmoid_sum8_one_scale(pp.add(H + u), qf.add(u)))
            });
            let qg = q_g.as_ptr();
            avx2::gemv_held_with::<H>(hh[3], H, h, b_hh[3], false, q_o, |k| {
                let u = 8 * (k / 2);
                if k.is_multiple_of(2) {
                    avx2::tanh_sum8(pp.add(2 * H + u), qg.add(u));
                } else {
                    avx2::lstm_state8(pp.add(u), pp.add(H + u), pp.add(2 * H + u), cp.add(u));
                }
            });
        }
    }
    // The rest of the cell: in the reverse order the sigmoids of `i`, the new cell
    // state and its `tanh`, in the forward one the sigmoids of `o`; then the new hidden
    // state.
    let (pp, qp, hp) = (p.as_mut_ptr(), q.as_ptr(), h.as_mut_ptr());
    for j in 0..vectors {
        // In the order the last gate's rows were summed: its first units are ready first.
        let u = 8 * if reverse { vectors - 1 - j } else { j };
        // SAFETY: `u + 8 <= H`: inside each gate's block of `p` and `q` and inside `c`
        // and `h` (`H` floats); no reference to them is live.
        unsafe {
            if reverse {
                avx2::sigmoid_sum8_one_scale(pp.add(u), qp.add(u));
                avx2::lstm_state8(pp.add(u), pp.add(H + u), pp.add(2 * H + u), cp.add(u));
            } else {
                avx2::sigmoid_sum8_one_scale(pp.add(3 * H + u), qp.add(3 * H + u));
            }
            avx2::lstm_hidden8(pp.add(3 * H + u), pp.add(2 * H + u), hp.add(u));
        }
    }
}

/// The rows of 16 units from `j` of each of `gates` gates (`H` units each) of a
/// projection of `N` inputs over the weights in step order (`panels`): in panels up to
/// [`PANEL_INPUTS`] inputs, the rows unchanged from there (aligned to a cache line in a
/// stream's state, where the rows of the parameters may not be: an LSTM 8->64 step 962
/// to 978 ns over the parameters, 875 to 915 ns over the copy, on an AMD EPYC Zen 4
/// under `NN_ISA=avx2`), as [`step_avx2`]'s whole projections.
///
/// # Safety
/// The CPU must have AVX2 and FMA.
///
/// # Panics
/// As the kernels: `N` a multiple of 8, `H` and `j` multiples of 16, `j < H`, `out`
/// of `gates H` floats.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn chunk_avx2<const N: usize, const H: usize>(
    panels: &[f32],
    b: &[f32],
    x: &[f32],
    out: &mut [f32],
    j: usize,
    gates: usize,
) {
    let m = out.len();
    for g in 0..gates {
        let r = g * H + j;
        // SAFETY: the CPU has AVX2 and FMA; the kernels assert their bounds.
        unsafe {
            if N <= PANEL_INPUTS {
                avx2::gemv_panel_rows::<N>(panels, m, x, b, r, out);
                avx2::gemv_panel_rows::<N>(panels, m, x, b, r + 8, out);
            } else if N <= avx2::HELD_COLUMNS {
                avx2::gemv_held::<N>(&panels[r * N..], 16, x, &b[r..], false, &mut out[r..]);
            } else {
                avx2::gemv_fixed::<N>(&panels[r * N..], 16, x, Some(&b[r..]), false, false, &mut out[r..]);
            }
        }
    }
}

/// Inputs up to which [`step_avx2`] reads the first layer's weights in step order.
#[cfg(target_arch = "x86_64")]
const PANEL_INPUTS: usize = 16;

/// [`step_avx2`] with the projections over panels on sixteen lanes, and from
/// `AVX512_MIN_UNITS` units the cell arithmetic too. (A one-layer LSTM of up to 16
/// inputs and 16 units takes `avx512::lstm16_step_panels` before it, through
/// [`lstm16_step_avx512`]: its projections in registers for the cell, on AMD Zen 4,
/// whose 512-bit operations take two passes of its 256-bit units, 95 ns against 111 ns
/// over the eight-lane pair kernel with the cell's loops on sixteen lanes, and 128 ns
/// over the 16-lane panels and those loops.)
///
/// # Safety
/// The CPU must have AVX-512 F, AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
// The cell step's closure is not redundant: a function item passed in its place would be
// called through a shim compiled without these instruction sets.
#[allow(clippy::redundant_closure)]
unsafe fn step_avx512<const F: usize, const H: usize>(step: &mut Operands) {
    step.run_chunked::<F, H, 16>(
        // SAFETY: the CPU has AVX-512 F, AVX2 and FMA; `F` and the rows are multiples of
        // 8 (checked by `step`) and the kernel asserts its bounds.
        |panels, _, b, x, out, reverse| unsafe { avx512::gemv_panels::<F>(panels, out.len(), x, b, reverse, out) },
        // SAFETY: as above.
        |panels, _, b, x, out, reverse| unsafe { avx512::gemv_panels::<H>(panels, out.len(), x, b, reverse, out) },
        // SAFETY: as above; `run_chunked` gives chunks of 16 units of a multiple of 16,
        // so that every gate's rows of a chunk are one full panel.
        |panels, _, b, x, out, j, gates| unsafe { chunk_avx512::<F, H>(panels, b, x, out, j, gates) },
        // SAFETY: as above.
        |panels, _, b, x, out, j, gates| unsafe { chunk_avx512::<H, H>(panels, b, x, out, j, gates) },
        // SAFETY: the CPU has AVX2 and FMA; `N` is a multiple of 8 (checked by
        // `step`) and the kernel asserts its bounds.
        |w, b, x, out, reverse| unsafe { avx2::gemv_fixed::<F>(w, out.len(), x, Some(b), false, reverse, out) },
        // SAFETY: as above.
        |w, b, x, out, reverse| unsafe { avx2::gemv_fixed::<H>(w, out.len(), x, Some(b), false, reverse, out) },
        // Inlined here, as the whole cell below.
        |cell, p, q, h, c, j| cell_units_at::<16>(cell, p, q, h, c, j),
        // Inlined here, for `H` units: compiled for AVX-512 (`step` takes this form from
        // `AVX512_MIN_UNITS` units only).
        |cell, p, q, h, c| cell_step_units::<H>(cell, p, q, h, c),
    )
}

/// [`gru_gates_beside_rows`] with AVX-512, over the panels of sixteen rows: one step of
/// a one-layer GRU of a multiple of 32 units (more than 32 KiB of weights: the stream
/// alternates the order of the rows), its reset and update gates' sigmoids computed
/// beside recurrent rows that come from L2. In the forward order (the input rows, then
/// the recurrent rows of `r`, `z`, `n`) the reset gate's sigmoids run beside the rows
/// of `z`, the update gate's beside those of `n`, 32 units after each pair of panels
/// (32 rows); in the reverse order (the recurrent rows of `n`, then `z`, then the input
/// rows, then the recurrent rows of `r`) the update gate's beside the rows of `r`. Then
/// the rest of the cell. The rows still alternate their order from step to step, and
/// every element gets the results of the whole-layer path, the same bits (a GRU
/// 8->64 step 538 to 544 ns over the whole-layer path, 500 to 515 ns, best of
/// alternated runs on a 2-core AMD EPYC Zen 4). The sigmoids scale by `2^n` in one
/// `vscalefps` (`avx512::sigmoid_sum16`) and the candidate's `tanh` by one
/// factor (`maths::tanh_lanes_one_scale`), the bits of the lane functions (510.2 to
/// 513.6 ns before, 503.5 to 518.6 ns, median 509 against 512 ns, four alternated runs
/// on the same CPU). Every projection is pairs of panels, summed by
/// `avx512::gemv_panel_pairs_with` inlined here (through the general
/// `avx512::gemv_panels`, out of line for the projections without a hook, 476 to 487 ns
/// against 460 to 466 ns, alternated runs on the same CPU). Of that step, builds for
/// timing only (their outputs wrong) take 405 to 416 ns for the rows alone and 422 to
/// 424 ns with the gates beside them: the rest of the cell adds about 40 ns, whether or
/// not its new state reaches the next step's rows (the earlier measure of the rows alone
/// taking the whole step did not repeat). Computing the candidate and the new state of
/// the units whose rows are done beside the remaining rows (in either order, into `p`
/// until the last row has read the old state) was no faster, 502 to 526 ns against 504
/// to 515 ns, alternated before the pairs kernel. A function of its
/// own, called by [`step`] ahead of [`step_avx512`]: inlined into the latter, the LSTM
/// 8->64 step of the same widths took 780 ns where it takes 765 ns.
///
/// # Safety
/// The CPU must have AVX-512 F, AVX2 and FMA; `F` a multiple of 8, `H` of 32 (checked
/// by the caller).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline(never)]
unsafe fn gru_gates_beside_panels<const F: usize, const H: usize>(step: &mut Operands, panels: StepPanels<'_>) {
    let GruOperands { reverse, x, h, p, q, ih, b_ih, hh, b_hh } = GruOperands::split::<F, H>(step, panels);
    let gh = 3 * H;
    let (q_r, q_zn) = q.split_at_mut(H);
    let (q_z, q_n) = q_zn.split_at_mut(H);
    // Vectors of 16 units per gate; each gate's rows are `H / 32` pairs of panels.
    let vectors = H / 16;
    if reverse {
        // SAFETY: the CPU has AVX-512 F, AVX2 and FMA; `F` is a multiple of 8, `H` of
        // 32; the kernels assert their bounds.
        unsafe {
            avx512::gemv_panel_pairs_with::<H>(hh[2], H, h, b_hh[2], true, q_n, |_| {});
            avx512::gemv_panel_pairs_with::<H>(hh[1], H, h, b_hh[1], true, q_z, |_| {});
            avx512::gemv_panel_pairs_with::<F>(ih, gh, x, b_ih, true, p, |_| {});
        }
        let (pz, qz) = (p[H..2 * H].as_mut_ptr(), q_z.as_ptr());
        // After pair `k` of the rows of `r`, the update gate's vectors `2 k` and `2 k + 1`.
        // SAFETY: as above; the closure's pointers address `p` and `q_z`, which the
        // kernel does not hold.
        unsafe {
            avx512::gemv_panel_pairs_with::<H>(hh[0], H, h, b_hh[0], true, q_r, |k| {
                for v in [2 * k, 2 * k + 1] {
                    if v < vectors {
                        // SAFETY: `16 v + 16 <= H` floats from `pz` and `qz`.
                        avx512::sigmoid_sum16(pz.add(16 * v), qz.add(16 * v))
                    }
                }
            })
        };
    } else {
        // SAFETY: as in the reverse order.
        unsafe {
            avx512::gemv_panel_pairs_with::<F>(ih, gh, x, b_ih, false, p, |_| {});
            avx512::gemv_panel_pairs_with::<H>(hh[0], H, h, b_hh[0], false, q_r, |_| {});
        }
        let (pp, qr) = (p[..2 * H].as_mut_ptr(), q_r.as_ptr());
        // After pair `k` of the rows of `z`, the reset gate's vectors `2 k` and `2 k + 1`.
        // SAFETY: as above; the closure's pointers address `p` and `q_r`, which the
        // kernel does not hold.
        unsafe {
            avx512::gemv_panel_pairs_with::<H>(hh[1], H, h, b_hh[1], false, q_z, |k| {
                for v in [2 * k, 2 * k + 1] {
                    if v < vectors {
                        // SAFETY: `16 v + 16 <= H` floats from `pp` and `qr`.
                        avx512::sigmoid_sum16(pp.add(16 * v), qr.add(16 * v))
                    }
                }
            })
        };
        // After pair `k` of the rows of `n`, the update gate's vectors `2 k` and `2 k + 1`.
        // `q_z` is summed: a pointer into it from here on.
        let qz = q_z.as_ptr();
        // SAFETY: as above; the closure's pointers address `p` and `q_z`, which the
        // kernel does not hold.
        unsafe {
            avx512::gemv_panel_pairs_with::<H>(hh[2], H, h, b_hh[2], false, q_n, |k| {
                for v in [2 * k, 2 * k + 1] {
                    if v < vectors {
                        // SAFETY: `H + 16 v + 16 <= 2 H` floats from `pp`, `16 v + 16 <= H`
                        // from `qz`.
                        avx512::sigmoid_sum16(pp.add(H + 16 * v), qz.add(16 * v))
                    }
                }
            })
        };
    }
    // The rest of the cell 64 units at a time where it can (four vectors per operation:
    // a GRU 8->64 step 513 to 520 ns against 527 to 536 ns 32 at a time, on an AMD
    // EPYC Zen 4).
    let (p, q) = (&*p, &*q);
    if H.is_multiple_of(64) {
        for j in (0..H).step_by(64) {
            let v = gru_units_activated::<64>(p, q, h, j, !reverse);
            h[j..j + 64].copy_from_slice(&v);
        }
    } else {
        for j in (0..H).step_by(32) {
            let v = gru_units_activated::<32>(p, q, h, j, !reverse);
            h[j..j + 32].copy_from_slice(&v);
        }
    }
}

/// The rows of 16 units from `j` of each of `gates` gates (`H` units each) of a
/// projection of `N` inputs over its weights in step order: each gate's rows one
/// panel, an LSTM's two at a time sharing each input (`avx512::panels16_at`).
///
/// # Safety
/// The CPU must have AVX-512 F, AVX2 and FMA.
///
/// # Panics
/// As `avx512::gemv_panel_rows`: `H` and `j` multiples of 16, `j < H`, `out` of
/// `gates H` floats.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
unsafe fn chunk_avx512<const N: usize, const H: usize>(
    panels: &[f32],
    b: &[f32],
    x: &[f32],
    out: &mut [f32],
    j: usize,
    gates: usize,
) {
    let m = out.len();
    // SAFETY: the CPU has AVX-512 F, AVX2 and FMA; the kernel asserts its bounds.
    unsafe {
        match gates {
            4 => {
                avx512::gemv_panel_rows::<N, 2>(panels, m, x, b, [j, H + j], out);
                avx512::gemv_panel_rows::<N, 2>(panels, m, x, b, [2 * H + j, 3 * H + j], out);
            }
            _ => {
                for g in 0..gates {
                    avx512::gemv_panel_rows::<N, 1>(panels, m, x, b, [g * H + j], out);
                }
            }
        }
    }
}

/// The cell arithmetic of a step compiled for AVX2, for `H` units (a multiple of 8): a
/// GRU of up to 16 units by the written-out eight-lane function (`avx2::gru_cell`: each
/// gate's chain in registers, the portable bits; a GRU 8->8 step 57 to 48 ns on the
/// AVX-512 Xeon of `docs/speed.md`), a GRU of a multiple of 32 units by the cells' own
/// loops 32 units at a time, the others by the cells' own loops inlined for `H` (an
/// LSTM 16->16 written out the same way was no faster). Every unit gets the same
/// operations either way.
///
/// # Safety
/// The CPU must have AVX2 and FMA (the caller is compiled for them).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn cell_fixed<const H: usize>(cell: CellKind, p: &mut [f32], q: &[f32], h: &mut [f32], c: &mut [f32]) {
    match cell {
        // SAFETY: the CPU has AVX2 and FMA (the caller's contract); `H` is 8 or 16.
        CellKind::Gru if H <= 16 => unsafe { avx2::gru_cell::<H>(p, q, h) },
        // From 32 units, 32 at a time: four vectors per operation, where 64 units at
        // once (eight) took longer (a GRU 8->64 step 577 to 582 ns over all 64, 563 to
        // 572 ns 32 at a time, 594 to 597 ns 16 at a time, on an AMD EPYC Zen 4 under
        // `NN_ISA=avx2`).
        CellKind::Gru if H.is_multiple_of(32) => {
            for j in (0..H).step_by(32) {
                let v = cell_units_at::<32>(cell, p, q, h, c, j);
                h[j..j + 32].copy_from_slice(&v);
            }
        }
        _ => cell_step_units::<H>(cell, p, q, h, c),
    }
}

/// [`project`] with a bias, rows in any order (the order changes no result).
#[inline]
fn project_any(weight: &[f32], bias: &[f32], x: &[f32], out: &mut [f32], _reverse: bool) {
    project(weight, Some(bias), x, out);
}

impl Operands<'_, '_> {
    /// The step for inputs of `F` floats and `H` units,
    /// with `project_f` and `project_h` (`out = bias + weight x`, rows in
    /// `reverse` order if asked) for the projections of `F` and of `H` inputs,
    /// `panels_f` and `panels_h` for those of the first layer (given its weights in step
    /// order, [`StepPanels`], and as rows) when the step has them,
    /// given), and `cell_step` for the cell arithmetic.
    #[inline(always)]
    fn run<const F: usize, const H: usize>(
        &mut self,
        panels_f: impl Fn(&[f32], &[f32], &[f32], &[f32], &mut [f32], bool),
        panels_h: impl Fn(&[f32], &[f32], &[f32], &[f32], &mut [f32], bool),
        project_f: impl Fn(&[f32], &[f32], &[f32], &mut [f32], bool),
        project_h: impl Fn(&[f32], &[f32], &[f32], &mut [f32], bool),
        cell_step: impl Fn(CellKind, &mut [f32], &[f32], &mut [f32], &mut [f32]),
    ) {
        self.run_chunked::<F, H, 0>(
            panels_f,
            panels_h,
            |_, _, _, _, _, _, _| {},
            |_, _, _, _, _, _, _| {},
            project_f,
            project_h,
            |_, _, _, _, _, _| [0.0; 0],
            cell_step,
        )
    }

    /// [`Self::run`], with the first layer over its weights in step order, when the
    /// step has them, `U` (a divisor of `H`, at most `H / 2`; 0 for none) is given
    /// and the cell is not a GRU, computed `U` units at a time: the rows of every gate of units `j..j + U` of
    /// both projections (`chunk_f`, `chunk_h`: rows `g H + j .. g H + j + U` of each of
    /// `gates` gates into the output, rows of the other units untouched), then the cell
    /// arithmetic of those units (`cell_units`, their new hidden state), so that the
    /// cell of one chunk of units runs while the projections of the next are summed.
    /// The new hidden states wait in the input projection's rows of their units'
    /// first gate (consumed by then) until the last chunk's recurrent projection has
    /// read the old ones. The same operations on every element as [`Self::run`].
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn run_chunked<const F: usize, const H: usize, const U: usize>(
        &mut self,
        panels_f: impl Fn(&[f32], &[f32], &[f32], &[f32], &mut [f32], bool),
        panels_h: impl Fn(&[f32], &[f32], &[f32], &[f32], &mut [f32], bool),
        chunk_f: impl Fn(&[f32], &[f32], &[f32], &[f32], &mut [f32], usize, usize),
        chunk_h: impl Fn(&[f32], &[f32], &[f32], &[f32], &mut [f32], usize, usize),
        project_f: impl Fn(&[f32], &[f32], &[f32], &mut [f32], bool),
        project_h: impl Fn(&[f32], &[f32], &[f32], &mut [f32], bool),
        cell_units: impl Fn(CellKind, &[f32], &[f32], &[f32], &mut [f32], usize) -> [f32; U],
        cell_step: impl Fn(CellKind, &mut [f32], &[f32], &mut [f32], &mut [f32]),
    ) {
        let (cfg, reverse) = (self.cfg, self.reverse && alternates::<F, H>());
        debug_assert_eq!(cfg.directions, 1);
        let (hd, gh) = (cfg.hidden, cfg.gate_width());
        let (p, q) = (&mut self.p[..gh], &mut self.q[..gh]);
        for l in 0..cfg.layers {
            let (below, here) = self.h.split_at_mut(l * hd);
            let h_l = &mut here[..hd];
            let c_l: &mut [f32] = if cfg.cell == CellKind::Lstm { &mut self.c[l * hd..(l + 1) * hd] } else { &mut [] };
            let chunked = U > 0 && H.is_multiple_of(U.max(1)) && H >= 2 * U && cfg.cell != CellKind::Gru;
            if chunked && l == 0 {
                if let Some(panels) = self.panels {
                    let (ih, rest) = self.params[..gh * (F + H + 2)].split_at(gh * F);
                    let (hh, biases) = rest.split_at(gh * H);
                    let (b_ih, b_hh) = biases.split_at(gh);
                    let (x, gates, chunks) = (&self.x[..F], cfg.cell.gates(), H / U.max(1));
                    for k in 0..chunks {
                        let j = U * if reverse { chunks - 1 - k } else { k };
                        if reverse {
                            chunk_h(panels.hh, hh, b_hh, h_l, q, j, gates);
                        }
                        chunk_f(panels.ih, ih, b_ih, x, p, j, gates);
                        if !reverse {
                            chunk_h(panels.hh, hh, b_hh, h_l, q, j, gates);
                        }
                        let h_new = cell_units(cfg.cell, p, q, h_l, c_l, j);
                        p[j..j + U].copy_from_slice(&h_new);
                    }
                    h_l.copy_from_slice(&p[..H]);
                    continue;
                }
            }
            match self.panels.filter(|_| l == 0) {
                Some(panels) => {
                    // The first layer over its weights in step order; its biases follow
                    // its weights in `params` (`G H (F + H)` floats).
                    let (ih, rest) = self.params[..gh * (F + H + 2)].split_at(gh * F);
                    let (hh, biases) = rest.split_at(gh * H);
                    let (b_ih, b_hh) = biases.split_at(gh);
                    if reverse {
                        panels_h(panels.hh, hh, b_hh, h_l, q, true);
                    }
                    panels_f(panels.ih, ih, b_ih, &self.x[..F], p, reverse);
                    if !reverse {
                        panels_h(panels.hh, hh, b_hh, h_l, q, false);
                    }
                }
                None => {
                    let w = cfg.weights(self.params, l, 0);
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
                }
            }
            // One call of the cell arithmetic per layer, whichever weights the
            // projections read: a single call site, which the compiler inlines.
            cell_step(cfg.cell, p, q, h_l, c_l);
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::kernels::portable;
    use crate::rng::Rng;

    /// `bias + dot(row, x)` for every row, by the portable `dot`: the order every
    /// instruction set rounds a projection in.
    fn reference(w: &[f32], m: usize, n: usize, x: &[f32], bias: &[f32]) -> Vec<u32> {
        (0..m).map(|r| (bias[r] + portable::dot(&w[r * n..(r + 1) * n], x)).to_bits()).collect()
    }

    fn case<const N: usize>(rng: &mut Rng, m: usize) {
        let special = [0.0, -0.0, 1e-30, -1e-30, 3.0e38, 1.0, -1.0];
        let mut value =
            |k: usize| if k.is_multiple_of(11) { special[k / 11 % special.len()] } else { rng.uniform_in(-3.0, 3.0) };
        let w: Vec<f32> = (0..m * N).map(&mut value).collect();
        let x: Vec<f32> = (0..N).map(|k| value(k + 5)).collect();
        let bias: Vec<f32> = (0..m).map(|k| value(k + 2)).collect();
        let expected = reference(&w, m, N, &x, &bias);
        let mut panels = vec![f32::NAN; m * N];
        to_panels(&w, m, N, &mut panels);
        let bits = |y: &[f32]| y.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        for reverse in [false, true] {
            let mut y = vec![0.0; m];
            // SAFETY: the CPU has AVX2 and FMA (checked by the caller).
            unsafe { avx2::gemv_panels::<N>(&panels, m, &x, &bias, reverse, &mut y) };
            assert_eq!(bits(&y), expected, "AVX2, {m} x {N}, reverse {reverse}");
            if isa().avx512() {
                let mut y = vec![0.0; m];
                // SAFETY: the CPU has AVX-512 F, AVX2 and FMA.
                unsafe { avx512::gemv_panels::<N>(&panels, m, &x, &bias, reverse, &mut y) };
                assert_eq!(bits(&y), expected, "AVX-512, {m} x {N}, reverse {reverse}");
                if m.is_multiple_of(32) {
                    // Pairs of panels only, each pair's index handed to the hook in the
                    // order read.
                    let (mut y, mut seen) = (vec![f32::NAN; m], Vec::new());
                    // SAFETY: the CPU has AVX-512 F, AVX2 and FMA.
                    unsafe {
                        avx512::gemv_panel_pairs_with::<N>(&panels, m, &x, &bias, reverse, &mut y, |k| seen.push(k))
                    };
                    assert_eq!(bits(&y), expected, "AVX-512 pairs, {m} x {N}, reverse {reverse}");
                    assert_eq!(seen, (0..m / 32).collect::<Vec<_>>(), "AVX-512 pairs' hook, {m} x {N}");
                }
            }
        }
        // The rows with the input held in registers, four at a time, either order.
        for reverse in [false, true] {
            let mut y = vec![f32::NAN; m];
            // SAFETY: the CPU has AVX2 and FMA (checked by the caller).
            unsafe { avx2::gemv_held::<N>(&w, m, &x, &bias, reverse, &mut y) };
            assert_eq!(bits(&y), expected, "AVX2 held, {m} x {N}, reverse {reverse}");
        }
        // Both projections in one pass: the second over the same rows and the input
        // reversed.
        let x2: Vec<f32> = x.iter().rev().copied().collect();
        let expected2 = reference(&w, m, N, &x2, &bias);
        let (mut p, mut q) = (vec![f32::NAN; m], vec![f32::NAN; m]);
        // SAFETY: the CPU has AVX2 and FMA (checked by the caller).
        unsafe { avx2::gemv_panels_pair::<N, N>(&panels, &panels, m, &x, &x2, &bias, &bias, &mut p, &mut q) };
        assert_eq!((bits(&p), bits(&q)), (expected.clone(), expected2), "AVX2 pair, {m} x {N}");
        if m == 64 && (N == 8 || N == 16) {
            // An LSTM's 16 units: `i` with `g`, then `f` with `o`; the recurrent
            // projection reads 16 inputs.
            let x16: Vec<f32> = (0..16).map(|k| value(k + 7)).collect();
            let w_hh: Vec<f32> = (0..64 * 16).map(|k| value(k + 3)).collect();
            let mut panels_hh = vec![f32::NAN; 64 * 16];
            to_panels(&w_hh, 64, 16, &mut panels_hh);
            let expected_hh = reference(&w_hh, 64, 16, &x16, &bias);
            let (mut p, mut q) = (vec![f32::NAN; m], vec![f32::NAN; m]);
            // SAFETY: the CPU has AVX2 and FMA (checked by the caller).
            unsafe { avx2::lstm16_panels_pair::<N>(&panels, &panels_hh, &x, &x16, &bias, &bias, &mut p, &mut q) };
            assert_eq!((bits(&p), bits(&q)), (expected.clone(), expected_hh), "AVX2 LSTM 16 pairs, {N} inputs");
        }
        // Rows of chosen panels (a chunk of units of each gate): those rows get the
        // same bits, the others stay untouched (NaN).
        for r in (0..m).step_by(8) {
            let mut y = vec![f32::NAN; m];
            // SAFETY: the CPU has AVX2 and FMA (checked by the caller).
            unsafe { avx2::gemv_panel_rows::<N>(&panels, m, &x, &bias, r, &mut y) };
            for (k, v) in y.iter().enumerate() {
                match k >= r && k < r + 8 {
                    true => assert_eq!(v.to_bits(), expected[k], "AVX2 rows from {r}, {m} x {N}"),
                    false => assert!(v.is_nan(), "AVX2 rows from {r}, {m} x {N}: row {k} written"),
                }
            }
        }
        let full: Vec<usize> = (0..m / 16).map(|k| 16 * k).collect();
        if isa().avx512() && full.len() >= 3 {
            let mut y = vec![f32::NAN; m];
            let last = full[full.len() - 1];
            // SAFETY: the CPU has AVX-512 F, AVX2 and FMA.
            unsafe {
                avx512::gemv_panel_rows::<N, 1>(&panels, m, &x, &bias, [full[1]], &mut y);
                avx512::gemv_panel_rows::<N, 2>(&panels, m, &x, &bias, [last, full[0]], &mut y);
            }
            let chosen = |k: usize| [full[1], last, full[0]].iter().any(|&r| k >= r && k < r + 16);
            for (k, v) in y.iter().enumerate() {
                match chosen(k) {
                    true => assert_eq!(v.to_bits(), expected[k], "AVX-512 panels, row {k}, {m} x {N}"),
                    false => assert!(v.is_nan(), "AVX-512 panels, {m} x {N}: row {k} written"),
                }
            }
            if full.len() >= 4 {
                let mut y = vec![f32::NAN; m];
                let rows = [full[2], full[0], last];
                // SAFETY: the CPU has AVX-512 F, AVX2 and FMA.
                unsafe { avx512::gemv_panel_rows::<N, 3>(&panels, m, &x, &bias, rows, &mut y) };
                for r in rows {
                    assert_eq!(bits(&y[r..r + 16]), expected[r..r + 16], "AVX-512 three panels, {m} x {N}");
                }
            }
        }
    }

    /// The projections over weights in step order give the bits of the portable `dot`
    /// onto the bias, for panels of 16 and a last one of 8, pairs and lone panels (and
    /// pairs alone, `avx512::gemv_panel_pairs_with`), both projections in one pass, and
    /// for the rows of chosen panels alone.
    #[test]
    fn projections_in_step_order_give_the_portable_bits() {
        if !isa().avx2() {
            return;
        }
        let mut rng = Rng::new(8);
        for m in [8, 16, 24, 32, 48, 56, 64, 192, 256] {
            case::<8>(&mut rng, m);
            case::<16>(&mut rng, m);
            case::<24>(&mut rng, m);
            case::<64>(&mut rng, m);
        }
    }

    /// The written-out GRU cell of 8 and 16 units gives the bits of the cells' own step
    /// (the portable bits), over inputs from the saturated ends through `tanh`'s
    /// polynomial range to zero, NaN and infinities.
    #[test]
    fn written_out_gru_cell_gives_the_portable_bits() {
        if !isa().avx2() {
            return;
        }
        let mut rng = Rng::new(12);
        let special =
            [0.0, -0.0, 0.624_999_9, -0.625, 0.625, 1e-30, -87.5, 88.8, 100.0, -100.0, f32::NAN, f32::INFINITY];
        let mut value =
            |k: usize| if k.is_multiple_of(5) { special[k / 5 % special.len()] } else { rng.uniform_in(-12.0, 12.0) };
        let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        for round in 0..40 {
            let p: Vec<f32> = (0..48).map(|k| value(k + round)).collect();
            let q: Vec<f32> = (0..48).map(|k| value(k + 3 * round + 1)).collect();
            let h: Vec<f32> = (0..16).map(|k| value(k + 2).clamp(-1.0, 1.0)).collect();
            fn units<const H: usize>(p: &[f32], q: &[f32], h: &[f32]) -> [Vec<f32>; 2] {
                let (mut cells, mut written) = (h[..H].to_vec(), h[..H].to_vec());
                super::super::cells::cell_step(
                    CellKind::Gru,
                    &mut p[..3 * H].to_vec(),
                    &q[..3 * H],
                    &mut cells,
                    &mut [],
                );
                // SAFETY: the CPU has AVX2 and FMA (checked above).
                unsafe { avx2::gru_cell::<H>(p, q, &mut written) };
                [cells, written]
            }
            for [cells, written] in [units::<8>(&p, &q, &h), units::<16>(&p, &q, &h)] {
                assert_eq!(bits(&written), bits(&cells), "round {round}");
            }
        }
    }

    /// The AVX-512 LSTM step of 16 units (`avx512::lstm16_step_panels`) gives the
    /// projections of the portable `dot` onto the biases and the cells' own step over
    /// them (the portable bits), for 8 and 16 inputs, over values from the saturated
    /// ends through `tanh`'s polynomial range to zero, NaN and infinities (NaN compared
    /// as NaN, whatever its bits).
    #[test]
    fn lstm16_step_gives_the_portable_bits() {
        if !isa().avx512() {
            return;
        }
        fn units<const F: usize>(rng: &mut Rng, round: usize) {
            const H: usize = 16;
            let special = [0.0, -0.0, 0.624_999_9, -0.625, 0.625, 1e-30, -87.5, 88.8, 100.0, -100.0, f32::NAN];
            let mut value = |k: usize, scale: f32| {
                if (k + round).is_multiple_of(13) {
                    special[(k + round) / 13 % special.len()]
                } else {
                    scale * rng.uniform_in(-1.0, 1.0)
                }
            };
            let m = 4 * H;
            let ih: Vec<f32> = (0..m * F).map(|k| value(k, 2.0)).collect();
            let hh: Vec<f32> = (0..m * H).map(|k| value(k + 1, 2.0)).collect();
            let b_ih: Vec<f32> = (0..m).map(|k| value(k + 2, 3.0)).collect();
            let b_hh: Vec<f32> = (0..m).map(|k| value(k + 3, 3.0)).collect();
            let x: Vec<f32> = (0..F).map(|k| value(k + 4, 4.0)).collect();
            let h: Vec<f32> = (0..H).map(|k| value(k + 5, 1.0)).collect();
            let c: Vec<f32> = (0..H).map(|k| value(k + 6, 8.0)).collect();
            let bits =
                |v: &[f32]| v.iter().map(|v| if v.is_nan() { u32::MAX } else { v.to_bits() }).collect::<Vec<_>>();
            let mut p: Vec<f32> = reference(&ih, m, F, &x, &b_ih).into_iter().map(f32::from_bits).collect();
            let q: Vec<f32> = reference(&hh, m, H, &h, &b_hh).into_iter().map(f32::from_bits).collect();
            let expected_pq = (bits(&p), bits(&q));
            let (mut h_cell, mut c_cell) = (h.clone(), c.clone());
            super::super::cells::cell_step(CellKind::Lstm, &mut p, &q, &mut h_cell, &mut c_cell);
            let (mut ih_panels, mut hh_panels) = (vec![f32::NAN; m * F], vec![f32::NAN; m * H]);
            to_panels(&ih, m, F, &mut ih_panels);
            to_panels(&hh, m, H, &mut hh_panels);
            let (mut h_step, mut c_step) = (h.clone(), c.clone());
            let (mut p_step, mut q_step) = (vec![f32::NAN; m], vec![f32::NAN; m]);
            // SAFETY: the CPU has AVX-512 F, AVX2 and FMA (checked above).
            unsafe {
                avx512::lstm16_step_panels::<F>(
                    &ih_panels,
                    &hh_panels,
                    &b_ih,
                    &b_hh,
                    &x,
                    &mut h_step,
                    &mut c_step,
                    &mut p_step,
                    &mut q_step,
                )
            };
            assert_eq!((bits(&p_step), bits(&q_step)), expected_pq, "{F} inputs, round {round}: projections");
            assert_eq!((bits(&h_step), bits(&c_step)), (bits(&h_cell), bits(&c_cell)), "{F} inputs, round {round}");
        }
        let mut rng = Rng::new(14);
        for round in 0..40 {
            units::<8>(&mut rng, round);
            units::<16>(&mut rng, round);
        }
    }

    #[test]
    fn step_order_places_rows_in_panels() {
        // 24 rows of 2: a panel of 16, then one of 8.
        let w: Vec<f32> = (0..48).map(|v| v as f32).collect();
        let mut out = vec![0.0; 48];
        to_panels(&w, 24, 2, &mut out);
        // Row 3, input 1, in the first panel (width 16): at 1 * 16 + 3.
        assert_eq!(out[16 + 3], w[3 * 2 + 1]);
        // Row 17, input 0, in the last panel (width 8, from 32): at 32 + 0 * 8 + 1.
        assert_eq!(out[32 + 1], w[17 * 2]);
        assert_eq!(out[32 + 8 + 7], w[23 * 2 + 1]);
    }
}
