//! Recurrent layers, embeddings and per-step dense layers against an independent `f64`
//! reference written from PyTorch's documented equations.
//!
//! * Forward: inference and training outputs and final states (`h_n`, `c_n`) match the
//!   reference within `abs 2e-5 + rel 1e-4` (f32 over a few steps rounds at ~1e-6).
//! * Gradients: `backward` (inputs, every parameter, initial `h_0` / `c_0`) matches
//!   central differences of the `f64` reference (step 1e-6, so the differences are exact
//!   to ~1e-9) within `abs 1e-5 + rel 1e-4`. The loss is `sum(w * y)` with random `w`.
//! * Truncated BPTT: the reference treats the recurrent state entering each chunk of
//!   `truncate` steps as a constant (PyTorch's `h.detach()`), so the same differences
//!   check the truncated gradient.
//! * Streaming: every step equals the whole-sequence inference output bit for bit.
//! * No method allocates (a counting allocator).
use crate::counting_alloc::allocations;
use crate::gradcheck;
use crate::standalone::Standalone;

use gradcheck::{assert_close, assert_close_where, central_differences_f64, dense_f64, uniform, widen, Tolerance};
use nn_core::__private::{Chain, Named};
use nn_core::layers::{
    Bidirectional, Cell, Embedding, Gru, GruCell, Lstm, LstmCell, Merge, Recurrent, RnnCell, SequenceDense, SimpleRnn,
    States, StatesMut,
};
use nn_core::stream::Stream;
use nn_core::{Activation, Layer, Model, Rng, Weights};

const FORWARD_TOL: Tolerance = Tolerance { abs: 2e-5, rel: 1e-4 };
const GRAD_TOL: Tolerance = Tolerance { abs: 1e-5, rel: 1e-4 };

// ---------------------------------------------------------------------------------------
// The f64 reference, one sample at a time.

/// The cell equations the reference runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CellKind {
    RnnTanh,
    RnnRelu,
    Lstm,
    Gru,
}

impl CellKind {
    /// Gates per hidden unit (PyTorch's `gate_size / hidden_size`).
    fn gates(self) -> usize {
        match self {
            CellKind::RnnTanh | CellKind::RnnRelu => 1,
            CellKind::Lstm => 4,
            CellKind::Gru => 3,
        }
    }
}

/// A cell of the library and the equations the reference runs for it.
trait ReferenceCell: Cell {
    fn reference_kind(&self) -> CellKind;
}

impl ReferenceCell for LstmCell {
    fn reference_kind(&self) -> CellKind {
        CellKind::Lstm
    }
}

impl ReferenceCell for GruCell {
    fn reference_kind(&self) -> CellKind {
        CellKind::Gru
    }
}

impl ReferenceCell for RnnCell {
    fn reference_kind(&self) -> CellKind {
        match self.activation {
            Activation::Tanh => CellKind::RnnTanh,
            Activation::Relu => CellKind::RnnRelu,
            other => panic!("SimpleRnn with {other:?}"),
        }
    }
}

/// A layer as the reference sees it: the layer's type parameters and public fields.
struct Config {
    cell: CellKind,
    steps: usize,
    features: usize,
    hidden: usize,
    layers: usize,
    directions: usize,
    /// The width of the output per step (`H`, or `2 H` for concatenated directions).
    width: usize,
    merge: Merge,
    return_sequences: bool,
    truncate: usize,
}

impl Config {
    fn of<
        C: ReferenceCell,
        const T: usize,
        const F: usize,
        const H: usize,
        const L: usize,
        const D: usize,
        const O: usize,
        const S: bool,
    >(
        layer: &Recurrent<C, T, F, H, L, D, O, S>,
    ) -> Config {
        Config {
            cell: layer.cell.reference_kind(),
            steps: T,
            features: F,
            hidden: H,
            layers: L,
            directions: D,
            width: O,
            merge: layer.merge,
            return_sequences: S,
            truncate: layer.truncate,
        }
    }

    /// Floats of one sample's state (`h_0`, `h_n`): `[L D, H]`.
    fn state_len(&self) -> usize {
        self.layers * self.directions * self.hidden
    }

    /// Floats of one sample's output: `[T, O]`, or `[O]` for the last step only.
    fn output_len(&self) -> usize {
        if self.return_sequences {
            self.steps * self.width
        } else {
            self.width
        }
    }

    /// PyTorch's parameter count: per layer and direction, `gates H` rows of
    /// `weight_ih` (the layer's input width), `weight_hh` (`H`) and two biases.
    fn params(&self) -> usize {
        let gh = self.cell.gates() * self.hidden;
        (0..self.layers)
            .map(|l| {
                let input = if l == 0 { self.features } else { self.directions * self.hidden };
                self.directions * gh * (input + self.hidden + 2)
            })
            .sum()
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// The four tensors of one layer and direction, walked in `state_dict` order.
struct RefWeights<'a> {
    w_ih: &'a [f64],
    w_hh: &'a [f64],
    b_ih: &'a [f64],
    b_hh: &'a [f64],
}

/// `weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0, (the same _reverse), _l1, ...`
fn split_params<'a>(cfg: &Config, params: &'a [f64]) -> Vec<RefWeights<'a>> {
    let gh = cfg.cell.gates() * cfg.hidden;
    let mut out = Vec::new();
    let mut rest = params;
    for l in 0..cfg.layers {
        let input = if l == 0 { cfg.features } else { cfg.directions * cfg.hidden };
        for _ in 0..cfg.directions {
            let (w_ih, r) = rest.split_at(gh * input);
            let (w_hh, r) = r.split_at(gh * cfg.hidden);
            let (b_ih, r) = r.split_at(gh);
            let (b_hh, r) = r.split_at(gh);
            rest = r;
            out.push(RefWeights { w_ih, w_hh, b_ih, b_hh });
        }
    }
    assert!(rest.is_empty(), "parameter count differs from PyTorch's layout");
    out
}

