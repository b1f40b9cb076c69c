//! Finite-difference checks of the backward passes of attention, cross-attention,
//! layer norm, the positional encodings, the feed-forward block, both encoder-layer
//! orders and a stack, with masks and with dropout active.
//!
//! The loss is `sum dy * y` for a random `dy`, summed in `f64`; every input and
//! parameter gradient is compared with central differences (`h = 1e-2`) of the
//! layer's own `f32` `forward_train`, within `2e-4 + 2e-3 |expected|`: the `f32`
//! rounding of the loss (about `1e-6` for these sizes) divided by `2h`, plus the `h^2`
//! truncation error of a smooth function. With dropout the training forward is
//! re-run with the same seed, so every evaluation draws the same mask. The PyTorch
//! golden tests (`attention_golden.rs`) check the same gradients to `1e-5`; these
//! checks add the paths PyTorch fixtures do not cover (dropout, causal cross-attention)
//! and prove that forward and backward describe the same function.
use crate::gradcheck;
use crate::standalone::Standalone;

use gradcheck::{assert_close_where, central_differences_f32, uniform, weighted_sum, Tolerance};
use nn_core::layers::{
    CrossAttention, FeedForward, LayerNorm, LearnedPositional, MultiHeadAttention, PositionalEncoding,
    TransformerEncoder, TransformerEncoderLayer,
};
use nn_core::{Activation, Layer, Rng, Shape, Shape1, Shape2, TrainCtx};

const H32: f32 = 1e-2;
const TOL: Tolerance = Tolerance { abs: 2e-4, rel: 2e-3 };

