//! Recurrent kernels: simple RNN, LSTM and GRU cells, stacked and bidirectional, with
//! PyTorch's equations, gate order and parameter layout.
//!
//! Per layer `l` and direction `d`, with `p = W_ih x_t + b_ih` (input projection) and
//! `q = W_hh h_{t-1} + b_hh` (recurrent projection), both `[G * H]`:
//!
//! | cell | gates (`G`) | step |
//! |---|---|---|
//! | RNN | 1 | `h = act(p + q)`, `act` tanh or ReLU |
//! | LSTM | 4: `i, f, g, o` | `i, f, o = sigmoid(p + q)`, `g = tanh(p + q)`, `c = f c_prev + i g`, `h = o tanh(c)` |
//! | GRU | 3: `r, z, n` | `r, z = sigmoid(p + q)`, `n = tanh(p_n + r q_n)`, `h = (1 - z) n + z h_prev` |
//!
//! The GRU's reset gate multiplies the recurrent projection *after* the matmul
//! (`q_n = W_hn h + b_hn`), as PyTorch does.
//!
//! Parameters of `(l, d)`, in `state_dict` order: `weight_ih [G H, I_l]`,
//! `weight_hh [G H, H]`, `bias_ih [G H]`, `bias_hh [G H]`, where `I_0 = F` and
//! `I_l = D H` above the first layer (its input is the concatenation of both directions
//! of the layer below). Blocks are ordered `l0, l0_reverse, l1, l1_reverse, ...`.
//!
//! Three paths share the cell arithmetic ([`lstm_unit`], [`gru_unit`], [`rnn_unit`]):
//!
//! * [`forward`] (inference) computes every projection element as one fixed-order
//!   dot product ([`project`]), sample by sample and step by step, so its result does
//!   not depend on the batch size and [`step`] (streaming) reproduces it bit for bit;
//! * [`forward_train`] computes the input projections of all time steps and samples
//!   with one GEMM (`[B T, I] x [I, G H]`) and the recurrent projections with one GEMM
//!   per step (`[B, H] x [H, G H]`), keeping gates and states for [`backward`];
//! * [`backward`] is backpropagation through time, optionally truncated.
//!
//! Layouts: a batch is sample-major (`x` is `[B, T, F]`, the output `[B, T, O]` or
//! `[B, O]`); states (initial, final and their gradients) are `[B, L D, H]`, PyTorch's
//! `h_0 [L D, B, H]` with the batch outermost.
use super::gemm::{self, gemm, MatRef};
#[cfg(all(feature = "threading", target_arch = "x86_64"))]
use super::parallel::Output;

/// The recurrent cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellKind {
    /// Elman RNN with `tanh`.
    RnnTanh,
    /// Elman RNN with ReLU.
    RnnRelu,
    /// Long short-term memory.
    Lstm,
    /// Gated recurrent unit.
    Gru,
}

impl CellKind {
    /// Gates per hidden unit: 1, 4 or 3.
    pub const fn gates(self) -> usize {
        match self {
            CellKind::RnnTanh | CellKind::RnnRelu => 1,
            CellKind::Lstm => 4,
            CellKind::Gru => 3,
        }
    }
}

/// How the two directions of a bidirectional layer are combined into its output.
///
/// Between stacked layers the directions are always concatenated (PyTorch); the merge
/// mode applies to the output of the last layer only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Merge {
    /// `[forward, backward]`, width `2 H` (PyTorch's output).
    Concat,
    /// `forward + backward`, width `H`.
    Sum,
    /// `(forward + backward) / 2`, width `H`.
    Mean,
    /// `forward * backward`, width `H`.
    Multiply,
}

impl Merge {
    /// The merged width of two directions of `hidden` units.
    pub const fn width(self, hidden: usize) -> usize {
        match self {
            Merge::Concat => 2 * hidden,
            _ => hidden,
        }
    }
}

/// Parameters per sample of a stack: `G H (I + H + 2)` per layer and direction.
pub const fn params_len(gates: usize, features: usize, hidden: usize, layers: usize, directions: usize) -> usize {
    let gh = gates * hidden;
    let first = gh * (features + hidden + 2);
    let above = gh * (directions * hidden + hidden + 2);
    directions * (first + (layers - 1) * above)
}

/// Cache floats per sample: per layer its output sequence `[T, D H]`, and per layer and
/// direction the gate activations `[T, G H]`, the cell states (LSTM) or `q_n` (GRU)
/// `[T, H]`, and the initial `h` and `c`.
pub const fn cache_len(gates: usize, steps: usize, hidden: usize, layers: usize, directions: usize) -> usize {
    let l = Layout::per_sample(gates, steps, hidden, directions);
    layers * l.layer
}

/// Scratch floats per sample: the gradients of the gate inputs `[T, G H]` and of the
/// recurrent projections `[T, G H]`, two sequence buffers `[T, D H]`, the previous
/// hidden state of every step `[T, H]` and two state vectors `[H]`. Inference uses
/// less (two sequence buffers, two projections `[G H]` and two states).
pub const fn scratch_len(gates: usize, steps: usize, hidden: usize, directions: usize) -> usize {
    let gh = gates * hidden;
    2 * steps * gh + 2 * steps * directions * hidden + steps * hidden + 2 * hidden
}

/// The full description of a recurrent stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// The cell.
    pub cell: CellKind,
    /// Time steps `T`.
    pub steps: usize,
    /// Input features `F`.
    pub features: usize,
    /// Hidden units `H`.
    pub hidden: usize,
    /// Stacked layers `L`.
    pub layers: usize,
    /// Directions `D`: 1, or 2 for bidirectional.
    pub directions: usize,
    /// How the directions of the last layer are combined.
    pub merge: Merge,
    /// Output every step (`[T, O]`) or the final hidden states (`[O]`).
    pub return_sequences: bool,
    /// Backpropagate through at most this many steps (chunks of `truncate` steps, see
    /// [`backward`]); 0 for the whole sequence.
    pub truncate: usize,
}

/// The four parameter tensors of one layer and direction.
struct Weights<'a> {
    ih: &'a [f32],
    hh: &'a [f32],
    b_ih: &'a [f32],
    b_hh: &'a [f32],
}

impl Config {
    /// `G H`: the width of the gate vector.
    pub const fn gate_width(&self) -> usize {
        self.cell.gates() * self.hidden
    }

    /// The input width of layer `l`.
    pub const fn input_width(&self, layer: usize) -> usize {
        if layer == 0 {
            self.features
        } else {
            self.directions * self.hidden
        }
    }

    /// Parameters of one direction of layer `l`.
    pub const fn direction_params(&self, layer: usize) -> usize {
        self.gate_width() * (self.input_width(layer) + self.hidden + 2)
    }

    /// The offset of the parameters of layer `l`, direction `d`.
    pub const fn param_offset(&self, layer: usize, direction: usize) -> usize {
        let first = self.direction_params(0);
        if layer == 0 {
            direction * first
        } else {
            self.directions * first + ((layer - 1) * self.directions + direction) * self.direction_params(1)
        }
    }

    /// All parameters.
    pub const fn params(&self) -> usize {
        params_len(self.cell.gates(), self.features, self.hidden, self.layers, self.directions)
    }

    /// The width of one output step.
    pub const fn output_width(&self) -> usize {
        if self.directions == 1 {
            self.hidden
        } else {
            self.merge.width(self.hidden)
        }
    }

    /// Output floats per sample.
    pub const fn output_len(&self) -> usize {
        if self.return_sequences {
            self.steps * self.output_width()
        } else {
            self.output_width()
        }
    }

    /// State floats per sample (`h` or `c`): `L D H`.
    pub const fn state_len(&self) -> usize {
        self.layers * self.directions * self.hidden
    }

    /// Cache floats per sample.
    pub const fn cache_len(&self) -> usize {
        cache_len(self.cell.gates(), self.steps, self.hidden, self.layers, self.directions)
    }

    /// Scratch floats per sample.
    pub const fn scratch_len(&self) -> usize {
        scratch_len(self.cell.gates(), self.steps, self.hidden, self.directions)
    }