fn matvec(w: &[f64], b: &[f64], x: &[f64]) -> Vec<f64> {
    w.chunks(x.len()).zip(b).map(|(row, b)| row.iter().zip(x).map(|(w, x)| w * x).sum::<f64>() + b).collect()
}

/// One step of PyTorch's cell equations; returns `(h, c)` and pushes ReLU signs.
fn ref_cell(
    cell: CellKind,
    w: &RefWeights<'_>,
    x: &[f64],
    hp: &[f64],
    cp: &[f64],
    pattern: &mut Vec<bool>,
) -> (Vec<f64>, Vec<f64>) {
    let hd = hp.len();
    let gi = matvec(w.w_ih, w.b_ih, x);
    let gh = matvec(w.w_hh, w.b_hh, hp);
    match cell {
        CellKind::RnnTanh => ((0..hd).map(|j| (gi[j] + gh[j]).tanh()).collect(), vec![0.0; hd]),
        CellKind::RnnRelu => {
            let a: Vec<f64> = (0..hd).map(|j| gi[j] + gh[j]).collect();
            pattern.extend(a.iter().map(|&v| v > 0.0));
            (a.iter().map(|&v| v.max(0.0)).collect(), vec![0.0; hd])
        }
        CellKind::Lstm => {
            let mut h = vec![0.0; hd];
            let mut c = vec![0.0; hd];
            for j in 0..hd {
                let i = sigmoid(gi[j] + gh[j]);
                let f = sigmoid(gi[hd + j] + gh[hd + j]);
                let g = (gi[2 * hd + j] + gh[2 * hd + j]).tanh();
                let o = sigmoid(gi[3 * hd + j] + gh[3 * hd + j]);
                c[j] = f * cp[j] + i * g;
                h[j] = o * c[j].tanh();
            }
            (h, c)
        }
        CellKind::Gru => {
            let mut h = vec![0.0; hd];
            for j in 0..hd {
                let r = sigmoid(gi[j] + gh[j]);
                let z = sigmoid(gi[hd + j] + gh[hd + j]);
                let n = (gi[2 * hd + j] + r * gh[2 * hd + j]).tanh();
                h[j] = (1.0 - z) * n + z * hp[j];
            }
            (h, vec![0.0; hd])
        }
    }
}

/// The state entering each truncation boundary of one sample: `(h, c)`.
type Boundaries = Vec<(Vec<f64>, Vec<f64>)>;

struct RefOut {
    y: Vec<f64>,
    h_n: Vec<f64>,
    c_n: Vec<f64>,
    pattern: Vec<bool>,
    /// The state entering every truncation boundary, in traversal order.
    boundaries: Boundaries,
}

/// One sample through the stack. At truncation boundaries the entering state is
/// replaced by `frozen` (the unperturbed values) when given: a constant, as detached.
fn reference(
    cfg: &Config,
    params: &[f64],
    x: &[f64],
    h0: &[f64],
    c0: &[f64],
    frozen: Option<&[(Vec<f64>, Vec<f64>)]>,
) -> RefOut {
    let (t, hd, nd) = (cfg.steps, cfg.hidden, cfg.directions);
    let weights = split_params(cfg, params);
    let mut input: Vec<Vec<f64>> = x.chunks(cfg.features).map(|r| r.to_vec()).collect();
    let (mut h_n, mut c_n) = (vec![], vec![]);
    let mut pattern = vec![];
    let mut boundaries = vec![];
    for l in 0..cfg.layers {
        let mut out = vec![vec![0.0; nd * hd]; t];
        for d in 0..nd {
            let k = l * nd + d;
            let w = &weights[k];
            let mut h = h0[k * hd..(k + 1) * hd].to_vec();
            let mut c = c0[k * hd..(k + 1) * hd].to_vec();
            for s in 0..t {
                let ti = if d == 0 { s } else { t - 1 - s };
                if cfg.truncate > 0 && s > 0 && s % cfg.truncate == 0 {
                    if let Some(fz) = frozen {
                        (h, c) = fz[boundaries.len()].clone();
                    }
                    boundaries.push((h.clone(), c.clone()));
                }
                (h, c) = ref_cell(cfg.cell, w, &input[ti], &h, &c, &mut pattern);
                out[ti][d * hd..(d + 1) * hd].copy_from_slice(&h);
            }
            h_n.extend_from_slice(&h);
            c_n.extend_from_slice(&c);
        }
        input = out;
    }
    // The top layer's final states (forward after T - 1, backward after 0).
    let top = &h_n[(cfg.layers - 1) * nd * hd..];
    let merge = |f: &[f64], b: &[f64]| -> Vec<f64> {
        match cfg.merge {
            Merge::Concat => f.iter().chain(b).copied().collect(),
            Merge::Sum => f.iter().zip(b).map(|(a, b)| a + b).collect(),
            Merge::Mean => f.iter().zip(b).map(|(a, b)| (a + b) / 2.0).collect(),
            Merge::Multiply => f.iter().zip(b).map(|(a, b)| a * b).collect(),
        }
    };
    let y = match (cfg.return_sequences, nd) {
        (true, 1) => input.concat(),
        (true, _) => input.iter().flat_map(|row| merge(&row[..hd], &row[hd..])).collect(),
        (false, 1) => top.to_vec(),
        (false, _) => merge(&top[..hd], &top[hd..]),
    };
    RefOut { y, h_n, c_n, pattern, boundaries }
}

