//! Recurrent layers that start from a given state inside a `network!`
//! (`gru(x, h0)`, `lstm(x, h0, c0)`): the gradients of the inputs (the initial state
//! among them) and of the parameters against central differences of the forward pass,
//! with a state value used several times (its gradients add up) and one computed by
//! another layer; a layer given a state computes what the layer's own
//! `forward_with_state` computes.
use nn_core::layer::Frozen;
use nn_core::layers::{Gru, GruCell, States};
use nn_core::prelude::*;
use nn_core::{BackwardCtx, Rng, TrainCtx, Weights};

network! {
    /// `h0` starts both recurrent layers and feeds the dense layer that makes `c0`.
    pub struct SharedState: ([4, 3], [3]) -> [4, 3] graph {
        input x, h0;
        c0 = init(h0): Dense { units: 3, activation: Tanh };
        a = lstm(x, h0, c0): Lstm { units: 3, return_sequences: true };
        b = gru(a, h0): Gru { units: 3, return_sequences: true };
        s = add(a, b);
        output s;
    }
}

network! {
    /// The decoder starts from the encoder's last output (one input, so a `Layer`).
    pub struct EncoderDecoder: [4, 2] -> [4, 6] graph {
        input x;
        h = enc(x): Gru { units: 3, layers: 2, bidirectional: true, merge: Sum };
        hh = both(h): Dense { units: 12 };
        st = shape(hh): Reshape { shape: [4, 3] };
        y = dec(x, st): Gru { units: 3, layers: 2, bidirectional: true, return_sequences: true };
        output y;
    }
}

fn draw(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.uniform_in(-1.0, 1.0)).collect()
}

/// Central differences of `f` at every element of `v`, with step `h`.
fn differences(v: &[f32], h: f32, mut f: impl FnMut(&[f32]) -> f64) -> Vec<f64> {
    let mut v = v.to_vec();
    (0..v.len())
        .map(|i| {
            let keep = v[i];
            v[i] = keep + h;
            let up = f(&v);
            v[i] = keep - h;
            let down = f(&v);
            v[i] = keep;
            (up - down) / ((keep + h) as f64 - (keep - h) as f64)
        })
        .collect()
}

fn assert_near(what: &str, actual: &[f32], expected: &[f64]) {
    assert_eq!(actual.len(), expected.len(), "{what}: lengths");
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        assert!((a as f64 - e).abs() <= 2e-3 + 2e-3 * e.abs(), "{what}[{i}]: {a} against {e}");
    }
}

fn dot(y: &[f32], dy: &[f32]) -> f64 {
    y.iter().zip(dy).map(|(&a, &b)| a as f64 * b as f64).sum()
}

/// `sum dy * y` of [`SharedState`] through `forward_train`.
fn shared_loss(params: &[f32], x: &[f32], h0: &[f32], dy: &[f32]) -> f64 {
    let batch = h0.len() / 3;
    let mut y = vec![0.0; dy.len()];
    let mut cache = vec![0.0; batch * SharedState::CACHE];
    let mut scratch = vec![0.0; batch * SharedState::SCRATCH];
    let cx = TrainCtx {
        params,
        buffers: &mut [],
        cache: &mut cache,
        scratch: &mut scratch,
        rng: &mut Rng::new(1),
        training: true,
    };
    SharedState.forward_train([x, h0], [&mut y], cx);
    dot(&y, dy)
}