    fn weights<'a>(&self, params: &'a [f32], layer: usize, direction: usize) -> Weights<'a> {
        let (gh, i, h) = (self.gate_width(), self.input_width(layer), self.hidden);
        let p = &params[self.param_offset(layer, direction)..][..self.direction_params(layer)];
        let (ih, p) = p.split_at(gh * i);
        let (hh, p) = p.split_at(gh * h);
        let (b_ih, b_hh) = p.split_at(gh);
        Weights { ih, hh, b_ih, b_hh }
    }

    /// The time index of processing step `s` in direction `d`.
    #[inline]
    const fn time(&self, direction: usize, s: usize) -> usize {
        if direction == 0 {
            s
        } else {
            self.steps - 1 - s
        }
    }
}

/// Region sizes of the cache, per sample.
#[derive(Clone, Copy)]
struct Layout {
    /// One layer's output sequence `[T, D H]`.
    out: usize,
    /// Gate activations `[T, G H]`.
    gates: usize,
    /// Cell states (LSTM) or `q_n` (GRU) `[T, H]`; empty for RNN.
    extra: usize,
    /// Initial `h` and `c`: `[2 H]`.
    init: usize,
    /// One direction: `gates + extra + init`.
    dir: usize,
    /// One layer: `out + D dir`.
    layer: usize,
}

impl Layout {
    const fn per_sample(gates: usize, steps: usize, hidden: usize, directions: usize) -> Self {
        let out = steps * directions * hidden;
        let g = steps * gates * hidden;
        let extra = if gates > 1 { steps * hidden } else { 0 };
        let init = 2 * hidden;
        let dir = g + extra + init;
        Layout { out, gates: g, extra, init, dir, layer: out + directions * dir }
    }

    /// The layout of `cfg`.
    ///
    /// # Panics
    /// If a region of one sample has more floats than a `usize` counts.
    fn of(cfg: &Config) -> Self {
        // `layer` is the largest region and every other is a part of it: computed with
        // checks, it bounds the unchecked products of `per_sample`.
        let (gates, steps, hidden, directions) = (cfg.cell.gates(), cfg.steps, cfg.hidden, cfg.directions);
        let layer = (|| {
            let out = steps.checked_mul(directions)?.checked_mul(hidden)?;
            let dir = steps.checked_mul(gates + 1)?.checked_add(2)?.checked_mul(hidden)?;
            out.checked_add(directions.checked_mul(dir)?)
        })();
        assert!(layer.is_some(), "recurrent {cfg:?}: a sample's cache has more floats than a usize counts");
        Self::per_sample(gates, steps, hidden, directions)
    }

    /// Every region of a batch of `b` samples (the cache holds `b` times each).
    ///
    /// # Panics
    /// If a region has more floats than a `usize` counts.
    fn times(self, b: usize) -> Self {
        // `layer` is at least every other region (`directions >= 1`).
        assert!(
            b.checked_mul(self.layer).is_some() && b.checked_mul(self.out).is_some(),
            "recurrent: a batch of {b} has more floats than a usize counts"
        );
        Layout {
            out: b * self.out,
            gates: b * self.gates,
            extra: b * self.extra,
            init: b * self.init,
            dir: b * self.dir,
            layer: b * self.layer,
        }
    }
}

/// Initial states: `h` (and `c`, LSTM only), each `[B, L D, H]`.
#[derive(Clone, Copy, Debug)]
pub struct States<'a> {
    /// Hidden states.
    pub h: &'a [f32],
    /// Cell states (LSTM; ignored by other cells, may be empty).
    pub c: &'a [f32],
}

/// Final states or gradients of initial states: `h` (and `c`, LSTM only), each
/// `[B, L D, H]`.
#[derive(Debug)]
pub struct StatesMut<'a> {
    /// Hidden states.
    pub h: &'a mut [f32],
    /// Cell states (LSTM; untouched for other cells, may be empty).
    pub c: &'a mut [f32],
}

// ---------------------------------------------------------------------------------------
// Elementary functions of the cells.
//
// Branch-free polynomial forms (Cephes' `expf` and `tanhf`), so that the loops over the
// hidden units vectorise: the cells evaluate five of them per unit and step, which with
// `libm`'s scalar calls took more time than the matrix products. Accuracy against
// `f64` over the whole range (`tests/rnn_layers.rs`): `exp` within 1 ulp, `sigmoid`
// within 2.5 and `tanh` within 1.5 ulp of the result, far below the 1e-5 tolerance of
// the PyTorch golden tests.

/// `f` applied to each of `N` lanes: written as a loop over an array, every step of a
/// function below is one vector operation over all lanes, so that `N` lanes (several
/// vectors) advance side by side through each dependent chain.
#[inline(always)]
fn each<const N: usize>(f: impl Fn(usize) -> f32) -> [f32; N] {
    let mut out = [0.0; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = f(i);
    }
    out
}

/// `e^x`, clamped to the finite `f32` range (`exp(-inf) = 0` would need a branch; below
/// -87.3 the result is the smallest normal instead). Cody-Waite reduction
/// `x = n ln 2 + r`, `|r| <= ln 2 / 2`, a degree-7 polynomial in `r`, and `2^n` built
/// in the exponent bits.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    exp_lanes([x])[0]
}

/// [`exp`] of `N` lanes, each exactly as [`exp`].
#[inline(always)]
fn exp_lanes<const N: usize>(x: [f32; N]) -> [f32; N] {
    const LOG2E: f32 = core::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding and subtracting 1.5 * 2^23 rounds to the nearest integer (no `round` in core).
    const ROUND: f32 = 12_582_912.0;
    let x = each::<N>(|i| x[i].clamp(-87.336_55, 88.722_83));
    let rounded = each::<N>(|i| x[i] * LOG2E + ROUND);
    let r = each::<N>(|i| {
        let n = rounded[i] - ROUND;
        x[i] - n * LN2_HI - n * LN2_LO
    });
    let mut p = [1.987_569_1e-4; N];
    for c in [1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 0.5] {
        p = each::<N>(|i| p[i] * r[i] + c);
    }
    // n is in [-126, 128], also held in the low mantissa bits of `rounded` (read there:
    // a float-to-int conversion would keep the loop from vectorising). 2^n is built as
    // 2^(n/2) 2^(n - n/2), so that n = 128 stays finite in the exponent bits.
    each::<N>(|i| {
        let e = p[i] * r[i] * r[i] + r[i] + 1.0;
        let n = rounded[i].to_bits() as i32 - ROUND.to_bits() as i32;
        let half = n >> 1;
        let scale_a = f32::from_bits(((half + 127) as u32) << 23);
        let scale_b = f32::from_bits(((n - half + 127) as u32) << 23);
        e * scale_a * scale_b
    })
}

/// The logistic function `1 / (1 + e^-x)`.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    sigmoid_lanes([x])[0]
}

/// [`sigmoid`] of `N` lanes.
#[inline(always)]
fn sigmoid_lanes<const N: usize>(x: [f32; N]) -> [f32; N] {
    let e = exp_lanes(each::<N>(|i| -x[i]));
    each::<N>(|i| 1.0 / (1.0 + e[i]))
}

/// `tanh(x)`: an odd polynomial for `|x| < 0.625`, `1 - 2 / (e^(2|x|) + 1)` above, with
/// the sign of `x`.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    tanh_lanes([x])[0]
}

/// [`tanh`] of `N` lanes.
#[inline(always)]
fn tanh_lanes<const N: usize>(x: [f32; N]) -> [f32; N] {
    let z = each::<N>(|i| x[i] * x[i]);
    let mut p = [-5.704_988_7e-3; N];
    for c in [2.063_909e-2, -5.373_971_6e-2, 1.333_144_2e-1, -3.333_328e-1] {
        p = each::<N>(|i| p[i] * z[i] + c);
    }
    let e = exp_lanes(each::<N>(|i| 2.0 * x[i].abs()));
    each::<N>(|i| {
        let small = p[i] * z[i] * x[i] + x[i];
        let large = (1.0 - 2.0 / (e[i] + 1.0)).copysign(x[i]);
        if x[i].abs() < 0.625 {
            small
        } else {
            large
        }
    })
}

// ---------------------------------------------------------------------------------------
// Cell arithmetic, shared by every path.