// ---------------------------------------------------------------------------------------
// The gradient check of one recurrent layer.

struct Data {
    params: Vec<f32>,
    x: Vec<f32>,
    h0: Vec<f32>,
    c0: Vec<f32>,
    dy: Vec<f32>,
}

#[allow(clippy::too_many_arguments)]
fn batch_reference(
    cfg: &Config,
    batch: usize,
    params: &[f64],
    x: &[f64],
    h0: &[f64],
    c0: &[f64],
    frozen: Option<&[Boundaries]>,
) -> Vec<RefOut> {
    let (xl, sl) = (cfg.steps * cfg.features, cfg.state_len());
    (0..batch)
        .map(|b| {
            let fz = frozen.map(|f| &f[b][..]);
            reference(cfg, params, &x[b * xl..(b + 1) * xl], &h0[b * sl..(b + 1) * sl], &c0[b * sl..(b + 1) * sl], fz)
        })
        .collect()
}

/// Checks forward and every gradient of `layer` against the reference.
fn check_recurrent<
    C: ReferenceCell,
    const T: usize,
    const F: usize,
    const H: usize,
    const L: usize,
    const D: usize,
    const O: usize,
    const S: bool,
>(
    name: &str,
    layer: Recurrent<C, T, F, H, L, D, O, S>,
    batch: usize,
    with_state: bool,
    seed: u64,
) where
    Recurrent<C, T, F, H, L, D, O, S>: Layer,
{
    type R<
        C,
        const T: usize,
        const F: usize,
        const H: usize,
        const L: usize,
        const D: usize,
        const O: usize,
        const S: bool,
    > = Recurrent<C, T, F, H, L, D, O, S>;
    let cfg = Config::of(&layer);
    let params_len = <R<C, T, F, H, L, D, O, S> as Layer>::PARAMS;
    let scratch_len = <R<C, T, F, H, L, D, O, S> as Layer>::SCRATCH;
    let out_len = cfg.output_len();
    assert_eq!(params_len, cfg.params(), "{name}: PARAMS");
    let sl = R::<C, T, F, H, L, D, O, S>::STATE_LEN;
    let lstm = cfg.cell == CellKind::Lstm;

    let mut rng = Rng::new(seed);
    let data = Data {
        params: uniform(&mut rng, params_len, -0.6, 0.6),
        x: uniform(&mut rng, batch * T * F, -1.0, 1.0),
        h0: if with_state { uniform(&mut rng, batch * sl, -0.8, 0.8) } else { vec![0.0; batch * sl] },
        c0: if with_state && lstm { uniform(&mut rng, batch * sl, -0.8, 0.8) } else { vec![0.0; batch * sl] },
        dy: uniform(&mut rng, batch * out_len, -1.0, 1.0),
    };
    let initial = with_state.then_some(States { h: &data.h0, c: &data.c0 });

    // Forward: inference and training.
    let mut y_inf = vec![f32::NAN; batch * out_len];
    let (mut hn_inf, mut cn_inf) = (vec![f32::NAN; batch * sl], vec![f32::NAN; batch * sl]);
    let mut scratch = vec![f32::NAN; batch * scratch_len];
    layer.forward_with_state(
        Weights::new(&data.params, &[]),
        &data.x,
        initial,
        &mut y_inf,
        Some(StatesMut { h: &mut hn_inf, c: &mut cn_inf }),
        &mut scratch,
    );
    let mut y_tr = vec![f32::NAN; batch * out_len];
    let (mut hn_tr, mut cn_tr) = (vec![f32::NAN; batch * sl], vec![f32::NAN; batch * sl]);
    let mut s = Standalone::of(&layer, batch, 0);
    let cx = s.train(&data.params);
    layer.forward_train_with_state(&data.x, initial, &mut y_tr, cx, Some(StatesMut { h: &mut hn_tr, c: &mut cn_tr }));

    let (p64, x64, h64, c64) = (widen(&data.params), widen(&data.x), widen(&data.h0), widen(&data.c0));
    let refs = batch_reference(&cfg, batch, &p64, &x64, &h64, &c64, None);
    let y_ref: Vec<f64> = refs.iter().flat_map(|r| r.y.clone()).collect();
    let hn_ref: Vec<f64> = refs.iter().flat_map(|r| r.h_n.clone()).collect();
    let cn_ref: Vec<f64> = refs.iter().flat_map(|r| r.c_n.clone()).collect();
    assert_close(&format!("{name}: inference output"), &y_inf, &y_ref, FORWARD_TOL);
    assert_close(&format!("{name}: training output"), &y_tr, &y_ref, FORWARD_TOL);
    assert_close(&format!("{name}: inference h_n"), &hn_inf, &hn_ref, FORWARD_TOL);
    assert_close(&format!("{name}: training h_n"), &hn_tr, &hn_ref, FORWARD_TOL);
    if lstm {
        assert_close(&format!("{name}: inference c_n"), &cn_inf, &cn_ref, FORWARD_TOL);
        assert_close(&format!("{name}: training c_n"), &cn_tr, &cn_ref, FORWARD_TOL);
    }

    // Backward.
    let mut dx = vec![f32::NAN; batch * T * F];
    let (mut dh0, mut dc0) = (vec![f32::NAN; batch * sl], vec![f32::NAN; batch * sl]);
    let cx = s.backward(&data.params);
    layer.backward_with_state(&data.x, &data.dy, Some(&mut dx), cx, Some(StatesMut { h: &mut dh0, c: &mut dc0 }));
    let grads = s.grads.clone();

    let frozen: Vec<Boundaries> = refs.into_iter().map(|r| r.boundaries).collect();
    let dy = widen(&data.dy);
    let loss = |p: &[f64], x: &[f64], h0: &[f64], c0: &[f64]| -> (f64, Vec<bool>) {
        let outs = batch_reference(&cfg, batch, p, x, h0, c0, Some(&frozen));
        let mut total = 0.0;
        let mut pattern = vec![];
        for (b, r) in outs.into_iter().enumerate() {
            total += r.y.iter().zip(&dy[b * out_len..]).map(|(y, w)| y * w).sum::<f64>();
            pattern.extend(r.pattern);
        }
        (total, pattern)
    };
    const STEP: f64 = 1e-6;
    let fd_params = central_differences_f64(&p64, STEP, |p| loss(p, &x64, &h64, &c64));
    let fd_x = central_differences_f64(&x64, STEP, |x| loss(&p64, x, &h64, &c64));
    let fd_h0 = central_differences_f64(&h64, STEP, |h| loss(&p64, &x64, h, &c64));
    // The ReLU cell's kinks: a difference straddling one is skipped (rare at this step).
    let skip = if cfg.cell == CellKind::RnnRelu { 4 } else { 0 };
    assert_close_where(&format!("{name}: parameter gradients"), &grads, &fd_params, GRAD_TOL, skip);
    assert_close_where(&format!("{name}: input gradient"), &dx, &fd_x, GRAD_TOL, skip);
    assert_close_where(&format!("{name}: h_0 gradient"), &dh0, &fd_h0, GRAD_TOL, skip);
    if lstm {
        let fd_c0 = central_differences_f64(&c64, STEP, |c| loss(&p64, &x64, &h64, c));
        assert_close_where(&format!("{name}: c_0 gradient"), &dc0, &fd_c0, GRAD_TOL, 0);
    }

    // The Layer methods are the zero-state forms of the above, and add into grads.
    if !with_state {
        let mut y = vec![0.0; batch * out_len];
        layer.forward(nn_core::Weights::new(&data.params, &[]), &data.x, &mut y, &mut scratch);
        assert_eq!(y, y_inf, "{name}: Layer::forward differs from forward_with_state");
        let mut dy = data.dy.clone();
        layer.forward_train(&data.x, &mut y, s.train(&data.params));
        layer.backward(&data.x, &y, &mut dy, None, s.backward(&data.params));
        for (t, g) in s.grads.iter().zip(&grads) {
            assert!((t - 2.0 * g).abs() <= 1e-6 * (1.0 + g.abs()), "{name}: backward must add into grads");
        }
    }
}