#[test]
fn gradient_of_an_initial_state_used_three_times_matches_finite_differences() {
    let batch = 3;
    let mut rng = Rng::new(5);
    let mut params = vec![0.0; SharedState::PARAMS];
    SharedState.init(&mut params, &mut [], &mut rng);
    params.iter_mut().for_each(|p| *p += rng.uniform_in(-0.3, 0.3));
    let (x, h0, dy) = (draw(&mut rng, batch * 12), draw(&mut rng, batch * 3), draw(&mut rng, batch * 12));

    let mut y = vec![0.0; dy.len()];
    let mut cache = vec![0.0; batch * SharedState::CACHE];
    let mut scratch = vec![f32::NAN; batch * SharedState::SCRATCH];
    let cx = TrainCtx {
        params: &params,
        buffers: &mut [],
        cache: &mut cache,
        scratch: &mut scratch,
        rng: &mut Rng::new(1),
        training: true,
    };
    SharedState.forward_train([&x, &h0], [&mut y], cx);
    // Inference agrees to rounding (it projects with dot products, training with GEMM).
    let mut z = vec![0.0; y.len()];
    SharedState.forward(Weights::new(&params, &[]), [&x, &h0], [&mut z], &mut scratch);
    assert_near("inference", &z, &y.iter().map(|&v| v as f64).collect::<Vec<_>>());

    let (mut dx, mut dh0) = (vec![f32::NAN; x.len()], vec![f32::NAN; h0.len()]);
    let mut grads = vec![0.0; SharedState::PARAMS];
    let mut g = dy.clone();
    scratch.fill(f32::NAN);
    let cx =
        BackwardCtx { params: &params, cache: &cache, grads: &mut grads, frozen: Frozen::NONE, scratch: &mut scratch };
    SharedState.backward([&x, &h0], [&y], [&mut g], [Some(&mut dx), Some(&mut dh0)], cx);
    let h = 1e-2;
    assert_near("dh0", &dh0, &differences(&h0, h, |h0| shared_loss(&params, &x, h0, &dy)));
    assert_near("dx", &dx, &differences(&x, h, |x| shared_loss(&params, x, &h0, &dy)));
    assert_near("dparams", &grads, &differences(&params, h, |p| shared_loss(p, &x, &h0, &dy)));
    assert!(dh0.iter().all(|d| d.abs() > 1e-4), "every element of h0 matters: {dh0:?}");
}

/// `sum dy * y` of [`EncoderDecoder`] through `forward_train`.
fn encoder_decoder_loss(params: &[f32], x: &[f32], dy: &[f32]) -> f64 {
    let batch = x.len() / 8;
    let mut y = vec![0.0; dy.len()];
    let mut cache = vec![0.0; batch * EncoderDecoder::CACHE];
    let mut scratch = vec![0.0; batch * EncoderDecoder::SCRATCH];
    let cx = TrainCtx {
        params,
        buffers: &mut [],
        cache: &mut cache,
        scratch: &mut scratch,
        rng: &mut Rng::new(1),
        training: true,
    };
    EncoderDecoder.forward_train(x, &mut y, cx);
    dot(&y, dy)
}

#[test]
fn encoder_state_into_a_stacked_bidirectional_decoder_matches_finite_differences() {
    let batch = 2;
    let mut rng = Rng::new(8);
    let mut params = vec![0.0; EncoderDecoder::PARAMS];
    EncoderDecoder.init(&mut params, &mut [], &mut rng);
    params.iter_mut().for_each(|p| *p += rng.uniform_in(-0.3, 0.3));
    let (x, dy) = (draw(&mut rng, batch * 8), draw(&mut rng, batch * 24));
    let mut y = vec![0.0; dy.len()];
    let mut cache = vec![0.0; batch * EncoderDecoder::CACHE];
    let mut scratch = vec![f32::NAN; batch * EncoderDecoder::SCRATCH];
    let cx = TrainCtx {
        params: &params,
        buffers: &mut [],
        cache: &mut cache,
        scratch: &mut scratch,
        rng: &mut Rng::new(1),
        training: true,
    };
    EncoderDecoder.forward_train(&x, &mut y, cx);
    let mut dx = vec![f32::NAN; x.len()];
    let mut grads = vec![0.0; EncoderDecoder::PARAMS];
    let mut g = dy.clone();
    scratch.fill(f32::NAN);
    let cx =
        BackwardCtx { params: &params, cache: &cache, grads: &mut grads, frozen: Frozen::NONE, scratch: &mut scratch };
    EncoderDecoder.backward(&x, &y, &mut g, Some(&mut dx), cx);
    let h = 1e-2;
    assert_near("dx", &dx, &differences(&x, h, |x| encoder_decoder_loss(&params, x, &dy)));
    assert_near("dparams", &grads, &differences(&params, h, |p| encoder_decoder_loss(p, &x, &dy)));
}