/// One LSTM unit: from the projections of gates `i, f, g, o` and `c_prev`, returns
/// `(i, f, g, o, c, h)` (activations, new cell state, new hidden state).
#[inline(always)]
pub fn lstm_unit(p: [f32; 4], q: [f32; 4], c_prev: f32) -> [f32; 6] {
    let [i, f, g, o, c, h] = lstm_lanes(p.map(|v| [v]), q.map(|v| [v]), [c_prev]);
    [i[0], f[0], g[0], o[0], c[0], h[0]]
}

/// [`lstm_unit`] of `N` units: gate projections `p[gate][unit]`, `q[gate][unit]`.
#[inline(always)]
fn lstm_lanes<const N: usize>(p: [[f32; N]; 4], q: [[f32; N]; 4], c_prev: [f32; N]) -> [[f32; N]; 6] {
    let gate = |g: usize| each::<N>(|j| p[g][j] + q[g][j]);
    let i = sigmoid_lanes(gate(0));
    let f = sigmoid_lanes(gate(1));
    let g = tanh_lanes(gate(2));
    let o = sigmoid_lanes(gate(3));
    let c = each::<N>(|j| f[j] * c_prev[j] + i[j] * g[j]);
    let t = tanh_lanes(c);
    let h = each::<N>(|j| o[j] * t[j]);
    [i, f, g, o, c, h]
}

/// One GRU unit: from the projections of gates `r, z, n` and `h_prev`, returns
/// `(r, z, n, h)`.
#[inline(always)]
pub fn gru_unit(p: [f32; 3], q: [f32; 3], h_prev: f32) -> [f32; 4] {
    let [r, z, n, h] = gru_lanes(p.map(|v| [v]), q.map(|v| [v]), [h_prev]);
    [r[0], z[0], n[0], h[0]]
}

/// [`gru_unit`] of `N` units: gate projections `p[gate][unit]`, `q[gate][unit]`.
#[inline(always)]
fn gru_lanes<const N: usize>(p: [[f32; N]; 3], q: [[f32; N]; 3], h_prev: [f32; N]) -> [[f32; N]; 4] {
    let r = sigmoid_lanes(each::<N>(|j| p[0][j] + q[0][j]));
    let z = sigmoid_lanes(each::<N>(|j| p[1][j] + q[1][j]));
    let n = tanh_lanes(each::<N>(|j| p[2][j] + r[j] * q[2][j]));
    let h = each::<N>(|j| (1.0 - z[j]) * n[j] + z[j] * h_prev[j]);
    [r, z, n, h]
}

/// One RNN unit: `act(p + q)`.
#[inline(always)]
pub fn rnn_unit(relu: bool, p: f32, q: f32) -> f32 {
    let a = p + q;
    if relu {
        if a > 0.0 {
            a
        } else {
            0.0
        }
    } else {
        tanh(a)
    }
}

/// `out[o] = dot(weight[o, :], x) (+ bias[o])` for a row-major `weight [out.len(), x.len()]`,
/// as one matrix-vector product whose rows are rounded as [`gemm::dot`] rounds them.
///
/// Every element is one fixed-order dot product, so the result does not
/// depend on which other rows or samples are computed: the inference and streaming
/// paths both use it and agree bit for bit.
#[inline]
pub fn project(weight: &[f32], bias: Option<&[f32]>, x: &[f32], out: &mut [f32]) {
    // One matrix-vector product (rows sharing every load of `x`); each row's sum is
    // rounded as `dot` rounds it, and `b + dot` is `dot + b`.
    let rows = out.len();
    let beta = match bias {
        Some(bias) => {
            out.copy_from_slice(&bias[..rows]);
            1.0
        }
        None => 0.0,
    };
    gemm::gemv(1.0, MatRef::new(&weight[..rows * x.len()], rows, x.len()), x, beta, out);
}

/// [`project`] with a bias, for `N` inputs known at compile time: with AVX2 and `N` a
/// multiple of 8, by the fixed-width kernel (rows at constant offsets, in `reverse`
/// order if asked), the same bits.
#[inline]
fn project_fixed<const N: usize>(weight: &[f32], bias: &[f32], x: &[f32], out: &mut [f32], reverse: bool) {
    #[cfg(target_arch = "x86_64")]
    if N.is_multiple_of(8) && x.len() == N && super::avx2::available() {
        // SAFETY: the CPU has AVX2 and FMA; the kernel asserts its bounds.
        return unsafe { super::avx2::gemv_fixed::<N>(weight, out.len(), x, Some(bias), false, reverse, out) };
    }
    let _ = reverse;
    project(weight, Some(bias), x, out);
}

/// One step of one cell, in place: `p` and `q` (`[G H]`) are the projections (`p` is
/// overwritten), `h` and `c` (`[H]`; `c` only for LSTM) hold the previous state on
/// entry and the new one on exit.
///
/// Every unit is computed by the same operations whatever the vector width (no fused
/// multiply-add, no reductions), so the AVX2 copy of the loop agrees bit for bit with
/// the portable one and with the training path.
#[inline]
pub fn cell_step(cell: CellKind, p: &mut [f32], q: &[f32], h: &mut [f32], c: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if super::avx2::available() {
        // SAFETY: the CPU has AVX2.
        return unsafe { cell_step_avx2(cell, p, q, h, c) };
    }
    cell_step_portable(cell, p, q, h, c)
}

/// [`cell_step`] compiled for eight lanes, [`WIDE_LANES`] units at a time first.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn cell_step_avx2(cell: CellKind, p: &mut [f32], q: &[f32], h: &mut [f32], c: &mut [f32]) {
    cell_step_lanes::<true>(cell, p, q, h, c)
}

/// [`cell_step`] for the baseline instruction set: unit by unit, the smallest code (the
/// path of `no_std` firmware without AVX2).
#[inline(always)]
fn cell_step_portable(cell: CellKind, p: &mut [f32], q: &[f32], h: &mut [f32], c: &mut [f32]) {
    cell_step_lanes::<false>(cell, p, q, h, c)
}

/// [`cell_step`], with `WIDE` first [`WIDE_LANES`] then 8 units at a time, then unit by
/// unit. Every unit gets the same operations either way.
#[inline(always)]
fn cell_step_lanes<const WIDE: bool>(cell: CellKind, p: &mut [f32], q: &[f32], h: &mut [f32], c: &mut [f32]) {
    let hd = h.len();
    match cell {
        CellKind::RnnTanh | CellKind::RnnRelu => {
            let relu = cell == CellKind::RnnRelu;
            for ((h, &p), &q) in h.iter_mut().zip(&p[..hd]).zip(&q[..hd]) {
                *h = rnn_unit(relu, p, q);
            }
        }
        CellKind::Lstm => {
            let (p, q, c) = (blocks::<4>(p, hd), blocks::<4>(q, hd), &mut c[..hd]);
            let mut j = 0;
            if WIDE {
                j = lstm_chunks::<WIDE_LANES>(p, q, c, h, j);
                j = lstm_chunks::<8>(p, q, c, h, j);
            }
            for j in j..hd {
                let u = lstm_unit(p.map(|g| g[j]), q.map(|g| g[j]), c[j]);
                c[j] = u[4];
                h[j] = u[5];
            }
        }
        CellKind::Gru => {
            let (p, q) = (blocks::<3>(p, hd), blocks::<3>(q, hd));
            let mut j = 0;
            if WIDE {
                j = gru_chunks::<WIDE_LANES>(p, q, h, j);
                j = gru_chunks::<8>(p, q, h, j);
            }
            for j in j..hd {
                h[j] = gru_unit(p.map(|g| g[j]), q.map(|g| g[j]), h[j])[3];
            }
        }
    }
}

/// Units a cell step evaluates at once where it can: eight AVX2 vectors' worth. Each
/// function is a chain of some sixty dependent operations; eight independent chains
/// side by side keep the vector units busy where one would leave them waiting (a
/// 64-unit GRU step: 0.22 µs against 0.31 µs eight units at a time).
const WIDE_LANES: usize = 64;

/// LSTM units from `j` on, `L` at a time while `L` remain; returns the first unit left.
#[inline(always)]
fn lstm_chunks<const L: usize>(p: [&[f32]; 4], q: [&[f32]; 4], c: &mut [f32], h: &mut [f32], mut j: usize) -> usize {
    while j + L <= c.len() {
        let [.., c_new, h_new] = lstm_lanes(lanes::<4, L>(p, j), lanes::<4, L>(q, j), lanes::<1, L>([&*c], j)[0]);
        c[j..j + L].copy_from_slice(&c_new);
        h[j..j + L].copy_from_slice(&h_new);
        j += L;
    }
    j
}