fn lstm() -> LstmCell {
    LstmCell
}
fn gru() -> GruCell {
    GruCell
}
fn tanh() -> RnnCell {
    RnnCell::new(Activation::Tanh)
}
fn relu() -> RnnCell {
    RnnCell::new(Activation::Relu)
}

#[test]
fn simple_rnn_gradients() {
    check_recurrent("rnn tanh", SimpleRnn::<5, 3, 4>::new(tanh()), 2, false, 1);
    check_recurrent("rnn tanh h0", SimpleRnn::<5, 3, 4>::new(tanh()), 2, true, 2);
    check_recurrent("rnn relu h0", SimpleRnn::<5, 3, 4>::new(relu()), 2, true, 3);
    check_recurrent("rnn tanh 2 layers last", SimpleRnn::<4, 3, 5, 2, false>::new(tanh()), 3, true, 4);
    check_recurrent("rnn relu bidirectional", Bidirectional::<RnnCell, 4, 2, 3, 6>::new(relu()), 2, true, 5);
}

#[test]
fn lstm_gradients() {
    check_recurrent("lstm", Lstm::<5, 3, 4>::new(lstm()), 2, false, 11);
    check_recurrent("lstm h0 c0", Lstm::<5, 3, 4>::new(lstm()), 3, true, 12);
    check_recurrent("lstm 2 layers h0 c0", Lstm::<4, 3, 4, 2>::new(lstm()), 2, true, 13);
    check_recurrent("lstm last", Lstm::<6, 2, 3, 1, false>::new(lstm()), 2, true, 14);
    check_recurrent("lstm batch 1", Lstm::<3, 17, 9>::new(lstm()), 1, true, 15);
}

#[test]
fn gru_gradients() {
    check_recurrent("gru", Gru::<5, 3, 4>::new(gru()), 2, false, 21);
    check_recurrent("gru h0", Gru::<5, 3, 4>::new(gru()), 3, true, 22);
    check_recurrent("gru 2 layers h0", Gru::<4, 3, 4, 2>::new(gru()), 2, true, 23);
    check_recurrent("gru last", Gru::<6, 2, 3, 1, false>::new(gru()), 2, true, 24);
}