network! {
    /// A GRU from a state input: the layer's `forward_with_state`, nothing else.
    pub struct FromState: ([4, 2], [2, 3]) -> [4, 3] graph {
        input x, h0;
        y = gru(x, h0): Gru { units: 3, layers: 2, return_sequences: true };
        output y;
    }
}

#[test]
fn a_network_state_input_is_the_layers_initial_state() {
    let batch = 2;
    let mut rng = Rng::new(3);
    let mut params = vec![0.0; FromState::PARAMS];
    FromState.init(&mut params, &mut [], &mut rng);
    let (x, h0) = (draw(&mut rng, batch * 8), draw(&mut rng, batch * 6));
    let mut y = vec![0.0; batch * 12];
    let mut scratch = vec![0.0; batch * FromState::SCRATCH];
    FromState.forward(Weights::new(&params, &[]), [&x, &h0], [&mut y], &mut scratch);

    type G = Gru<4, 2, 3, 2>;
    let layer = G::new(GruCell);
    let mut expected = vec![0.0; y.len()];
    let mut layer_scratch = vec![0.0; G::SCRATCH];
    let initial = Some(States { h: &h0, c: &[] });
    layer.forward_with_state(Weights::new(&params, &[]), &x, initial, &mut expected, None, &mut layer_scratch);
    assert_eq!(y, expected);
    // And not what it computes from zeros.
    layer.forward(Weights::new(&params, &[]), &x, &mut expected, &mut layer_scratch);
    assert_ne!(y, expected);
}

// Final states as values: `(y, h) = gru(x)`, `(y, h, c) = lstm(x)` (Keras's
// `return_state=True`), their gradients flowing back into the layer that made them.

network! {
    /// The decoder starts from the encoder's `(h, c)`; `c` also feeds a dense head, and
    /// the encoder's own output sequence is added to the decoder's.
    pub struct LstmStates: ([4, 2], [4, 3]) -> ([4, 3], [2]) graph {
        input x, t;
        (e, h, c) = enc(x): Lstm { units: 3, return_sequences: true };
        d = dec(t, h, c): Lstm { units: 3, return_sequences: true };
        y = add(e, d);
        z = head(c): Dense { units: 2 };
        output y, z;
    }
}

network! {
    /// A two-layer bidirectional encoder's `h_n` (`[4, 3]`: layers x directions) starts
    /// the decoder and is itself an output; the encoder's last output is discarded.
    pub struct GruStates: ([5, 2], [4, 3]) -> ([4, 6], [4, 3]) graph {
        input x, t;
        (_, h) = enc(x): Gru { units: 3, layers: 2, bidirectional: true };
        y = dec(t, h): Gru { units: 3, layers: 2, bidirectional: true, return_sequences: true };
        output y, h;
    }
}

/// `sum dy * y + sum dz * z` of [`LstmStates`] through `forward_train`.
fn lstm_states_loss(params: &[f32], x: &[f32], t: &[f32], dy: &[f32], dz: &[f32]) -> f64 {
    let batch = x.len() / 8;
    let (mut y, mut z) = (vec![0.0; dy.len()], vec![0.0; dz.len()]);
    let mut cache = vec![0.0; batch * LstmStates::CACHE];
    let mut scratch = vec![0.0; batch * LstmStates::SCRATCH];
    let cx = TrainCtx {
        params,
        buffers: &mut [],
        cache: &mut cache,
        scratch: &mut scratch,
        rng: &mut Rng::new(1),
        training: true,
    };
    LstmStates.forward_train([x, t], [&mut y, &mut z], cx);
    dot(&y, dy) + dot(&z, dz)
}