/// GRU units from `j` on, `L` at a time while `L` remain; returns the first unit left.
#[inline(always)]
fn gru_chunks<const L: usize>(p: [&[f32]; 3], q: [&[f32]; 3], h: &mut [f32], mut j: usize) -> usize {
    while j + L <= h.len() {
        let [.., h_new] = gru_lanes(lanes::<3, L>(p, j), lanes::<3, L>(q, j), lanes::<1, L>([&*h], j)[0]);
        h[j..j + L].copy_from_slice(&h_new);
        j += L;
    }
    j
}

/// Units `j..j + L` of each of `G` gate blocks.
#[inline(always)]
fn lanes<const G: usize, const L: usize>(blocks: [&[f32]; G], j: usize) -> [[f32; L]; G] {
    blocks.map(|b| b[j..j + L].try_into().unwrap_or([0.0; L]))
}

/// The first `N` blocks of `width` floats of `v` (the gates of a gate vector), each
/// exactly `width` long so that loops over them need no bounds checks.
#[inline(always)]
fn blocks<const N: usize>(v: &[f32], width: usize) -> [&[f32]; N] {
    core::array::from_fn(|k| &v[k * width..][..width])
}

/// [`blocks`], mutable.
#[inline(always)]
fn blocks_mut<const N: usize>(v: &mut [f32], width: usize) -> [&mut [f32]; N] {
    let mut rest = &mut v[..N * width];
    core::array::from_fn(|_| {
        let (block, tail) = core::mem::take(&mut rest).split_at_mut(width);
        rest = tail;
        block
    })
}

/// One streaming step of a unidirectional stack: `x [F]` in, the new top hidden
/// state out (`h[L - 1]`). `h` and `c` are `[L, H]` (`c` LSTM only); `p` and `q` hold
/// `G H` floats each. The same operations, in the same order, as [`forward`]. `F` and
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

/// Merges the two directions' hidden states `hf`, `hb` into `out`.
#[inline]
fn merge_into(merge: Merge, hf: &[f32], hb: &[f32], out: &mut [f32]) {
    let n = hf.len();
    match merge {
        Merge::Concat => {
            out[..n].copy_from_slice(hf);
            out[n..2 * n].copy_from_slice(hb);
        }
        Merge::Sum => out.iter_mut().zip(hf.iter().zip(hb)).for_each(|(o, (a, b))| *o = a + b),
        Merge::Mean => out.iter_mut().zip(hf.iter().zip(hb)).for_each(|(o, (a, b))| *o = (a + b) * 0.5),
        Merge::Multiply => out.iter_mut().zip(hf.iter().zip(hb)).for_each(|(o, (a, b))| *o = a * b),
    }
}

/// Backward of [`merge_into`]: from `dy` (the merged width), writes the gradients of
/// both directions into `d [2 H]`.
#[inline]
fn merge_backward(merge: Merge, dy: &[f32], hf: &[f32], hb: &[f32], d: &mut [f32]) {
    let n = hf.len();
    let (df, db) = d[..2 * n].split_at_mut(n);
    match merge {
        Merge::Concat => {
            df.copy_from_slice(&dy[..n]);
            db.copy_from_slice(&dy[n..2 * n]);
        }
        Merge::Sum => {
            df.copy_from_slice(&dy[..n]);
            db.copy_from_slice(&dy[..n]);
        }
        Merge::Mean => {
            df.iter_mut().zip(&dy[..n]).for_each(|(d, &g)| *d = 0.5 * g);
            db.iter_mut().zip(&dy[..n]).for_each(|(d, &g)| *d = 0.5 * g);
        }
        Merge::Multiply => {
            for j in 0..n {
                df[j] = dy[j] * hb[j];
                db[j] = dy[j] * hf[j];
            }
        }
    }
}

/// Writes the output of one sample from the last layer's sequence `seq [T, D H]`.
fn write_output(cfg: &Config, seq: &[f32], y: &mut [f32]) {
    let (t, hd, dh, ow) = (cfg.steps, cfg.hidden, cfg.directions * cfg.hidden, cfg.output_width());
    if cfg.return_sequences {
        for (row, out) in seq.chunks_exact(dh).zip(y.chunks_exact_mut(ow)).take(t) {
            if cfg.directions == 1 {
                out.copy_from_slice(row);
            } else {
                merge_into(cfg.merge, &row[..hd], &row[hd..], out);
            }
        }
    } else if cfg.directions == 1 {
        y[..hd].copy_from_slice(&seq[(t - 1) * dh..][..hd]);
    } else {
        // The final states: forward after the last step, backward after the first.
        merge_into(cfg.merge, &seq[(t - 1) * dh..][..hd], &seq[hd..2 * hd], &mut y[..ow]);
    }
}

/// Checks slice lengths against the configuration; returns the batch size.
fn batch_of(cfg: &Config, x: &[f32], y: &[f32]) -> usize {
    assert!(
        cfg.steps > 0 && cfg.hidden > 0 && cfg.layers > 0 && (cfg.directions == 1 || cfg.directions == 2),
        "recurrent: empty configuration"
    );
    let Some(per) = cfg.steps.checked_mul(cfg.features).filter(|&per| per > 0) else {
        panic!("recurrent {cfg:?}: a sample is empty or has more floats than a usize counts");
    };
    let batch = x.len() / per;
    // Checked first: every per-sample product (and so `output_len`) fits.
    let _ = Layout::of(cfg).times(batch);
    let out = batch.checked_mul(cfg.output_len());
    assert!(out.is_some_and(|len| y.len() >= len), "recurrent: output slice too short");
    batch
}

// ---------------------------------------------------------------------------------------
// Inference

/// Inference over a batch `x [B, T, F]`, writing `y`. `initial` (optional) gives
/// `h_0` / `c_0` (zeros otherwise); `final_state` (optional) receives `h_n` / `c_n`.
/// `scratch` holds at least [`Config::scratch_len`] floats (one sample's worth).
///
/// Sample by sample, layer by layer, step by step, with [`project`] and [`cell_step`]:
/// the same operations as [`step`].
pub fn forward(
    cfg: &Config,
    params: &[f32],
    x: &[f32],
    initial: Option<States<'_>>,
    y: &mut [f32],
    mut final_state: Option<StatesMut<'_>>,
    scratch: &mut [f32],
) {
    let batch = batch_of(cfg, x, y);
    let (t, f, hd, gh) = (cfg.steps, cfg.features, cfg.hidden, cfg.gate_width());
    let (nl, nd) = (cfg.layers, cfg.directions);
    let dh = nd * hd;
    let (seq_a, rest) = scratch.split_at_mut(t * dh);
    let (seq_b, rest) = rest.split_at_mut(t * dh);
    let (p, rest) = rest.split_at_mut(gh);
    let (q, rest) = rest.split_at_mut(gh);
    let (h, rest) = rest.split_at_mut(hd);
    let c = &mut rest[..hd];
    let lstm = cfg.cell == CellKind::Lstm;
    let ol = cfg.output_len();
    for b in 0..batch {
        let xs = &x[b * t * f..(b + 1) * t * f];
        for l in 0..nl {
            let (cur, prev): (&mut [f32], &[f32]) =
                if l % 2 == 0 { (&mut *seq_a, &*seq_b) } else { (&mut *seq_b, &*seq_a) };
            let input: &[f32] = if l == 0 { xs } else { prev };
            let iw = cfg.input_width(l);
            for d in 0..nd {
                let w = cfg.weights(params, l, d);
                let si = (b * nl * nd + l * nd + d) * hd;
                match initial {
                    Some(s) => {
                        h.copy_from_slice(&s.h[si..si + hd]);
                        if lstm {
                            c.copy_from_slice(&s.c[si..si + hd]);
                        }
                    }
                    None => {
                        h.fill(0.0);
                        c.fill(0.0);
                    }
                }
                for s in 0..t {
                    let ti = cfg.time(d, s);
                    project(w.ih, Some(w.b_ih), &input[ti * iw..(ti + 1) * iw], p);
                    project(w.hh, Some(w.b_hh), h, q);
                    cell_step(cfg.cell, p, q, h, c);
                    cur[ti * dh + d * hd..][..hd].copy_from_slice(h);
                }
                if let Some(fs) = final_state.as_mut() {
                    fs.h[si..si + hd].copy_from_slice(h);
                    if lstm {
                        fs.c[si..si + hd].copy_from_slice(c);
                    }
                }
            }
        }
        let last: &[f32] = if (nl - 1) % 2 == 0 { seq_a } else { seq_b };
        write_output(cfg, last, &mut y[b * ol..(b + 1) * ol]);
    }
}

