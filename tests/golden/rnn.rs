//! Golden tests of `SimpleRnn`, `Lstm`, `Gru` and their bidirectional forms against
//! `torch.nn.RNN`, `nn.LSTM` and `nn.GRU` (`tools/fixtures/generate.py`, group
//! `recurrent`): one and two layers, one and two directions, with and without an
//! initial state, every merge mode, the last-output form and truncated BPTT.
//!
//! Each fixture holds PyTorch's parameters (its default initialisation), the input, the
//! initial states `h0`/`c0` when the case has them, the (merged) output sequence, the
//! final states `h_n`/`c_n`, a random upstream gradient of the output and the resulting
//! gradients of the input, the initial states and every parameter. Every case runs
//! through `forward_with_state` (inference), `forward_train_with_state` and
//! `backward_with_state`, which must *add* its parameter gradients (the gradient array
//! starts at 0.5). States are `[L D, B, H]` in PyTorch and `[B, L D, H]` here
//! (converted by `Recurrent::state_from_pytorch` / `state_to_pytorch`).
//!
//! Tolerance: `|actual - expected| <= 1e-5 |expected| + 1e-6`, as the other golden
//! tests: the references are exact to half an f32 ulp, so this bounds the library's
//! own f32 rounding through up to 7 recurrent steps and 2 layers.
use crate::fixtures;
use crate::standalone::Standalone;

use fixtures::{assert_close, Fixture};
use nn_core::layers::{
    Bidirectional, Cell, Gru, GruCell, Lstm, LstmCell, Merge, Recurrent, RnnCell, SimpleRnn, States, StatesMut,
};
use nn_core::{Activation, Layer, Shape, Weights};

const RTOL: f32 = 1e-5;
const ATOL: f32 = 1e-6;
/// What the gradient array holds before `backward`, which must add to it.
const GRAD_START: f32 = 0.5;

fn fixtures_in(group: &str) -> Vec<Fixture> {
    let found: Vec<Fixture> =
        Fixture::all().iter().map(|name| Fixture::load(name)).filter(|f| f.meta("group") == group).collect();
    assert!(!found.is_empty(), "no fixture of group `{group}`");
    found
}

/// `[L D, B, H]` (PyTorch) to `[B, L D, H]`, or back with the two counts swapped.
fn swap_outer(values: &[f32], outer: usize, middle: usize, inner: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    for a in 0..outer {
        for b in 0..middle {
            let src = (a * middle + b) * inner;
            let dst = (b * outer + a) * inner;
            out[dst..dst + inner].copy_from_slice(&values[src..src + inner]);
        }
    }
    out
}

/// The final hidden state of each direction from PyTorch's output sequence
/// `[B, T, D H]`: step `T - 1` for the forward direction, step 0 for the backward one.
fn last_of_sequence(seq: &[f32], batch: usize, steps: usize, hidden: usize, dirs: usize) -> Vec<f32> {
    let width = dirs * hidden;
    let mut out = Vec::with_capacity(batch * width);
    for b in 0..batch {
        let row = |t: usize| &seq[(b * steps + t) * width..(b * steps + t + 1) * width];
        out.extend_from_slice(&row(steps - 1)[..hidden]);
        if dirs == 2 {
            out.extend_from_slice(&row(0)[hidden..]);
        }
    }
    out
}

/// A cell and PyTorch's name of its equations (`nn.RNNBase`'s `mode`, with the RNN's
/// nonlinearity).
trait TorchMode: Cell {
    fn mode(&self) -> &'static str;
}

impl TorchMode for RnnCell {
    fn mode(&self) -> &'static str {
        match self.activation {
            Activation::Tanh => "rnn_tanh",
            Activation::Relu => "rnn_relu",
            other => panic!("SimpleRnn with {other:?}"),
        }
    }
}

impl TorchMode for LstmCell {
    fn mode(&self) -> &'static str {
        "lstm"
    }
}

impl TorchMode for GruCell {
    fn mode(&self) -> &'static str {
        "gru"
    }
}

fn check<
    C: TorchMode,
    const T: usize,
    const F: usize,
    const H: usize,
    const L: usize,
    const D: usize,
    const O: usize,
    const S: bool,