#[test]
fn gradients_through_an_lstms_final_h_and_c_match_finite_differences() {
    let batch = 3;
    let mut rng = Rng::new(11);
    let mut params = vec![0.0; LstmStates::PARAMS];
    LstmStates.init(&mut params, &mut [], &mut rng);
    params.iter_mut().for_each(|p| *p += rng.uniform_in(-0.3, 0.3));
    let (x, t) = (draw(&mut rng, batch * 8), draw(&mut rng, batch * 12));
    let (dy, dz) = (draw(&mut rng, batch * 12), draw(&mut rng, batch * 2));

    let (mut y, mut z) = (vec![0.0; dy.len()], vec![0.0; dz.len()]);
    let mut cache = vec![0.0; batch * LstmStates::CACHE];
    let mut scratch = vec![f32::NAN; batch * LstmStates::SCRATCH];
    let cx = TrainCtx {
        params: &params,
        buffers: &mut [],
        cache: &mut cache,
        scratch: &mut scratch,
        rng: &mut Rng::new(1),
        training: true,
    };
    LstmStates.forward_train([&x, &t], [&mut y, &mut z], cx);
    let (mut y_inf, mut z_inf) = (vec![0.0; y.len()], vec![0.0; z.len()]);
    LstmStates.forward(Weights::new(&params, &[]), [&x, &t], [&mut y_inf, &mut z_inf], &mut scratch);
    assert_near("inference y", &y_inf, &y.iter().map(|&v| v as f64).collect::<Vec<_>>());
    assert_near("inference z", &z_inf, &z.iter().map(|&v| v as f64).collect::<Vec<_>>());

    let (mut dx, mut dt) = (vec![f32::NAN; x.len()], vec![f32::NAN; t.len()]);
    let mut grads = vec![0.0; LstmStates::PARAMS];
    let (mut gy, mut gz) = (dy.clone(), dz.clone());
    scratch.fill(f32::NAN);
    let cx =
        BackwardCtx { params: &params, cache: &cache, grads: &mut grads, frozen: Frozen::NONE, scratch: &mut scratch };
    LstmStates.backward([&x, &t], [&y, &z], [&mut gy, &mut gz], [Some(&mut dx), Some(&mut dt)], cx);
    let h = 1e-2;
    assert_near("dx", &dx, &differences(&x, h, |x| lstm_states_loss(&params, x, &t, &dy, &dz)));
    assert_near("dt", &dt, &differences(&t, h, |t| lstm_states_loss(&params, &x, t, &dy, &dz)));
    assert_near("dparams", &grads, &differences(&params, h, |p| lstm_states_loss(p, &x, &t, &dy, &dz)));
}

/// `sum dy * y + sum dh * h` of [`GruStates`] through `forward_train`.
fn gru_states_loss(params: &[f32], x: &[f32], t: &[f32], dy: &[f32], dh: &[f32]) -> f64 {
    let batch = x.len() / 10;
    let (mut y, mut h) = (vec![0.0; dy.len()], vec![0.0; dh.len()]);
    let mut cache = vec![0.0; batch * GruStates::CACHE];
    let mut scratch = vec![0.0; batch * GruStates::SCRATCH];
    let cx = TrainCtx {
        params,
        buffers: &mut [],
        cache: &mut cache,
        scratch: &mut scratch,
        rng: &mut Rng::new(1),
        training: true,
    };
    GruStates.forward_train([x, t], [&mut y, &mut h], cx);
    dot(&y, dy) + dot(&h, dh)
}