// ---------------------------------------------------------------------------------------
// Training

/// Adds `bias` to every row of `m` (rows of `bias.len()`).
#[inline]
fn add_bias_rows(m: &mut [f32], bias: &[f32]) {
    for row in m.chunks_exact_mut(bias.len()) {
        row.iter_mut().zip(bias).for_each(|(v, b)| *v += b);
    }
}

/// Adds the column sums of `m` (rows of `acc.len()`, row stride `stride`, `rows` rows)
/// into `acc`.
#[inline]
fn add_column_sums(acc: &mut [f32], m: &[f32], rows: usize, stride: usize) {
    let n = acc.len();
    for r in 0..rows {
        acc.iter_mut().zip(&m[r * stride..r * stride + n]).for_each(|(a, v)| *a += v);
    }
}

/// A `[rows, cols]` view of `data` with row stride `rs`.
#[inline]
fn strided(data: &[f32], rows: usize, cols: usize, rs: usize) -> MatRef<'_> {
    MatRef { data, rows, cols, rs, cs: 1 }
}

/// The time loop of one layer and direction of [`forward_train`], for `batch`
/// samples: `out`, `gates`, `extra`, `init` and `q` start at the first of them.
#[allow(clippy::too_many_arguments)]
fn forward_steps(
    cfg: &Config,
    w: &Weights<'_>,
    d: usize,
    batch: usize,
    out: &mut [f32],
    gates: &mut [f32],
    extra: &mut [f32],
    init: &[f32],
    q: &mut [f32],
    hp: &mut [f32],
    cp: &mut [f32],
) {
    let (t, hd, gh) = (cfg.steps, cfg.hidden, cfg.gate_width());
    let dh = cfg.directions * hd;
    let one = Layout::of(cfg);
    let lstm = cfg.cell == CellKind::Lstm;
    for s in 0..t {
        let ti = cfg.time(d, s);
        let tp = if s == 0 { 0 } else { cfg.time(d, s - 1) };
        // Q = H_prev W_hh^T + b_hh: [B, G H].
        let h_prev = if s == 0 {
            strided(init, batch, hd, one.init)
        } else {
            strided(&out[tp * dh + d * hd..], batch, hd, t * dh)
        };
        gemm(1.0, h_prev, MatRef::new(w.hh, gh, hd).t(), 0.0, q, gh);
        add_bias_rows(q, w.b_hh);
        for b in 0..batch {
            if s == 0 {
                hp.copy_from_slice(&init[b * one.init..][..hd]);
                cp.copy_from_slice(&init[b * one.init + hd..][..hd]);
            } else {
                hp.copy_from_slice(&out[b * one.out + tp * dh + d * hd..][..hd]);
                if lstm {
                    cp.copy_from_slice(&extra[(b * t + tp) * hd..][..hd]);
                }
            }
            let g = &mut gates[(b * t + ti) * gh..][..gh];
            let qb = &q[b * gh..(b + 1) * gh];
            let h = &mut out[b * one.out + ti * dh + d * hd..][..hd];
            let e: &mut [f32] =
                if lstm || cfg.cell == CellKind::Gru { &mut extra[(b * t + ti) * hd..][..hd] } else { &mut [] };
            train_cell(cfg.cell, g, qb, hp, cp, h, e);
        }
    }
}

/// The parts (threads) the time loops of a batch are split into: every part takes at
/// least two samples (a one-row product would be a matrix-vector product, rounded
/// differently), the work (`per_sample` multiply-adds of the recurrent products) must
/// be worth it, and the scratch space must hold `room` pairs of state buffers.
fn step_parts(batch: usize, per_sample: usize, room: usize) -> usize {
    #[cfg(all(feature = "threading", target_arch = "x86_64"))]
    {
        #[cfg(test)]
        if tests::ONE_THREAD.load(core::sync::atomic::Ordering::Relaxed) {
            return 1;
        }
        let mut parts = super::gemm::threads().min(room);
        if parts < 2 || batch * per_sample < PARALLEL_MIN_MACS || !super::avx2::available() {
            return 1;
        }
        while parts > 1 && (batch < 2 * parts || batch.saturating_sub((parts - 1) * batch.div_ceil(parts)) < 2) {
            parts -= 1;
        }
        parts
    }
    #[cfg(not(all(feature = "threading", target_arch = "x86_64")))]
    {
        let _ = (batch, per_sample, room);
        1
    }
}

/// Batches whose recurrent products have at least this many multiply-adds run their
/// time loops on several threads (the `threading` feature), by blocks of samples;
/// every value is computed by the same operations as on one thread.
pub const PARALLEL_MIN_MACS: usize = 1 << 21;

/// Training forward over a batch `x [B, T, F]`: writes `y` and keeps in `cache`
/// (`B * cache_len` floats) what [`backward`] needs. `initial` and `final_state` as in
/// [`forward`]; `scratch` holds `B * scratch_len` floats.
#[allow(clippy::too_many_arguments)]
pub fn forward_train(
    cfg: &Config,
    params: &[f32],
    x: &[f32],
    initial: Option<States<'_>>,
    y: &mut [f32],
    cache: &mut [f32],
    scratch: &mut [f32],
    final_state: Option<StatesMut<'_>>,
) {
    let batch = batch_of(cfg, x, y);
    let (t, hd, gh) = (cfg.steps, cfg.hidden, cfg.gate_width());
    let (nl, nd) = (cfg.layers, cfg.directions);
    let dh = nd * hd;
    let one = Layout::of(cfg);
    let lay = one.times(batch);
    let lstm = cfg.cell == CellKind::Lstm;
    let (q, states) = scratch.split_at_mut(batch * gh);
    let parts = step_parts(batch, t * gh * hd, states.len() / (2 * hd));

    for l in 0..nl {
        let (below, here) = cache.split_at_mut(l * lay.layer);
        let input: &[f32] = if l == 0 { x } else { &below[(l - 1) * lay.layer..][..lay.out] };
        let iw = cfg.input_width(l);
        let (out, dirs) = here[..lay.layer].split_at_mut(lay.out);
        for d in 0..nd {
            let w = cfg.weights(params, l, d);
            let (gates, rest) = dirs[d * lay.dir..(d + 1) * lay.dir].split_at_mut(lay.gates);
            let (extra, init) = rest.split_at_mut(lay.extra);
            for b in 0..batch {
                let si = (b * nl * nd + l * nd + d) * hd;
                let (h0, c0) = init[b * one.init..(b + 1) * one.init].split_at_mut(hd);
                match initial {
                    Some(s) => {
                        h0.copy_from_slice(&s.h[si..si + hd]);
                        if lstm {
                            c0.copy_from_slice(&s.c[si..si + hd]);
                        } else {
                            c0.fill(0.0);
                        }
                    }
                    None => {
                        h0.fill(0.0);
                        c0.fill(0.0);
                    }
                }
            }
            // P = X W_ih^T + b_ih for every sample and step at once: [B T, G H].
            gemm(1.0, MatRef::new(input, batch * t, iw), MatRef::new(w.ih, gh, iw).t(), 0.0, gates, gh);
            add_bias_rows(gates, w.b_ih);
            let init: &[f32] = init;
            if parts < 2 {
                let (hp, cp) = states[..2 * hd].split_at_mut(hd);
                forward_steps(cfg, &w, d, batch, out, gates, extra, init, q, hp, cp);
                continue;
            }
            #[cfg(all(feature = "threading", target_arch = "x86_64"))]
            {
                // Samples are independent through time: each part runs every step for a
                // block of them (its rows of every product, its own `h`, `c` buffers).
                let step = batch.div_ceil(parts);
                let ptr = |v: &mut [f32]| Output(v.as_mut_ptr());
                let (out_at, gates_at, extra_at) = (ptr(out), ptr(gates), ptr(extra));
                let (q_at, states_at) = (ptr(q), ptr(states));
                let (gate_rows, extra_rows) = (t * gh, if extra.is_empty() { 0 } else { t * hd });
                let run = |part: usize| {
                    let (b0, b1) = (part * step, ((part + 1) * step).min(batch));
                    let n = b1 - b0;
                    // SAFETY: the parts write the disjoint blocks of samples `b0..b1` of
                    // `out`, `gates`, `extra` and `q`, and their own `2 H` floats of
                    // `states` (`parts * 2 H <= states.len()`). Every block lies in its
                    // slice: each holds `batch` samples (sliced to `Layout::times(batch)`,
                    // whose products are checked) and `b1 <= batch`.
                    unsafe {
                        let slice =
                            |at: Output, from: usize, len: usize| core::slice::from_raw_parts_mut(at.at(from), len);
                        let (hp, cp) = slice(states_at, part * 2 * hd, 2 * hd).split_at_mut(hd);
                        forward_steps(
                            cfg,
                            &w,
                            d,
                            n,
                            slice(out_at, b0 * one.out, n * one.out),
                            slice(gates_at, b0 * gate_rows, n * gate_rows),
                            slice(extra_at, b0 * extra_rows, n * extra_rows),
                            &init[b0 * one.init..b1 * one.init],
                            slice(q_at, b0 * gh, n * gh),
                            hp,
                            cp,
                        );
                    }
                };
                super::parallel::for_each_part(parts, &run);
            }
        }
    }

    let last = &cache[(nl - 1) * lay.layer..][..lay.out];
    let ol = cfg.output_len();
    for b in 0..batch {
        write_output(cfg, &last[b * one.out..(b + 1) * one.out], &mut y[b * ol..(b + 1) * ol]);
    }
    if let Some(fs) = final_state {
        for l in 0..nl {
            let layer = &cache[l * lay.layer..(l + 1) * lay.layer];
            for d in 0..nd {
                let tl = cfg.time(d, t - 1);
                let extra = &layer[lay.out + d * lay.dir + lay.gates..][..lay.extra];
                for b in 0..batch {
                    let si = (b * nl * nd + l * nd + d) * hd;
                    fs.h[si..si + hd].copy_from_slice(&layer[b * one.out + tl * dh + d * hd..][..hd]);
                    if lstm {
                        fs.c[si..si + hd].copy_from_slice(&extra[(b * t + tl) * hd..][..hd]);
                    }
                }
            }
        }
    }
}