#[test]
fn bidirectional_gradients_every_merge_mode() {
    type BiLstm<const O: usize, const S: bool> = Bidirectional<LstmCell, 4, 3, 3, O, 2, S>;
    check_recurrent("bi lstm concat", BiLstm::<6, true>::new(lstm()), 2, true, 31);
    check_recurrent("bi lstm sum", BiLstm::<3, true>::new(lstm()).with_merge(Merge::Sum), 2, true, 32);
    check_recurrent("bi lstm mean", BiLstm::<3, true>::new(lstm()).with_merge(Merge::Mean), 2, false, 33);
    check_recurrent("bi lstm multiply", BiLstm::<3, true>::new(lstm()).with_merge(Merge::Multiply), 2, true, 34);
    check_recurrent("bi lstm last concat", BiLstm::<6, false>::new(lstm()), 2, true, 35);
    check_recurrent("bi lstm last multiply", BiLstm::<3, false>::new(lstm()).with_merge(Merge::Multiply), 2, true, 36);
    type BiGru<const O: usize, const S: bool> = Bidirectional<GruCell, 5, 2, 4, O, 2, S>;
    check_recurrent("bi gru concat", BiGru::<8, true>::new(gru()), 2, true, 37);
    check_recurrent("bi gru last mean", BiGru::<4, false>::new(gru()).with_merge(Merge::Mean), 3, true, 38);
    check_recurrent("bi gru 1 layer", Bidirectional::<GruCell, 3, 2, 4, 8>::new(gru()), 2, false, 39);
}

#[test]
fn truncated_bptt_gradients() {
    // The state entering every chunk of `truncate` steps is a constant in the reference.
    check_recurrent("lstm truncate 2", Lstm::<7, 3, 4>::new(lstm()).with_truncate(2), 2, true, 41);
    check_recurrent("gru truncate 3", Gru::<7, 3, 4, 2>::new(gru()).with_truncate(3), 2, true, 42);
    check_recurrent("rnn truncate 1", SimpleRnn::<5, 3, 4>::new(tanh()).with_truncate(1), 2, true, 43);
    let bi = Bidirectional::<LstmCell, 6, 2, 3, 6, 2>::new(lstm()).with_truncate(4);
    check_recurrent("bi lstm truncate 4", bi, 2, true, 44);
    check_recurrent("gru last truncate 2", Gru::<6, 2, 3, 1, false>::new(gru()).with_truncate(2), 2, true, 45);
}

/// Gradients of a loss on the last output only: with `truncate: k`, inputs more than
/// `k` steps back get exactly zero; with `truncate >= T`, the full gradient.
#[test]
fn truncation_cuts_gradient_flow() {
    type Net = Lstm<8, 2, 3>;
    let params = uniform(&mut Rng::new(7), Net::PARAMS, -0.5, 0.5);
    let x = uniform(&mut Rng::new(8), 8 * 2, -1.0, 1.0);
    let mut dy = vec![0.0f32; 8 * 3];
    dy[7 * 3..].copy_from_slice(&[1.0, -0.5, 0.25]);
    let input_grad = |truncate: usize| {
        let layer = Net::new(LstmCell).with_truncate(truncate);
        let (mut y, mut s) = (vec![0.0; 24], Standalone::of(&layer, 1, 0));
        layer.forward_train(&x, &mut y, s.train(&params));
        let mut dx = vec![0.0; 16];
        layer.backward(&x, &y, &mut dy.clone(), Some(&mut dx), s.backward(&params));
        dx
    };
    let full = input_grad(0);
    assert_eq!(input_grad(8), full);
    assert_eq!(input_grad(100), full);
    // Chunks of 3: steps 6, 7 are the last chunk; steps 0..6 get nothing.
    let cut = input_grad(3);
    assert!(cut[..6 * 2].iter().all(|&g| g == 0.0), "{cut:?}");
    assert_eq!(&cut[6 * 2..], &full[6 * 2..]);
    assert!(full[..6 * 2].iter().any(|&g| g != 0.0));
}

// ---------------------------------------------------------------------------------------
// Names, counts, initialisation