>(
    f: &Fixture,
    layer: Recurrent<C, T, F, H, L, D, O, S>,
) where
    Recurrent<C, T, F, H, L, D, O, S>: Layer,
{
    let name = f.name.as_str();
    let batch = f.batch();
    let opt = |key: &str| f.option(key).unwrap_or_else(|| panic!("{name}: no option `{key}`")).to_owned();
    assert_eq!(opt("steps"), T.to_string(), "{name}: steps");
    assert_eq!(opt("input_size"), F.to_string(), "{name}: input_size");
    assert_eq!(opt("hidden_size"), H.to_string(), "{name}: hidden_size");
    assert_eq!(opt("num_layers"), L.to_string(), "{name}: num_layers");
    assert_eq!(opt("bidirectional"), (D == 2).to_string(), "{name}: bidirectional");
    assert_eq!(opt("last"), (!S).to_string(), "{name}: last output");
    assert_eq!(opt("truncate"), layer.truncate.to_string(), "{name}: truncate");
    let merge = match layer.merge {
        Merge::Concat => "concat",
        Merge::Sum => "sum",
        Merge::Mean => "mean",
        Merge::Multiply => "multiply",
    };
    if D == 2 {
        assert_eq!(opt("merge"), merge, "{name}: merge");
    }
    let mode = layer.cell.mode();
    assert_eq!(opt("mode"), mode, "{name}: cell");

    // Parameters by PyTorch name, checking names, shapes and that every one is used.
    let n_params = <Recurrent<C, T, F, H, L, D, O, S> as Layer>::PARAMS;
    let mut params = vec![f32::NAN; n_params];
    let mut expected_grads = vec![f32::NAN; n_params];
    let mut seen = 0;
    layer.visit_tensors(None, 0, 0, &mut |t| {
        let key = t.path.to_string();
        assert_eq!(f.shape(&format!("param.{key}")), t.shape, "{name}: shape of {key}");
        params[t.offset..t.offset + t.len].copy_from_slice(f.values(&format!("param.{key}")));
        expected_grads[t.offset..t.offset + t.len].copy_from_slice(f.values(&format!("grad.{key}")));
        seen += 1;
    });
    let in_fixture = f.tensor_names().filter(|n| n.starts_with("param.")).count();
    assert_eq!(seen, in_fixture, "{name}: tensor count differs from PyTorch's state_dict");
    assert!(params.iter().all(|v| !v.is_nan()), "{name}: a parameter was not filled");

    let ld = L * D;
    let lstm = mode == "lstm";
    // PyTorch's `[L D, B, H]` through the layer's own conversion, checked against the
    // test's transposition.
    let from_torch = |key: &str| {
        let torch = f.values(key);
        let mut state = vec![f32::NAN; torch.len()];
        assert_eq!(
            Recurrent::<C, T, F, H, L, D, O, S>::state_from_pytorch(torch, &mut state),
            Ok(batch),
            "{name}: {key}"
        );
        assert_eq!(state, swap_outer(torch, ld, batch, H), "{name}: {key} in the layer's layout");
        state
    };
    let h0 = f.has("h0").then(|| from_torch("h0"));
    let c0 = f.has("c0").then(|| from_torch("c0"));
    let initial = h0.as_ref().map(|h| States { h, c: c0.as_deref().unwrap_or(&[]) });
    let x = f.values("input");

    let (expected_y, dy) = if S {
        (f.values("output").to_vec(), f.values("grad_output").to_vec())
    } else {
        let g = f.values("grad_output");
        let dy = last_of_sequence(g, batch, T, H, D);
        // Zero everywhere else, so the last-output form sees the whole gradient.
        let total: f32 = g.iter().map(|v| v.abs()).sum();
        let kept: f32 = dy.iter().map(|v| v.abs()).sum();
        assert!((total - kept).abs() <= 1e-6 * total, "{name}: grad_output is not last-step only");
        (last_of_sequence(f.values("output"), batch, T, H, D), dy)
    };
    let expected_hn = swap_outer(f.values("h_n"), ld, batch, H);
    let expected_cn = lstm.then(|| swap_outer(f.values("c_n"), ld, batch, H));

    let out_len = <<Recurrent<C, T, F, H, L, D, O, S> as Layer>::Output as Shape>::LEN;
    let sl = ld * H;
    let scratch_len = <Recurrent<C, T, F, H, L, D, O, S> as Layer>::SCRATCH;
    let mut scratch = vec![f32::NAN; batch * scratch_len];
    let check_forward = |what: &str, y: &[f32], hn: &[f32], cn: &[f32]| {
        assert_close(&format!("{name}: {what} output"), y, &expected_y, RTOL, ATOL);
        assert_close(&format!("{name}: {what} h_n"), hn, &expected_hn, RTOL, ATOL);
        if let Some(cn_ref) = &expected_cn {
            assert_close(&format!("{name}: {what} c_n"), cn, cn_ref, RTOL, ATOL);
        }
    };

    let (mut y, mut hn, mut cn) =
        (vec![f32::NAN; batch * out_len], vec![f32::NAN; batch * sl], vec![f32::NAN; batch * sl]);
    layer.forward_with_state(
        Weights::new(&params, &[]),
        x,
        initial,
        &mut y,
        Some(StatesMut { h: &mut hn, c: &mut cn }),
        &mut scratch,
    );
    check_forward("inference", &y, &hn, &cn);

    let mut s = Standalone::of(&layer, batch, 0);
    y.fill(f32::NAN);
    hn.fill(f32::NAN);
    cn.fill(f32::NAN);
    let cx = s.train(&params);
    layer.forward_train_with_state(x, initial, &mut y, cx, Some(StatesMut { h: &mut hn, c: &mut cn }));
    check_forward("training", &y, &hn, &cn);

    s.grads.fill(GRAD_START);
    let mut dx = vec![f32::NAN; x.len()];
    let (mut dh0, mut dc0) = (vec![f32::NAN; batch * sl], vec![f32::NAN; batch * sl]);
    layer.backward_with_state(x, &dy, Some(&mut dx), s.backward(&params), Some(StatesMut { h: &mut dh0, c: &mut dc0 }));
    s.grads.iter_mut().for_each(|g| *g -= GRAD_START);
    assert_close(&format!("{name}: parameter gradients"), &s.grads, &expected_grads, RTOL, ATOL);
    assert_close(&format!("{name}: input gradient"), &dx, f.values("grad_input"), RTOL, ATOL);
    if f.has("grad_h0") {
        // Compared in PyTorch's layout, through the layer's conversion.
        let mut torch = vec![f32::NAN; dh0.len()];
        assert_eq!(Recurrent::<C, T, F, H, L, D, O, S>::state_to_pytorch(&dh0, &mut torch), Ok(batch));
        assert_close(&format!("{name}: h0 gradient"), &torch, f.values("grad_h0"), RTOL, ATOL);
    }
    if f.has("grad_c0") {
        let expected = swap_outer(f.values("grad_c0"), ld, batch, H);
        assert_close(&format!("{name}: c0 gradient"), &dc0, &expected, RTOL, ATOL);
    }
}