/// One training step of one sample: `g` holds the input projections `p` on entry and
/// the gate activations on exit; writes the new `h`, and into `e` the new cell state
/// (LSTM) or `q_n` (GRU).
#[inline]
fn train_cell(cell: CellKind, g: &mut [f32], q: &[f32], hp: &[f32], cp: &[f32], h: &mut [f32], e: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if super::avx2::available() {
        // SAFETY: the CPU has AVX2.
        return unsafe { train_cell_avx2(cell, g, q, hp, cp, h, e) };
    }
    train_cell_portable(cell, g, q, hp, cp, h, e)
}

/// [`train_cell`] compiled for eight lanes (the same operations: the same results).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn train_cell_avx2(
    cell: CellKind,
    g: &mut [f32],
    q: &[f32],
    hp: &[f32],
    cp: &[f32],
    h: &mut [f32],
    e: &mut [f32],
) {
    train_cell_portable(cell, g, q, hp, cp, h, e)
}

/// Units per block of the LSTM training cell: one AVX2 vector.
const LANES: usize = 8;

/// [`train_cell`] for the baseline instruction set.
#[inline(always)]
fn train_cell_portable(cell: CellKind, g: &mut [f32], q: &[f32], hp: &[f32], cp: &[f32], h: &mut [f32], e: &mut [f32]) {
    let hd = h.len();
    match cell {
        CellKind::RnnTanh | CellKind::RnnRelu => {
            let relu = cell == CellKind::RnnRelu;
            let (g, q) = (&mut g[..hd], &q[..hd]);
            for j in 0..hd {
                let v = rnn_unit(relu, g[j], q[j]);
                g[j] = v;
                h[j] = v;
            }
        }
        CellKind::Lstm => {
            let [gi, gf, gg, go] = blocks_mut::<4>(g, hd);
            let [qi, qf, qg, qo] = blocks::<4>(q, hd);
            let (cp, e) = (&cp[..hd], &mut e[..hd]);
            // Blocks of 8 units computed into local arrays, then stored: a loop of a
            // known length over values that alias nothing, which the compiler turns
            // into whole vectors.
            let mut j0 = 0;
            while j0 + LANES <= hd {
                let r = j0..j0 + LANES;
                let mut out = [[0.0f32; LANES]; 6];
                {
                    let (gi, gf, gg, go) = (&gi[r.clone()], &gf[r.clone()], &gg[r.clone()], &go[r.clone()]);
                    let (qi, qf, qg, qo) = (&qi[r.clone()], &qf[r.clone()], &qg[r.clone()], &qo[r.clone()]);
                    let cp = &cp[r.clone()];
                    for k in 0..LANES {
                        let u = lstm_unit([gi[k], gf[k], gg[k], go[k]], [qi[k], qf[k], qg[k], qo[k]], cp[k]);
                        for (o, u) in out.iter_mut().zip(u) {
                            o[k] = u;
                        }
                    }
                }
                gi[r.clone()].copy_from_slice(&out[0]);
                gf[r.clone()].copy_from_slice(&out[1]);
                gg[r.clone()].copy_from_slice(&out[2]);
                go[r.clone()].copy_from_slice(&out[3]);
                e[r.clone()].copy_from_slice(&out[4]);
                h[r].copy_from_slice(&out[5]);
                j0 += LANES;
            }
            for j in j0..hd {
                let u = lstm_unit([gi[j], gf[j], gg[j], go[j]], [qi[j], qf[j], qg[j], qo[j]], cp[j]);
                (gi[j], gf[j], gg[j], go[j]) = (u[0], u[1], u[2], u[3]);
                e[j] = u[4];
                h[j] = u[5];
            }
        }
        CellKind::Gru => {
            let [gr, gz, gn] = blocks_mut::<3>(g, hd);
            let [qr, qz, qn] = blocks::<3>(q, hd);
            let (hp, e) = (&hp[..hd], &mut e[..hd]);
            for j in 0..hd {
                let u = gru_unit([gr[j], gz[j], gn[j]], [qr[j], qz[j], qn[j]], hp[j]);
                (gr[j], gz[j], gn[j]) = (u[0], u[1], u[2]);
                e[j] = qn[j];
                h[j] = u[3];
            }
        }
    }
}

/// The backward of one LSTM step of one sample: from the gate activations `g` (`[4 H]`),
/// the cell states `c` and `c_prev`, the gradient `dout + dh` of `h` and `dc` of `c`,
/// writes the gradients of the gate pre-activations into `dg` and the gradient of
/// `c_prev` into `dc`.
#[inline]
fn lstm_cell_backward(g: &[f32], c: &[f32], c_prev: &[f32], dout: &[f32], dh: &[f32], dc: &mut [f32], dg: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if super::avx2::available() {
        // SAFETY: the CPU has AVX2.
        return unsafe { lstm_cell_backward_avx2(g, c, c_prev, dout, dh, dc, dg) };
    }
    lstm_cell_backward_portable(g, c, c_prev, dout, dh, dc, dg)
}

/// [`lstm_cell_backward`] compiled for eight lanes (the same operations: the same
/// results).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn lstm_cell_backward_avx2(
    g: &[f32],
    c: &[f32],
    c_prev: &[f32],
    dout: &[f32],
    dh: &[f32],
    dc: &mut [f32],
    dg: &mut [f32],
) {
    lstm_cell_backward_portable(g, c, c_prev, dout, dh, dc, dg)
}