#[test]
fn parameter_names_follow_pytorch() {
    let layer = Bidirectional::<LstmCell, 4, 3, 5, 10, 2>::new(LstmCell);
    let mut names = vec![];
    layer.visit_tensors(None, 100, 0, &mut |t| names.push((t.path.to_string(), t.shape.to_vec(), t.offset, t.len)));
    let expected = [
        ("weight_ih_l0", vec![20, 3]),
        ("weight_hh_l0", vec![20, 5]),
        ("bias_ih_l0", vec![20]),
        ("bias_hh_l0", vec![20]),
        ("weight_ih_l0_reverse", vec![20, 3]),
        ("weight_hh_l0_reverse", vec![20, 5]),
        ("bias_ih_l0_reverse", vec![20]),
        ("bias_hh_l0_reverse", vec![20]),
        ("weight_ih_l1", vec![20, 10]),
        ("weight_hh_l1", vec![20, 5]),
        ("bias_ih_l1", vec![20]),
        ("bias_hh_l1", vec![20]),
        ("weight_ih_l1_reverse", vec![20, 10]),
        ("weight_hh_l1_reverse", vec![20, 5]),
        ("bias_ih_l1_reverse", vec![20]),
        ("bias_hh_l1_reverse", vec![20]),
    ];
    assert_eq!(names.len(), expected.len());
    let mut offset = 100;
    for ((name, shape, at, len), (en, es)) in names.iter().zip(&expected) {
        assert_eq!((name.as_str(), shape), (*en, es));
        assert_eq!(*at, offset, "{name}: tensors are contiguous in state_dict order");
        assert_eq!(*len, shape.iter().product::<usize>());
        offset += len;
    }
    assert_eq!(offset - 100, <Bidirectional<LstmCell, 4, 3, 5, 10, 2> as Layer>::PARAMS);
    // torch.nn.LSTM(3, 5, num_layers=2, bidirectional=True): 2 (20 (3 + 5) + 40) + 2 (20 (10 + 5) + 40).
    assert_eq!(offset - 100, 2 * (20 * 8 + 40) + 2 * (20 * 15 + 40));
    assert_eq!(<Gru<4, 3, 5> as Layer>::PARAMS, 15 * (3 + 5 + 2));
    assert_eq!(<SimpleRnn<4, 3, 5> as Layer>::PARAMS, 5 * (3 + 5 + 2));
}

#[test]
fn initialisation_is_pytorch_uniform() {
    type Net = Gru<3, 4, 16>;
    let mut params = vec![0.0; Net::PARAMS];
    Net::new(GruCell).init(&mut params, &mut [], &mut Rng::new(3));
    let k = 1.0 / 4.0;
    assert!(params.iter().all(|v| v.abs() <= k));
    let mean_abs = params.iter().map(|v| v.abs()).sum::<f32>() / params.len() as f32;
    assert!((mean_abs - k / 2.0).abs() < 0.02, "{mean_abs}");
}

// ---------------------------------------------------------------------------------------
// Streaming

/// Streams every sample of `x` (`[B, T, F]`) and asserts each step equals the batch
/// inference output bit for bit.
fn assert_stream_equals_forward<L: nn_core::stream::Step + Clone>(name: &str, layer: L, params: &[f32], x: &[f32]) {
    let (t_len, in_len, out_len) = (
        <L::Input as nn_core::Shape>::DIMS[0],
        <L::StepInput as nn_core::Shape>::LEN,
        <L::StepOutput as nn_core::Shape>::LEN,
    );
    let batch = x.len() / <L::Input as nn_core::Shape>::LEN;
    let mut whole = vec![0.0; batch * <L::Output as nn_core::Shape>::LEN];
    layer.forward(nn_core::Weights::new(params, &[]), x, &mut whole, &mut vec![0.0; batch * L::SCRATCH]);
    let mut stream = Stream::new(layer, params, &[]);
    let mut y = vec![0.0; out_len];
    for b in 0..batch {
        stream.reset();
        for t in 0..t_len {
            let xt = &x[(b * t_len + t) * in_len..][..in_len];
            stream.step_slice(xt, &mut y);
            let expected = &whole[(b * t_len + t) * out_len..][..out_len];
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&y), bits(expected), "{name}: sample {b}, step {t}");
        }
    }
}

#[test]
fn streaming_lstm_and_gru_equal_whole_sequence_bit_for_bit() {
    let mut rng = Rng::new(50);
    macro_rules! case {
        ($name:literal, $ty:ty, $cell:expr, $batch:expr) => {{
            let layer = <$ty>::new($cell);
            let mut params = vec![0.0; <$ty as Layer>::PARAMS];
            layer.init(&mut params, &mut [], &mut rng);
            let x = uniform(&mut rng, $batch * <<$ty as Layer>::Input as nn_core::Shape>::LEN, -2.0, 2.0);
            assert_stream_equals_forward($name, layer, &params, &x);
        }};
    }
    case!("lstm", Lstm<12, 5, 16>, LstmCell, 3);
    case!("lstm 2 layers", Lstm<9, 3, 33, 2>, LstmCell, 2);
    case!("gru", Gru<12, 5, 16>, GruCell, 3);
    case!("gru 3 layers", Gru<7, 19, 8, 3>, GruCell, 2);
    // Widths that are multiples of 8 take the fixed-width projections.
    case!("gru 8 -> 64, 2 layers", Gru<6, 8, 64, 2>, GruCell, 2);
    case!("lstm 16 -> 24", Lstm<6, 16, 24>, LstmCell, 2);
    // The small stacks of the benchmark: eight-lane cells, sixteen-lane cells, 3 layers.
    case!("gru 8 -> 8", Gru<6, 8, 8>, GruCell, 2);
    case!("lstm 16 -> 16", Lstm<6, 16, 16>, LstmCell, 2);
    case!("lstm 8 -> 16", Lstm<6, 8, 16>, LstmCell, 2);
    case!("lstm 16 -> 8", Lstm<6, 16, 8>, LstmCell, 2);
    case!("lstm 8 -> 8, 3 layers", Lstm<6, 8, 8, 3>, LstmCell, 2);
    case!("rnn tanh", SimpleRnn<10, 4, 6>, tanh(), 2);
    case!("rnn relu", SimpleRnn<10, 4, 6>, relu(), 2);
}

/// Embedding -> LSTM -> GRU -> per-step softmax dense, as `network!` composes layers.
type Tagger = Chain<
    Named<Embedding<10, 20, 6>>,
    Chain<Named<Lstm<10, 6, 8>>, Chain<Named<Gru<10, 8, 7, 2>>, Named<SequenceDense<10, 7, 5>>>>,
