//! Golden tests of recurrent layers that start from a given state inside a `network!`
//! (`gru(x, h0)`, `lstm(x, h0, c0)`) against PyTorch's `gru(x, h0)` and
//! `lstm(x, (h0, c0))` (`tools/fixtures/generate.py`, group `recurrent_state`):
//!
//! - `rnn_state_network`: an LSTM and a two-layer bidirectional GRU whose initial
//!   states are network inputs: output, the gradients of the input, of every initial
//!   state and of every parameter. The fixture's states are in PyTorch's layout
//!   `[L D, B, H]`, converted with `nn_core::layers::state_from_pytorch` (and the state
//!   gradients back with `state_to_pytorch`).
//! - `rnn_state_seq2seq`: an encoder-decoder (the decoder starts from the encoder's
//!   final state) trained by `Fit` with full-batch SGD: the loss before every step
//!   equals PyTorch's and decreases, and the trained parameters equal PyTorch's.
//!
//! Tolerance: as the other recurrent golden tests, `1e-5 |e| + 1e-6`; training, whose
//! f32 rounding compounds over the steps, `1e-4 |e| + 1e-5`.
use crate::fixtures;

use fixtures::{assert_close, Fixture};
use nn_core::layers::{state_from_pytorch, state_to_pytorch};
use nn_core::prelude::*;
use nn_core::{BackwardCtx, Rng, TrainCtx, Weights};

const RTOL: f32 = 1e-5;
const ATOL: f32 = 1e-6;

network! {
    /// An LSTM from `(h0, c0)`, then two bidirectional GRU layers from `g0`.
    pub struct StateNetwork: ([5, 3], [1, 4], [1, 4], [4, 3]) -> [5, 6] graph {
        input x, h0, c0, g0;
        seq = lstm(x, h0, c0): Lstm { units: 4, return_sequences: true };
        out = gru(seq, g0): Gru { units: 3, layers: 2, bidirectional: true, return_sequences: true };
        output out;
    }
}

network! {
    /// The decoder starts from the encoder's final hidden state.
    pub struct Seq2Seq: ([6, 2], [4, 3]) -> [4, 2] graph {
        input src, tgt;
        h = enc(src): Gru { units: 5 };
        d = dec(tgt, h): Gru { units: 5, return_sequences: true };
        out = head(d): SequenceDense { units: 2 };
        output out;
    }
}

/// A state of `rows` rows of `hidden` in the fixture's PyTorch layout, per sample.
fn from_torch(f: &Fixture, name: &str, rows: usize, hidden: usize) -> Vec<f32> {
    let torch = f.values(name);
    let mut state = vec![0.0; torch.len()];
    assert_eq!(state_from_pytorch(rows, hidden, torch, &mut state), Ok(f.batch()));
    state
}

/// Copies every `prefix.<path>` tensor of the fixture into a parameter array.
fn params_of(
    f: &Fixture,
    prefix: &str,
    len: usize,
    visit: impl Fn(&mut dyn FnMut(&nn_core::TensorInfo<'_>)),
) -> Vec<f32> {
    let mut params = vec![f32::NAN; len];
    visit(&mut |t| {
        let key = format!("{prefix}.{}", t.path);
        params[t.offset..t.offset + t.len].copy_from_slice(f.values(&key));
    });
    assert!(params.iter().all(|v| v.is_finite()), "every parameter is in the fixture");
    params
}

#[test]
fn network_with_initial_states_matches_pytorch() {
    let f = Fixture::load("rnn_state_network");
    let net = StateNetwork;
    let params = params_of(&f, "param", StateNetwork::PARAMS, |g| net.visit_tensors(None, 0, 0, g));
    let batch = f.batch();
    let x = f.values("input");
    let (h0, c0, g0) = (from_torch(&f, "h0", 1, 4), from_torch(&f, "c0", 1, 4), from_torch(&f, "g0", 4, 3));
    let inputs = [x, &h0[..], &c0[..], &g0[..]];

    let mut y = vec![0.0; batch * 30];
    let mut scratch = vec![f32::NAN; batch * StateNetwork::SCRATCH];
    net.forward(Weights::new(&params, &[]), inputs, [&mut y], &mut scratch);
    assert_close("inference output", &y, f.values("output"), RTOL, ATOL);

    let mut cache = vec![0.0; batch * StateNetwork::CACHE];
    let mut y_train = vec![0.0; y.len()];
    let cx = TrainCtx {
        params: &params,
        buffers: &mut [],
        cache: &mut cache,
        scratch: &mut scratch,
        rng: &mut Rng::new(0),
        training: true,
    };
    net.forward_train(inputs, [&mut y_train], cx);
    assert_close("training output", &y_train, f.values("output"), RTOL, ATOL);

    let mut dy = f.values("grad_output").to_vec();
    let mut dx = vec![f32::NAN; x.len()];
    let (mut dh0, mut dc0, mut dg0) = (vec![f32::NAN; h0.len()], vec![f32::NAN; c0.len()], vec![f32::NAN; g0.len()]);
    let mut grads = vec![0.0; StateNetwork::PARAMS];
    scratch.fill(f32::NAN);
    let cx = BackwardCtx {
        params: &params,
        cache: &cache,
        grads: &mut grads,
        frozen: nn_core::layer::Frozen::NONE,
        scratch: &mut scratch,
    };
    net.backward(inputs, [&y_train], [&mut dy], [Some(&mut dx), Some(&mut dh0), Some(&mut dc0), Some(&mut dg0)], cx);
    assert_close("grad_input", &dx, f.values("grad_input"), RTOL, ATOL);
    for (name, rows, hidden, grad) in [("grad_h0", 1, 4, &dh0), ("grad_c0", 1, 4, &dc0), ("grad_g0", 4, 3, &dg0)] {
        let mut torch = vec![0.0; grad.len()];
        assert_eq!(state_to_pytorch(rows, hidden, grad, &mut torch), Ok(batch));
        assert_close(name, &torch, f.values(name), RTOL, ATOL);
    }
    net.visit_tensors(None, 0, 0, &mut |t| {
        let key = format!("grad.{}", t.path);
        assert_close(&key, &grads[t.offset..t.offset + t.len], f.values(&key), RTOL, ATOL);
    });
}

#[test]
fn encoder_decoder_trains_by_fit_as_in_pytorch() {
    let f = Fixture::load("rnn_state_seq2seq");
    let steps = f.values("loss").len();
    let mut model = Model::<Seq2Seq>::zeros();
    let initial = params_of(&f, "param", Seq2Seq::PARAMS, |g| model.visit_tensors(g));
    model.params_mut().copy_from_slice(&initial);
    let data = Dataset::multi::<Seq2Seq>((f.values("src"), f.values("tgt")), (f.values("target"),)).unwrap();
    let mut fit = Fit::new(Sgd::new(0.5), MeanSquaredError).epochs(steps).batch_size(f.batch()).shuffle(false);
    let history = fit.run(&mut model, &data, None).unwrap();
    let losses = history.series("loss");
    assert_close("loss before each step", &losses, f.values("loss"), 1e-4, 1e-5);
    assert!(losses.windows(2).all(|w| w[1] < w[0]), "the loss decreases at every step: {losses:?}");
    assert!(losses[steps - 1] < 0.95 * losses[0], "{losses:?}");
    let trained = params_of(&f, "trained", Seq2Seq::PARAMS, |g| model.visit_tensors(g));
    assert_close("trained parameters", model.params(), &trained, 1e-4, 1e-5);
}