fn tanh() -> RnnCell {
    RnnCell::new(Activation::Tanh)
}

#[test]
fn recurrent_layers_match_pytorch() {
    let mut checked = vec![];
    for f in fixtures_in("recurrent") {
        match f.name.as_str() {
            "rnn_tanh" => check(&f, SimpleRnn::<5, 3, 4>::new(tanh())),
            "rnn_tanh_bidirectional_2layers_h0" => check(&f, Bidirectional::<RnnCell, 5, 3, 4, 8, 2>::new(tanh())),
            "rnn_relu_2layers_h0" => check(&f, SimpleRnn::<5, 3, 4, 2>::new(RnnCell::new(Activation::Relu))),
            "lstm" | "lstm_h0" => check(&f, Lstm::<5, 3, 4>::new(LstmCell)),
            "lstm_2layers_h0" => check(&f, Lstm::<5, 3, 4, 2>::new(LstmCell)),
            "lstm_bidirectional_h0" => check(&f, Bidirectional::<LstmCell, 5, 3, 4, 8>::new(LstmCell)),
            "lstm_bidirectional_2layers" | "lstm_bidirectional_2layers_h0" => {
                check(&f, Bidirectional::<LstmCell, 5, 3, 4, 8, 2>::new(LstmCell))
            }
            "lstm_bidirectional_sum" => {
                check(&f, Bidirectional::<LstmCell, 5, 3, 4, 4>::new(LstmCell).with_merge(Merge::Sum))
            }
            "lstm_last_2layers" => check(&f, Lstm::<5, 3, 4, 2, false>::new(LstmCell)),
            "lstm_bidirectional_last" => check(&f, Bidirectional::<LstmCell, 5, 3, 4, 8, 1, false>::new(LstmCell)),
            "lstm_truncate3_2layers_h0" => check(&f, Lstm::<7, 3, 4, 2>::new(LstmCell).with_truncate(3)),
            "gru" | "gru_h0" => check(&f, Gru::<5, 3, 4>::new(GruCell)),
            "gru_2layers_h0" => check(&f, Gru::<5, 3, 4, 2>::new(GruCell)),
            "gru_bidirectional_h0" => check(&f, Bidirectional::<GruCell, 5, 3, 4, 8>::new(GruCell)),
            "gru_bidirectional_2layers" | "gru_bidirectional_2layers_h0" => {
                check(&f, Bidirectional::<GruCell, 5, 3, 4, 8, 2>::new(GruCell))
            }
            "gru_bidirectional_mean" => {
                check(&f, Bidirectional::<GruCell, 5, 3, 4, 4>::new(GruCell).with_merge(Merge::Mean))
            }
            "gru_bidirectional_multiply_h0" => {
                check(&f, Bidirectional::<GruCell, 5, 3, 4, 4>::new(GruCell).with_merge(Merge::Multiply))
            }
            "gru_last" => check(&f, Gru::<5, 3, 4, 1, false>::new(GruCell)),
            "gru_truncate2_h0" => check(&f, Gru::<7, 3, 4>::new(GruCell).with_truncate(2)),
            other => panic!("no test runs the recurrent fixture `{other}`"),
        }
        checked.push(f.name.clone());
    }
    // One and two layers, both directions, with and without initial state, for each cell.
    for required in [
        "lstm",
        "lstm_2layers_h0",
        "lstm_bidirectional_h0",
        "lstm_bidirectional_2layers_h0",
        "gru",
        "gru_2layers_h0",
        "gru_bidirectional_h0",
        "gru_bidirectional_2layers_h0",
    ] {
        assert!(checked.iter().any(|c| c == required), "missing fixture {required}");
    }
}
