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
//! - `rnn_state_lstm_encoder_decoder`, `rnn_state_gru_bidirectional_encoder`: encoders
//!   that return their final state (`(_, h, c) = enc(src)`, `(_, h) = enc(src)`, a
//!   two-layer bidirectional GRU) into a decoder; output, `h_n`, `c_n`, gradients
//!   flowing into them from the decoder and from outside, and `Fit` as above.
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

// Encoders that return their final state into a decoder (`(y, h, c) = lstm(x)`,
// `(y, h) = gru(x)`; PyTorch's `_, (h_n, c_n) = lstm(x)`): fixtures
// `rnn_state_lstm_encoder_decoder` and `rnn_state_gru_bidirectional_encoder`. The
// final states are outputs as well, so that gradients flow into them both from the
// decoder and from outside; the same layers with the decoder's output alone train by
// `Fit`.

network! {
    /// The LSTM decoder starts from the encoder's `(h_n, c_n)`.
    pub struct LstmEncoderDecoder: ([6, 2], [4, 3]) -> ([4, 2], [4], [4]) graph {
        input src, tgt;
        (_, h, c) = enc(src): Lstm { units: 4 };
        d = dec(tgt, h, c): Lstm { units: 4, return_sequences: true };
        out = head(d): SequenceDense { units: 2 };
        output out, h, c;
    }
}

network! {
    /// [`LstmEncoderDecoder`] with the decoder's output alone.
    pub struct LstmEncoderDecoderFit: ([6, 2], [4, 3]) -> [4, 2] graph {
        input src, tgt;
        (_, h, c) = enc(src): Lstm { units: 4 };
        d = dec(tgt, h, c): Lstm { units: 4, return_sequences: true };
        out = head(d): SequenceDense { units: 2 };
        output out;
    }
}

network! {
    /// A two-layer bidirectional GRU decoder starts from the same encoder's `h_n`,
    /// `[layers x directions, units]` per sample.
    pub struct GruBidirectionalEncoder: ([6, 2], [4, 3]) -> ([4, 2], [4, 3]) graph {
        input src, tgt;
        (_, h) = enc(src): Gru { units: 3, layers: 2, bidirectional: true };
        d = dec(tgt, h): Gru { units: 3, layers: 2, bidirectional: true, return_sequences: true };
        out = head(d): SequenceDense { units: 2 };
        output out, h;
    }
}

network! {
    /// [`GruBidirectionalEncoder`] with the decoder's output alone.
    pub struct GruBidirectionalEncoderFit: ([6, 2], [4, 3]) -> [4, 2] graph {
        input src, tgt;
        (_, h) = enc(src): Gru { units: 3, layers: 2, bidirectional: true };
        d = dec(tgt, h): Gru { units: 3, layers: 2, bidirectional: true, return_sequences: true };
        out = head(d): SequenceDense { units: 2 };
        output out;
    }
}

/// A final state of the network (`[batch, rows, hidden]`) in PyTorch's layout.
fn to_torch(state: &[f32], rows: usize, hidden: usize, batch: usize) -> Vec<f32> {
    let mut torch = vec![0.0; state.len()];
    assert_eq!(state_to_pytorch(rows, hidden, state, &mut torch), Ok(batch));
    torch
}

/// Trains `$net` by `Fit` from the fixture's parameters and compares the loss before
/// every step and the trained parameters with PyTorch's.
macro_rules! fits_as_in_pytorch {
    ($f:expr, $net:ty) => {{
        let f = $f;
        let steps = f.values("loss").len();
        let mut model = Model::<$net>::zeros();
        let initial = params_of(f, "param", <$net>::PARAMS, |g| model.visit_tensors(g));
        model.params_mut().copy_from_slice(&initial);
        let data = Dataset::multi::<$net>((f.values("src"), f.values("tgt")), (f.values("target"),)).unwrap();
        let mut fit = Fit::new(Sgd::new(0.5), MeanSquaredError).epochs(steps).batch_size(f.batch()).shuffle(false);
        let history = fit.run(&mut model, &data, None).unwrap();
        let losses = history.series("loss");
        assert_close("loss before each step", &losses, f.values("loss"), 1e-4, 1e-5);
        assert!(losses.windows(2).all(|w| w[1] < w[0]), "the loss decreases at every step: {losses:?}");
        let trained = params_of(f, "trained", <$net>::PARAMS, |g| model.visit_tensors(g));
        assert_close("trained parameters", model.params(), &trained, 1e-4, 1e-5);
    }};
}