>;

fn tagger() -> Tagger {
    Chain {
        first: Named { name: "embed", layer: Embedding::new() },
        rest: Chain {
            first: Named { name: "lstm", layer: Lstm::new(LstmCell) },
            rest: Chain {
                first: Named { name: "gru", layer: Gru::new(GruCell) },
                rest: Named { name: "fc", layer: SequenceDense::new(Activation::Softmax) },
            },
        },
    }
}

#[test]
fn streaming_network_equals_whole_sequence_and_resets() {
    let mut model = Model::from_state(tagger(), vec![0.0; Tagger::PARAMS]).unwrap();
    model.init(9);
    let tokens: Vec<f32> = (0..30).map(|i| ((i * 7 + 3) % 23) as f32).collect(); // ids 20..22 are out of range
    assert_stream_equals_forward("tagger", tagger(), model.params(), &tokens);

    let mut names = vec![];
    model.visit_tensors(&mut |t| names.push(t.path.to_string()));
    assert_eq!(names[0], "embed.weight");
    assert_eq!(names[1], "lstm.weight_ih_l0");
    assert_eq!(names[9], "gru.weight_ih_l1");
    assert_eq!(&names[names.len() - 2..], ["fc.weight", "fc.bias"]);

    // Model::stream, reset, and a given initial state.
    let mut stream = model.stream();
    let first = stream.step(&[3.0].into());
    stream.step(&[4.0].into());
    stream.reset();
    assert_eq!(stream.step(&[3.0].into()), first);
    let state = stream.state_mut();
    state.2 .0.h[0] = [0.5; 8];
    assert_ne!(stream.step(&[3.0].into()), first);
}

#[test]
fn streaming_state_matches_final_state() {
    type Net = Lstm<6, 3, 5, 2>;
    let layer = Net::new(LstmCell);
    let mut params = vec![0.0; Net::PARAMS];
    layer.init(&mut params, &mut [], &mut Rng::new(2));
    let x = uniform(&mut Rng::new(3), 6 * 3, -1.0, 1.0);
    let h0 = uniform(&mut Rng::new(4), Net::STATE_LEN, -1.0, 1.0);
    let c0 = uniform(&mut Rng::new(5), Net::STATE_LEN, -1.0, 1.0);
    let (mut y, mut hn, mut cn) = (vec![0.0; 6 * 5], vec![0.0; 10], vec![0.0; 10]);
    layer.forward_with_state(
        Weights::new(&params, &[]),
        &x,
        Some(States { h: &h0, c: &c0 }),
        &mut y,
        Some(StatesMut { h: &mut hn, c: &mut cn }),
        &mut vec![0.0; Net::SCRATCH],
    );
    let mut stream = Stream::new(layer, &params, &[]);
    for l in 0..2 {
        stream.state_mut().h[l].copy_from_slice(&h0[l * 5..(l + 1) * 5]);
        stream.state_mut().c[l].copy_from_slice(&c0[l * 5..(l + 1) * 5]);
    }
    for t in 0..6 {
        let out = stream.step(&[x[3 * t], x[3 * t + 1], x[3 * t + 2]].into());
        assert_eq!(&out[..], &y[5 * t..5 * t + 5]);
    }
    assert_eq!(stream.state().h.as_flattened(), &hn[..]);
    assert_eq!(stream.state().c.as_flattened(), &cn[..]);
}

// ---------------------------------------------------------------------------------------
// Embedding and SequenceDense

#[test]
fn embedding_looks_up_rows_and_scatters_gradients() {
    type E = Embedding<6, 4, 3>;
    let weight: Vec<f32> = (0..12).map(|i| i as f32).collect();
    let ids = [2.0, 0.0, 2.0, 3.9, -1.0, f32::NAN, /* sample 2 */ 4.0, 1.0, 1e30, -0.5, 0.99, f32::INFINITY];
    let mut y = vec![f32::NAN; 2 * 6 * 3];
    E::new().forward(nn_core::Weights::new(&weight, &[]), &ids, &mut y, &mut []);
    let row = |r: usize| weight[r * 3..r * 3 + 3].to_vec();
    let zero = vec![0.0; 3];
    let expected: Vec<Vec<f32>> = vec![
        row(2),
        row(0),
        row(2),
        row(3),
        zero.clone(),
        zero.clone(),
        zero.clone(),
        row(1),
        zero.clone(),
        zero.clone(),
        row(0),
        zero,
    ];
    assert_eq!(y, expected.concat());

    let mut dy: Vec<f32> = (0..36).map(|i| 0.5 + i as f32).collect();
    let mut s = Standalone::new::<E>(2, 0);
    s.grads.fill(1.0);
    let mut dx = vec![f32::NAN; 12];
    E::new().backward(&ids, &y, &mut dy.clone(), Some(&mut dx), s.backward(&weight));
    let mut expected = vec![1.0f32; 12];
    for (t, &id) in ids.iter().enumerate() {
        if (0.0..4.0).contains(&id) {
            let r = id as usize;
            for j in 0..3 {
                expected[r * 3 + j] += dy[t * 3 + j];
            }
        }
    }
    assert_eq!(s.grads, expected);
    assert_eq!(dx, vec![0.0; 12]);
    dy.fill(0.0);
}