/// [`lstm_cell_backward`] for the baseline instruction set.
#[inline(always)]
fn lstm_cell_backward_portable(
    g: &[f32],
    c: &[f32],
    c_prev: &[f32],
    dout: &[f32],
    dhb: &[f32],
    dcb: &mut [f32],
    dg: &mut [f32],
) {
    let hd = dcb.len();
    let (c, c_prev, dout, dhb) = (&c[..hd], &c_prev[..hd], &dout[..hd], &dhb[..hd]);
    let [gi, gf, gg, go] = blocks::<4>(g, hd);
    let [di, df, dgg, d_o] = blocks_mut::<4>(dg, hd);
    for j in 0..hd {
        let (i, f, g, o) = (gi[j], gf[j], gg[j], go[j]);
        let dh = dout[j] + dhb[j];
        let tc = tanh(c[j]);
        let dcell = dcb[j] + dh * o * (1.0 - tc * tc);
        di[j] = dcell * g * i * (1.0 - i);
        df[j] = dcell * c_prev[j] * f * (1.0 - f);
        dgg[j] = dcell * i * (1.0 - g * g);
        d_o[j] = dh * tc * o * (1.0 - o);
        dcb[j] = dcell * f;
    }
}

/// The time loop of one layer and direction of [`backward`], for `batch` samples:
/// every slice starts at the first of them.
#[allow(clippy::too_many_arguments)]
fn backward_steps(
    cfg: &Config,
    w: &Weights<'_>,
    d: usize,
    batch: usize,
    gates: &[f32],
    extra: &[f32],
    init: &[f32],
    out: &[f32],
    cur: &[f32],
    dp: &mut [f32],
    dq: &mut [f32],
    carry: &mut [f32],
    dc: &mut [f32],
) {
    let (t, hd, gh) = (cfg.steps, cfg.hidden, cfg.gate_width());
    let dh = cfg.directions * hd;
    let one = Layout::of(cfg);
    let gru = cfg.cell == CellKind::Gru;
    carry.fill(0.0);
    dc.fill(0.0);
    for s in (0..t).rev() {
        let ti = cfg.time(d, s);
        let tp = if s == 0 { 0 } else { cfg.time(d, s - 1) };
        for b in 0..batch {
            let g = &gates[(b * t + ti) * gh..][..gh];
            let dg = &mut dp[(b * t + ti) * gh..][..gh];
            let dhb = &mut carry[b * hd..][..hd];
            let dcb = &mut dc[b * hd..][..hd];
            let dout = &cur[b * one.out + ti * dh + d * hd..][..hd];
            match cfg.cell {
                CellKind::RnnTanh | CellKind::RnnRelu => {
                    let relu = cfg.cell == CellKind::RnnRelu;
                    for j in 0..hd {
                        let dh = dout[j] + dhb[j];
                        let v = g[j];
                        dg[j] = if relu {
                            if v > 0.0 {
                                dh
                            } else {
                                0.0
                            }
                        } else {
                            dh * (1.0 - v * v)
                        };
                    }
                }
                CellKind::Lstm => {
                    let c = &extra[(b * t + ti) * hd..][..hd];
                    let c_prev =
                        if s == 0 { &init[b * one.init + hd..][..hd] } else { &extra[(b * t + tp) * hd..][..hd] };
                    lstm_cell_backward(g, c, c_prev, dout, dhb, dcb, dg);
                }
                CellKind::Gru => {
                    let qn = &extra[(b * t + ti) * hd..][..hd];
                    let h_prev =
                        if s == 0 { &init[b * one.init..][..hd] } else { &out[b * one.out + tp * dh + d * hd..][..hd] };
                    let dqb = &mut dq[(b * t + ti) * gh..][..gh];
                    let [gr, gz, gn] = blocks::<3>(g, hd);
                    let [dgr, dgz, dgn] = blocks_mut::<3>(dg, hd);
                    let [dqr, dqz, dqn] = blocks_mut::<3>(dqb, hd);
                    for j in 0..hd {
                        let (r, z, n) = (gr[j], gz[j], gn[j]);
                        let dh = dout[j] + dhb[j];
                        let dan = dh * (1.0 - z) * (1.0 - n * n);
                        let dar = dan * qn[j] * r * (1.0 - r);
                        let daz = dh * (h_prev[j] - n) * z * (1.0 - z);
                        (dgr[j], dgz[j], dgn[j]) = (dar, daz, dan);
                        (dqr[j], dqz[j], dqn[j]) = (dar, daz, dan * r);
                        // The direct path h_prev -> h; the matmul path is added below.
                        dhb[j] = dh * z;
                    }
                }
            }
        }
        // The gradient of the recurrent projection at this step, [B, G H]
        // (for LSTM and RNN the same as that of the input projection).
        let dq_step = strided(if gru { &dq[ti * gh..] } else { &dp[ti * gh..] }, batch, gh, t * gh);
        let cut = cfg.truncate > 0 && s > 0 && s % cfg.truncate == 0;
        if cut {
            carry.fill(0.0);
            dc.fill(0.0);
        } else {
            // dh_prev = dQ W_hh (+ the GRU's direct path already in `carry`).
            let beta = if gru { 1.0 } else { 0.0 };
            gemm(1.0, dq_step, MatRef::new(w.hh, gh, hd), beta, carry, hd);
        }
    }
}