/// A training forward with an optional key padding mask, from fixed inputs.
type Forward<'a> = &'a dyn Fn(&[f32], &mut [f32], TrainCtx<'_>);

/// Checks `layer`'s input and parameter gradients at random points, through
/// `forward` (defaults to `Layer::forward_train`).
fn check<L: Layer>(what: &str, layer: &L, batch: usize, seed: u64, forward: Option<Forward<'_>>) {
    let mut rng = Rng::new(seed);
    let mut params = vec![0.0; L::PARAMS];
    layer.init(&mut params, &mut [], &mut rng);
    // Move every parameter off its initial value (zero biases, unit norm weights).
    params.iter_mut().for_each(|p| *p += rng.uniform_in(-0.2, 0.2));
    let x = uniform(&mut rng, batch * <L::Input as Shape>::LEN, -1.0, 1.0);
    let n_out = batch * <L::Output as Shape>::LEN;
    let dy = uniform(&mut rng, n_out, -1.0, 1.0);
    let dropout_seed = seed + 1;

    let run = |params: &[f32], x: &[f32], y: &mut [f32]| {
        let mut s = Standalone::of(layer, batch, dropout_seed);
        match forward {
            Some(f) => f(x, y, s.train(params)),
            None => layer.forward_train(x, y, s.train(params)),
        }
        s
    };
    let loss = |params: &[f32], x: &[f32]| {
        let mut y = vec![0.0; n_out];
        run(params, x, &mut y);
        (weighted_sum(&dy, &y), Vec::new())
    };

    let mut y = vec![0.0; n_out];
    let mut s = run(&params, &x, &mut y);
    s.scratch.fill(f32::NAN);
    let mut dx = vec![0.0; x.len()];
    layer.backward(&x, &y, &mut dy.clone(), Some(&mut dx), s.backward(&params));

    let expected_dx = central_differences_f32(&x, H32, |x| loss(&params, x));
    assert_close_where(&format!("{what}: dx"), &dx, &expected_dx, TOL, 0);
    let expected_grads = central_differences_f32(&params, H32, |p| loss(p, &x));
    assert_close_where(&format!("{what}: dparams"), &s.grads, &expected_grads, TOL, 0);
}

#[test]
fn attention_gradients_match_finite_differences() {
    type Attn = MultiHeadAttention<4, 8, 2>;
    for (causal, dropout) in [(false, 0.0), (true, 0.0), (false, 0.3), (true, 0.3)] {
        let layer = Attn::new(causal, dropout);
        check(&format!("attention causal={causal} dropout={dropout}"), &layer, 2, 1, None);
    }
    let layer = MultiHeadAttention::<5, 6, 3>::new(true, 0.0);
    let padded = |x: &[f32], y: &mut [f32], cx: TrainCtx<'_>| layer.forward_train_padded(x, &[3, 5, 1], y, cx);
    check("attention, causal and padded", &layer, 3, 2, Some(&padded));
    check("attention, batch 1", &MultiHeadAttention::<3, 4, 1>::new(false, 0.0), 1, 3, None);
}

#[test]
fn cross_attention_gradients_match_finite_differences() {
    type Cross = CrossAttention<3, 5, 8, 2>;
    let (batch, seed) = (2, 7);
    for (causal, dropout, lengths) in [(false, 0.0, None), (true, 0.0, Some([4, 2])), (false, 0.25, Some([5, 3]))] {
        let what = format!("cross-attention causal={causal} dropout={dropout} lengths={lengths:?}");
        let layer = Cross::new(causal, dropout);
        let lengths = lengths.as_ref().map(|l| &l[..]);
        let mut rng = Rng::new(seed);
        let mut params = vec![0.0; Cross::PARAMS];
        layer.init(&mut params, &mut rng);
        params.iter_mut().for_each(|p| *p += rng.uniform_in(-0.2, 0.2));
        let query = uniform(&mut rng, batch * 3 * 8, -1.0, 1.0);
        let context = uniform(&mut rng, batch * 5 * 8, -1.0, 1.0);
        let dy = uniform(&mut rng, batch * 3 * 8, -1.0, 1.0);
        let run = |params: &[f32], query: &[f32], context: &[f32], y: &mut [f32]| {
            let mut s = Standalone::sized(Cross::PARAMS, 0, batch * Cross::CACHE, batch * Cross::SCRATCH, 11);
            layer.forward_train(query, context, lengths, y, s.train(params));
            s
        };
        let loss = |params: &[f32], query: &[f32], context: &[f32]| {
            let mut y = vec![0.0; dy.len()];
            run(params, query, context, &mut y);
            (weighted_sum(&dy, &y), Vec::new())
        };
        let mut y = vec![0.0; dy.len()];
        let mut s = run(&params, &query, &context, &mut y);
        s.scratch.fill(f32::NAN);
        let (mut dq, mut dc) = (vec![0.0; query.len()], vec![0.0; context.len()]);
        layer.backward(&query, &context, &mut dy.clone(), Some(&mut dq), Some(&mut dc), s.backward(&params));

        let expected = central_differences_f32(&query, H32, |q| loss(&params, q, &context));
        assert_close_where(&format!("{what}: d_query"), &dq, &expected, TOL, 0);
        let expected = central_differences_f32(&context, H32, |c| loss(&params, &query, c));
        assert_close_where(&format!("{what}: d_context"), &dc, &expected, TOL, 0);
        let expected = central_differences_f32(&params, H32, |p| loss(p, &query, &context));
        assert_close_where(&format!("{what}: dparams"), &s.grads, &expected, TOL, 0);
    }
}

#[test]
fn layer_norm_and_positional_gradients_match_finite_differences() {
    check("layer norm [4, 6]", &LayerNorm::<Shape2<4, 6>>::new(1e-5), 3, 4, None);
    check("layer norm [5]", &LayerNorm::<Shape1<5>>::new(1e-3), 4, 5, None);
    check("sinusoidal encoding", &PositionalEncoding::<4, 6>::new(), 2, 6, None);
    check("learned positions", &LearnedPositional::<4, 6>::new(), 3, 7, None);
}

#[test]
fn feed_forward_gradients_match_finite_differences() {
    for (activation, dropout) in [(Activation::Gelu, 0.0), (Activation::Tanh, 0.0), (Activation::Gelu, 0.4)] {
        let layer = FeedForward::<3, 4, 7>::new(activation, dropout);
        check(&format!("feed-forward {activation:?} dropout={dropout}"), &layer, 2, 8, None);
    }
}

#[test]
fn encoder_layer_gradients_match_finite_differences() {
    type Encoder = TransformerEncoderLayer<4, 8, 2, 12>;
    for norm_first in [false, true] {
        for dropout in [0.0, 0.2] {
            let layer = Encoder::new(norm_first, Activation::Gelu, dropout);
            check(&format!("encoder layer norm_first={norm_first} dropout={dropout}"), &layer, 2, 9, None);
        }
        let causal = Encoder { causal: true, ..Encoder::new(norm_first, Activation::Gelu, 0.0) };
        let padded = |x: &[f32], y: &mut [f32], cx: TrainCtx<'_>| causal.forward_train_padded(x, &[4, 2], y, cx);
        check(&format!("causal padded encoder layer norm_first={norm_first}"), &causal, 2, 10, Some(&padded));
    }
}

#[test]
fn encoder_stack_gradients_match_finite_differences() {
    type Stack = TransformerEncoder<3, 4, 2, 6, 3>;
    for norm_first in [false, true] {
        let stack = Stack::new(TransformerEncoderLayer::new(norm_first, Activation::Gelu, 0.1));
        check(&format!("3-layer stack norm_first={norm_first}"), &stack, 2, 12, None);
        let padded = |x: &[f32], y: &mut [f32], cx: TrainCtx<'_>| stack.forward_train_padded(x, &[2, 3], y, cx);
        check(&format!("padded 3-layer stack norm_first={norm_first}"), &stack, 2, 13, Some(&padded));
    }
}