#[test]
fn lstm_encoder_final_state_into_a_decoder_matches_pytorch() {
    let f = Fixture::load("rnn_state_lstm_encoder_decoder");
    let net = LstmEncoderDecoder;
    let params = params_of(&f, "param", LstmEncoderDecoder::PARAMS, |g| net.visit_tensors(None, 0, 0, g));
    let batch = f.batch();
    let inputs = [f.values("src"), f.values("tgt")];
    let (mut out, mut h, mut c) = (vec![0.0; batch * 8], vec![0.0; batch * 4], vec![0.0; batch * 4]);
    let mut scratch = vec![f32::NAN; batch * LstmEncoderDecoder::SCRATCH];
    net.forward(Weights::new(&params, &[]), inputs, [&mut out, &mut h, &mut c], &mut scratch);
    assert_close("inference output", &out, f.values("output"), RTOL, ATOL);
    assert_close("inference h_n", &to_torch(&h, 1, 4, batch), f.values("h_n"), RTOL, ATOL);
    assert_close("inference c_n", &to_torch(&c, 1, 4, batch), f.values("c_n"), RTOL, ATOL);

    let mut cache = vec![0.0; batch * LstmEncoderDecoder::CACHE];
    let cx = TrainCtx {
        params: &params,
        buffers: &mut [],
        cache: &mut cache,
        scratch: &mut scratch,
        rng: &mut Rng::new(0),
        training: true,
    };
    net.forward_train(inputs, [&mut out, &mut h, &mut c], cx);
    assert_close("training output", &out, f.values("output"), RTOL, ATOL);
    assert_close("training h_n", &to_torch(&h, 1, 4, batch), f.values("h_n"), RTOL, ATOL);
    assert_close("training c_n", &to_torch(&c, 1, 4, batch), f.values("c_n"), RTOL, ATOL);

    let mut d_out = f.values("grad_output").to_vec();
    let (mut dh, mut dc) = (vec![0.0; h.len()], vec![0.0; c.len()]);
    from_pytorch_into(f.values("grad_h_n"), 1, 4, &mut dh);
    from_pytorch_into(f.values("grad_c_n"), 1, 4, &mut dc);
    let (mut d_src, mut d_tgt) = (vec![f32::NAN; inputs[0].len()], vec![f32::NAN; inputs[1].len()]);
    let mut grads = vec![0.0; LstmEncoderDecoder::PARAMS];
    scratch.fill(f32::NAN);
    let cx = BackwardCtx {
        params: &params,
        cache: &cache,
        grads: &mut grads,
        frozen: nn_core::layer::Frozen::NONE,
        scratch: &mut scratch,
    };
    net.backward(inputs, [&out, &h, &c], [&mut d_out, &mut dh, &mut dc], [Some(&mut d_src), Some(&mut d_tgt)], cx);
    assert_close("grad_src", &d_src, f.values("grad_src"), RTOL, ATOL);
    assert_close("grad_tgt", &d_tgt, f.values("grad_tgt"), RTOL, ATOL);
    net.visit_tensors(None, 0, 0, &mut |t| {
        let key = format!("grad.{}", t.path);
        assert_close(&key, &grads[t.offset..t.offset + t.len], f.values(&key), RTOL, ATOL);
    });

    fits_as_in_pytorch!(&f, LstmEncoderDecoderFit);
}

#[test]
fn stacked_bidirectional_gru_encoder_final_state_into_a_decoder_matches_pytorch() {
    let f = Fixture::load("rnn_state_gru_bidirectional_encoder");
    let net = GruBidirectionalEncoder;
    let params = params_of(&f, "param", GruBidirectionalEncoder::PARAMS, |g| net.visit_tensors(None, 0, 0, g));
    let batch = f.batch();
    let inputs = [f.values("src"), f.values("tgt")];
    let (mut out, mut h) = (vec![0.0; batch * 8], vec![0.0; batch * 12]);
    let mut scratch = vec![f32::NAN; batch * GruBidirectionalEncoder::SCRATCH];
    net.forward(Weights::new(&params, &[]), inputs, [&mut out, &mut h], &mut scratch);
    assert_close("inference output", &out, f.values("output"), RTOL, ATOL);
    assert_close("inference h_n", &to_torch(&h, 4, 3, batch), f.values("h_n"), RTOL, ATOL);

    let mut cache = vec![0.0; batch * GruBidirectionalEncoder::CACHE];
    let cx = TrainCtx {
        params: &params,
        buffers: &mut [],
        cache: &mut cache,
        scratch: &mut scratch,
        rng: &mut Rng::new(0),
        training: true,
    };
    net.forward_train(inputs, [&mut out, &mut h], cx);
    assert_close("training output", &out, f.values("output"), RTOL, ATOL);
    assert_close("training h_n", &to_torch(&h, 4, 3, batch), f.values("h_n"), RTOL, ATOL);

    let mut d_out = f.values("grad_output").to_vec();
    let mut dh = vec![0.0; h.len()];
    from_pytorch_into(f.values("grad_h_n"), 4, 3, &mut dh);
    let (mut d_src, mut d_tgt) = (vec![f32::NAN; inputs[0].len()], vec![f32::NAN; inputs[1].len()]);
    let mut grads = vec![0.0; GruBidirectionalEncoder::PARAMS];
    scratch.fill(f32::NAN);
    let cx = BackwardCtx {
        params: &params,
        cache: &cache,
        grads: &mut grads,
        frozen: nn_core::layer::Frozen::NONE,
        scratch: &mut scratch,
    };
    net.backward(inputs, [&out, &h], [&mut d_out, &mut dh], [Some(&mut d_src), Some(&mut d_tgt)], cx);
    assert_close("grad_src", &d_src, f.values("grad_src"), RTOL, ATOL);
    assert_close("grad_tgt", &d_tgt, f.values("grad_tgt"), RTOL, ATOL);
    net.visit_tensors(None, 0, 0, &mut |t| {
        let key = format!("grad.{}", t.path);
        assert_close(&key, &grads[t.offset..t.offset + t.len], f.values(&key), RTOL, ATOL);
    });

    fits_as_in_pytorch!(&f, GruBidirectionalEncoderFit);
}

/// Copies a state gradient in PyTorch's layout into `state` (`[batch, rows, hidden]`).
fn from_pytorch_into(torch: &[f32], rows: usize, hidden: usize, state: &mut [f32]) {
    assert!(state_from_pytorch(rows, hidden, torch, state).is_ok());
}