/// Backpropagation through time for the last [`forward_train`] over `x`: from `dy`
/// (the gradient of the output), adds the parameter gradients into `grads`, writes
/// `dL/dx` into `dx` when given and `dL/dh_0`, `dL/dc_0` into `d_initial` when given.
/// `scratch` holds `B * scratch_len` floats.
///
/// Truncation (`cfg.truncate = k > 0`): each direction's sequence is cut, in its
/// processing order, into chunks of `k` steps, and no gradient flows through the
/// recurrent state from one chunk into the previous one, exactly as if the state were
/// detached (`h.detach()` in PyTorch) every `k` steps. The weights still receive the
/// gradient of every step; the initial state receives gradient from the first chunk
/// only.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    cfg: &Config,
    params: &[f32],
    x: &[f32],
    cache: &[f32],
    dy: &[f32],
    dx: Option<&mut [f32]>,
    grads: &mut [f32],
    scratch: &mut [f32],
    mut d_initial: Option<StatesMut<'_>>,
) {
    let (t, f, hd, gh) = (cfg.steps, cfg.features, cfg.hidden, cfg.gate_width());
    let Some(per) = t.checked_mul(f).filter(|&per| per > 0) else {
        panic!("recurrent {cfg:?}: a sample is empty or has more floats than a usize counts");
    };
    let batch = x.len() / per;
    let (nl, nd) = (cfg.layers, cfg.directions);
    let dh = nd * hd;
    let one = Layout::of(cfg);
    let lay = one.times(batch);
    let lstm = cfg.cell == CellKind::Lstm;
    let gru = cfg.cell == CellKind::Gru;

    let (dp, rest) = scratch.split_at_mut(batch * t * gh);
    let (dq, rest) = rest.split_at_mut(batch * t * gh);
    let (seq_a, rest) = rest.split_at_mut(batch * t * dh);
    let (seq_b, rest) = rest.split_at_mut(batch * t * dh);
    let (h_prev_all, rest) = rest.split_at_mut(batch * t * hd);
    let (carry, rest) = rest.split_at_mut(batch * hd);
    let dc = &mut rest[..batch * hd];

    // The gradient of the last layer's output sequence, from dy.
    {
        let last = &cache[(nl - 1) * lay.layer..][..lay.out];
        let ow = cfg.output_width();
        if !cfg.return_sequences {
            seq_a.fill(0.0);
        }
        for b in 0..batch {
            let hs = &last[b * one.out..(b + 1) * one.out];
            let ds = &mut seq_a[b * one.out..(b + 1) * one.out];
            if cfg.return_sequences {
                let dyb = &dy[b * t * ow..(b + 1) * t * ow];
                for ti in 0..t {
                    let row = &hs[ti * dh..(ti + 1) * dh];
                    let g = &dyb[ti * ow..(ti + 1) * ow];
                    if nd == 1 {
                        ds[ti * dh..(ti + 1) * dh].copy_from_slice(g);
                    } else {
                        merge_backward(cfg.merge, g, &row[..hd], &row[hd..], &mut ds[ti * dh..(ti + 1) * dh]);
                    }
                }
            } else {
                let g = &dy[b * ow..(b + 1) * ow];
                if nd == 1 {
                    ds[(t - 1) * dh..][..hd].copy_from_slice(g);
                } else {
                    // Forward direction's final state is at t - 1, backward's at 0.
                    let (hf, hb) = (&hs[(t - 1) * dh..][..hd], &hs[hd..2 * hd]);
                    for j in 0..hd {
                        let (gf, gb) = match cfg.merge {
                            Merge::Concat => (g[j], g[hd + j]),
                            Merge::Sum => (g[j], g[j]),
                            Merge::Mean => (0.5 * g[j], 0.5 * g[j]),
                            Merge::Multiply => (g[j] * hb[j], g[j] * hf[j]),
                        };
                        ds[(t - 1) * dh + j] = gf;
                        ds[hd + j] = gb;
                    }
                }
            }
        }
    }

    let mut dx = dx;
    for l in (0..nl).rev() {
        let (cur, below): (&mut [f32], &mut [f32]) =
            if (nl - 1 - l) % 2 == 0 { (&mut *seq_a, &mut *seq_b) } else { (&mut *seq_b, &mut *seq_a) };
        let layer = &cache[l * lay.layer..(l + 1) * lay.layer];
        let input: &[f32] = if l == 0 { x } else { &cache[(l - 1) * lay.layer..][..lay.out] };
        let iw = cfg.input_width(l);
        let out = &layer[..lay.out];
        for d in 0..nd {
            let w = cfg.weights(params, l, d);
            let go = cfg.param_offset(l, d);
            let (gw_ih, rest) = grads[go..go + cfg.direction_params(l)].split_at_mut(gh * iw);
            let (gw_hh, rest) = rest.split_at_mut(gh * hd);
            let (gb_ih, gb_hh) = rest.split_at_mut(gh);
            let dir = &layer[lay.out + d * lay.dir..][..lay.dir];
            let (gates, rest) = dir.split_at(lay.gates);
            let (extra, init) = rest.split_at(lay.extra);
            let parts = step_parts(batch, t * gh * hd, usize::MAX);
            if parts < 2 {
                backward_steps(cfg, &w, d, batch, gates, extra, init, out, cur, dp, dq, carry, dc);
            }
            #[cfg(all(feature = "threading", target_arch = "x86_64"))]
            if parts > 1 {
                // Samples are independent through time: each part runs every step for a
                // block of them (its rows of every product).
                let step = batch.div_ceil(parts);
                let ptr = |v: &mut [f32]| Output(v.as_mut_ptr());
                let (dp_at, dq_at, carry_at, dc_at) = (ptr(dp), ptr(dq), ptr(carry), ptr(dc));
                let (gate_rows, extra_rows) = (t * gh, if extra.is_empty() { 0 } else { t * hd });
                let cur: &[f32] = cur;
                let run = |part: usize| {
                    let (b0, b1) = (part * step, ((part + 1) * step).min(batch));
                    let n = b1 - b0;
                    // SAFETY: the parts write the disjoint blocks of samples `b0..b1` of
                    // `dp`, `dq`, `carry` and `dc`, each sliced from `scratch` to hold
                    // `batch` samples (products bounded by `Layout::times(batch)`, checked),
                    // and `b1 <= batch`.
                    unsafe {
                        let slice =
                            |at: Output, from: usize, len: usize| core::slice::from_raw_parts_mut(at.at(from), len);
                        backward_steps(
                            cfg,
                            &w,
                            d,
                            n,
                            &gates[b0 * gate_rows..b1 * gate_rows],
                            &extra[b0 * extra_rows..b1 * extra_rows],
                            &init[b0 * one.init..b1 * one.init],
                            &out[b0 * one.out..b1 * one.out],
                            &cur[b0 * one.out..b1 * one.out],
                            slice(dp_at, b0 * gate_rows, n * gate_rows),
                            slice(dq_at, b0 * gate_rows, n * gate_rows),
                            slice(carry_at, b0 * hd, n * hd),
                            slice(dc_at, b0 * hd, n * hd),
                        );
                    }
                };
                super::parallel::for_each_part(parts, &run);
            }
            // The hidden state entering every step, [B T, H], for one product over all steps:
            // dW_hh += dQ^T H_prev; db_hh += sum dQ.
            for b in 0..batch {
                for s in 0..t {
                    let ti = cfg.time(d, s);
                    let src = if s == 0 {
                        &init[b * one.init..][..hd]
                    } else {
                        &out[b * one.out + cfg.time(d, s - 1) * dh + d * hd..][..hd]
                    };
                    h_prev_all[(b * t + ti) * hd..][..hd].copy_from_slice(src);
                }
            }
            let dq_all: &[f32] = if gru { dq } else { dp };
            gemm(1.0, MatRef::new(dq_all, batch * t, gh).t(), MatRef::new(h_prev_all, batch * t, hd), 1.0, gw_hh, hd);
            add_column_sums(gb_hh, dq_all, batch * t, gh);
            if let Some(di) = d_initial.as_mut() {
                for b in 0..batch {
                    let si = (b * nl * nd + l * nd + d) * hd;
                    di.h[si..si + hd].copy_from_slice(&carry[b * hd..(b + 1) * hd]);
                    if lstm {
                        di.c[si..si + hd].copy_from_slice(&dc[b * hd..(b + 1) * hd]);
                    }
                }
            }
            // dW_ih += dP^T X; db_ih += sum dP; dX (+)= dP W_ih.
            let dpm = MatRef::new(dp, batch * t, gh);
            gemm(1.0, dpm.t(), MatRef::new(input, batch * t, iw), 1.0, gw_ih, iw);
            add_column_sums(gb_ih, dp, batch * t, gh);
            let beta = if d == 0 { 0.0 } else { 1.0 };
            if l > 0 {
                gemm(1.0, dpm, MatRef::new(w.ih, gh, iw), beta, below, iw);
            } else if let Some(dx) = dx.as_deref_mut() {
                gemm(1.0, dpm, MatRef::new(w.ih, gh, iw), beta, dx, iw);
            }
        }
    }
}

#[cfg(all(test, feature = "threading", target_arch = "x86_64"))]
mod tests {
    use super::*;

    /// Makes [`step_parts`] choose one thread (for the comparison below).
    pub(super) static ONE_THREAD: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

    /// The time loops split between threads give the one-thread results bit for bit,
    /// forward and backward.
    #[test]
    fn threads_give_the_same_bits() {
        if gemm::threads() < 2 || !super::super::avx2::available() {
            eprintln!("one thread (or no AVX2): nothing to compare");
            return;
        }
        for (cell, directions) in [(CellKind::Lstm, 1), (CellKind::Gru, 2), (CellKind::RnnTanh, 1)] {
            let cfg = Config {
                cell,
                steps: 64,
                features: 5,
                hidden: 64,
                layers: 2,
                directions,
                merge: Merge::Concat,
                return_sequences: true,
                truncate: 0,
            };
            let batch = 10;
            assert!(step_parts(batch, cfg.steps * cfg.gate_width() * cfg.hidden, usize::MAX) > 1);
            let value = |i: usize, s: usize| ((i * s + 3) % 29) as f32 * 0.04 - 0.55;
            let params: Vec<f32> = (0..cfg.params()).map(|i| value(i, 13) * 0.3).collect();
            let x: Vec<f32> = (0..batch * cfg.steps * cfg.features).map(|i| value(i, 7)).collect();
            let out = cfg.output_len();
            let run = |one_thread: bool| {
                ONE_THREAD.store(one_thread, core::sync::atomic::Ordering::Relaxed);
                let n = batch;
                let (mut y, mut cache) = (vec![0.0; n * out], vec![0.0; n * cfg.cache_len()]);
                let mut scratch = vec![0.0; n * cfg.scratch_len()];
                forward_train(&cfg, &params, &x, None, &mut y, &mut cache, &mut scratch, None);
                let dy: Vec<f32> = (0..y.len()).map(|i| value(i, 3)).collect();
                let (mut dx, mut grads) = (vec![0.0; x.len()], vec![0.0; params.len()]);
                backward(&cfg, &params, &x, &cache, &dy, Some(&mut dx), &mut grads, &mut scratch, None);
                ONE_THREAD.store(false, core::sync::atomic::Ordering::Relaxed);
                let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                (bits(&y), bits(&dx), bits(&grads))
            };
            let (split, one) = (run(false), run(true));
            assert_eq!(split.0, one.0, "{cell:?}: output");
            assert_eq!(split.1, one.1, "{cell:?}: input gradient");
            assert_eq!(split.2, one.2, "{cell:?}: parameter gradients");
        }
    }
}