#[test]
fn gradients_through_a_stacked_bidirectional_grus_final_state_match_finite_differences() {
    let batch = 2;
    let mut rng = Rng::new(12);
    let mut params = vec![0.0; GruStates::PARAMS];
    GruStates.init(&mut params, &mut [], &mut rng);
    params.iter_mut().for_each(|p| *p += rng.uniform_in(-0.3, 0.3));
    let (x, t) = (draw(&mut rng, batch * 10), draw(&mut rng, batch * 12));
    let (dy, dh) = (draw(&mut rng, batch * 24), draw(&mut rng, batch * 12));

    let (mut y, mut hn) = (vec![0.0; dy.len()], vec![0.0; dh.len()]);
    let mut cache = vec![0.0; batch * GruStates::CACHE];
    let mut scratch = vec![f32::NAN; batch * GruStates::SCRATCH];
    let cx = TrainCtx {
        params: &params,
        buffers: &mut [],
        cache: &mut cache,
        scratch: &mut scratch,
        rng: &mut Rng::new(1),
        training: true,
    };
    GruStates.forward_train([&x, &t], [&mut y, &mut hn], cx);

    // `h` is the encoder layer's final state: what `forward_with_state` returns.
    type G = nn_core::layers::Bidirectional<GruCell, 5, 2, 3, 6, 2, false>;
    let layer = G::new(GruCell);
    let (mut last, mut expected) = (vec![0.0; batch * 6], vec![0.0; hn.len()]);
    let mut layer_scratch = vec![0.0; batch * G::SCRATCH];
    let finals = Some(nn_core::layers::StatesMut { h: &mut expected, c: &mut [] });
    layer.forward_with_state(Weights::new(&params, &[]), &x, None, &mut last, finals, &mut layer_scratch);
    assert_near("h_n", &hn, &expected.iter().map(|&v| v as f64).collect::<Vec<_>>());
    assert!(hn.iter().all(|v| v.abs() > 1e-4), "{hn:?}");

    let (mut dx, mut dt) = (vec![f32::NAN; x.len()], vec![f32::NAN; t.len()]);
    let mut grads = vec![0.0; GruStates::PARAMS];
    let (mut gy, mut gh) = (dy.clone(), dh.clone());
    scratch.fill(f32::NAN);
    let cx =
        BackwardCtx { params: &params, cache: &cache, grads: &mut grads, frozen: Frozen::NONE, scratch: &mut scratch };
    GruStates.backward([&x, &t], [&y, &hn], [&mut gy, &mut gh], [Some(&mut dx), Some(&mut dt)], cx);
    let h = 1e-2;
    assert_near("dx", &dx, &differences(&x, h, |x| gru_states_loss(&params, x, &t, &dy, &dh)));
    assert_near("dt", &dt, &differences(&t, h, |t| gru_states_loss(&params, &x, t, &dy, &dh)));
    assert_near("dparams", &grads, &differences(&params, h, |p| gru_states_loss(p, &x, &t, &dy, &dh)));
}

const UNITS: usize = 3;

network! {
    /// Final states with a `const` size (shapes the type system checks) and of a
    /// `SimpleRnn`; for one layer in one direction `h` is the last output.
    pub struct ConstStates: [5, 2] -> ([3], [3], [3]) graph {
        input x;
        (y, h) = rnn(x): SimpleRnn { units: UNITS };
        (_, g) = gru(x): Gru { units: UNITS, return_sequences: true };
        output y, h, g;
    }
}

#[test]
fn a_final_state_of_one_layer_is_its_last_output_also_for_const_sizes() {
    let batch = 2;
    let mut rng = Rng::new(4);
    let mut params = vec![0.0; ConstStates::PARAMS];
    ConstStates.init(&mut params, &mut [], &mut rng);
    let x = draw(&mut rng, batch * 10);
    let (mut y, mut h, mut g) = (vec![0.0; batch * 3], vec![0.0; batch * 3], vec![0.0; batch * 3]);
    let mut scratch = vec![0.0; batch * ConstStates::SCRATCH];
    ConstStates.forward(Weights::new(&params, &[]), [&x], [&mut y, &mut h, &mut g], &mut scratch);
    assert_eq!(y, h);
    // The GRU's final state is the last step of its sequence (computed by the layer).
    type G = Gru<5, 2, 3>;
    let mut seq = vec![0.0; batch * 15];
    let at = nn_core::layers::SimpleRnn::<5, 2, 3>::PARAMS;
    G::new(GruCell).forward(Weights::new(&params[at..], &[]), &x, &mut seq, &mut vec![0.0; batch * G::SCRATCH]);
    for b in 0..batch {
        assert_eq!(g[b * 3..(b + 1) * 3], seq[b * 15 + 12..(b + 1) * 15]);
    }
}