#[test]
fn sequence_dense_matches_reference_and_gradients() {
    type Fc = SequenceDense<4, 5, 3>;
    for activation in [Activation::Identity, Activation::Tanh, Activation::Softmax] {
        let fc = Fc::new(activation);
        let mut rng = Rng::new(60);
        let params = uniform(&mut rng, Fc::PARAMS, -0.7, 0.7);
        let x = uniform(&mut rng, 2 * 4 * 5, -1.0, 1.0);
        let dy = uniform(&mut rng, 2 * 4 * 3, -1.0, 1.0);
        let (w, b) = params.split_at(15);
        let (_, y_ref) = dense_f64(&widen(&x), &widen(w), Some(&widen(b)), activation, 5, 3);
        let mut y = vec![0.0; 24];
        fc.forward(nn_core::Weights::new(&params, &[]), &x, &mut y, &mut []);
        assert_close("sequence dense inference", &y, &y_ref, FORWARD_TOL);
        let mut s = Standalone::of(&fc, 2, 0);
        fc.forward_train(&x, &mut y, s.train(&params));
        assert_close("sequence dense training", &y, &y_ref, FORWARD_TOL);

        let mut dx = vec![0.0; 40];
        fc.backward(&x, &y, &mut dy.clone(), Some(&mut dx), s.backward(&params));
        let loss = |p: &[f64], x: &[f64]| {
            let (_, y) = dense_f64(x, &p[..15], Some(&p[15..]), activation, 5, 3);
            (y.iter().zip(&dy).map(|(y, &w)| y * w as f64).sum::<f64>(), vec![])
        };
        let (p64, x64) = (widen(&params), widen(&x));
        let fd_p = central_differences_f64(&p64, 1e-6, |p| loss(p, &x64));
        let fd_x = central_differences_f64(&x64, 1e-6, |x| loss(&p64, x));
        assert_close_where("sequence dense parameter gradients", &s.grads, &fd_p, GRAD_TOL, 0);
        assert_close_where("sequence dense input gradient", &dx, &fd_x, GRAD_TOL, 0);
    }
    let mut names = vec![];
    Fc::new(Activation::Identity)
        .visit_tensors(None, 0, 0, &mut |t| names.push((t.path.to_string(), t.shape.to_vec())));
    assert_eq!(names, [("weight".to_string(), vec![3, 5]), ("bias".to_string(), vec![3])]);
}

// ---------------------------------------------------------------------------------------
// No allocation

#[test]
fn no_method_allocates() {
    type Net = Bidirectional<LstmCell, 8, 4, 6, 12, 2>;
    let layer = Net::new(LstmCell).with_truncate(3);
    let batch = 4;
    let params = uniform(&mut Rng::new(1), Net::PARAMS, -0.3, 0.3);
    let x = uniform(&mut Rng::new(2), batch * 8 * 4, -1.0, 1.0);
    let mut y = vec![0.0; batch * 8 * 12];
    let mut dy = uniform(&mut Rng::new(3), batch * 8 * 12, -1.0, 1.0);
    let mut scratch = vec![0.0; batch * Net::SCRATCH];
    let mut dx = vec![0.0; x.len()];
    let mut s = Standalone::of(&layer, batch, 4);
    let n = allocations(|| {
        layer.forward(nn_core::Weights::new(&params, &[]), &x, &mut y, &mut scratch);
        layer.forward_train(&x, &mut y, s.train(&params));
        layer.backward(&x, &y, &mut dy, Some(&mut dx), s.backward(&params));
    });
    assert_eq!(n, 0, "recurrent layer methods allocated");

    let mut model = Model::from_state(tagger(), vec![0.0; Tagger::PARAMS]).unwrap();
    model.init(1);
    let mut stream = model.stream();
    let n = allocations(|| {
        for t in 0..100 {
            let y = stream.step(&[(t % 20) as f32].into());
            std::hint::black_box(y);
        }
        stream.reset();
    });
    assert_eq!(n, 0, "streaming allocated");
}

/// Merge modes must agree with the output width.
#[test]
#[should_panic(expected = "OUT must be H")]
fn merge_mode_must_fit_output_width() {
    let _ = Bidirectional::<GruCell, 3, 2, 4, 8>::new(GruCell).with_merge(Merge::Sum);
}

nn_core::network! {
    /// Tags every token: embeddings, a stacked LSTM, per-step layers.
    pub struct StreamTagger: [16] -> [16, 5] {
        embed: Embedding { vocab: 40, dim: 6 },
        lstm: Lstm { units: 12, layers: 2, return_sequences: true },
        drop: Dropout { rate: 0.2 },
        act: Tanh,
        tags: SequenceDense { units: 5, activation: Softmax },
    }
}

/// A `network!` network streams when every layer can (`Model::stream`), bit for bit.
#[test]
fn network_macro_streams_bit_for_bit() {
    let model = Model::<StreamTagger>::new(3);
    let tokens: Vec<f32> = (0..32).map(|i| ((i * 13 + 5) % 41) as f32).collect(); // id 40 is out of range
    assert_stream_equals_forward("StreamTagger", StreamTagger, model.params(), &tokens);
    let one = model.predict_one(&nn_core::Tensor::from_slice(&tokens[..16]).unwrap());
    let mut stream = model.stream();
    for t in 0..16 {
        assert_eq!(&stream.step(&[tokens[t]].into())[..], &one[t * 5..(t + 1) * 5]);
    }
}
