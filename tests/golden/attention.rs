//! Golden tests of attention, layer norm, positional encodings and the Transformer
//! encoder against PyTorch (`tools/fixtures/generate.py`, groups `attention`,
//! `layer_norm`, `positional` and `transformer`).
//!
//! Each fixture holds the input(s), PyTorch's parameters (every one redrawn at random,
//! biases and norm parameters included), the output, a random upstream gradient and
//! the resulting input and parameter gradients; attention fixtures also hold the
//! per-head attention weights. The key bias's gradient is 0 exactly (a softmax does
//! not see a constant added to a row of scores): the fixtures hold 0, not PyTorch's
//! float64 noise, and the library adds nothing to it. Every layer is checked through all its paths:
//! `forward` (inference), `forward_train`, the attention weights, and `backward`,
//! which must *add* its parameter gradients (the gradient array starts at 0.5 here).
//!
//! Tolerance: `|actual - expected| <= 1e-5 |expected| + 1e-6`, as the other golden
//! tests, for outputs, weights and gradients alike: the references are exact to half an
//! f32 ulp, so this bounds the library's own f32 rounding through a whole encoder layer.
//! The one exception is the two-layer stacks, whose absolute part is `5e-6`: a gradient
//! of a first-layer parameter is a sum over the batch and every position of products
//! taken back through two attentions and four layer norms, and entries where those
//! terms cancel (to ~1e-2 from terms of order 1) carry absolute errors of 1 to 2e-6
//! from the rounding of the terms, not of the result (1.7e-6 on `-0.0746`, right at the
//! edge of `1e-6 + 1e-5 |x|`; the last bits also depend on the GEMM path, FMA or not).
use crate::fixtures;
use crate::standalone::Standalone;

use fixtures::{assert_close, Fixture};
use nn_core::layers::{
    CrossAttention, FeedForward, LayerNorm, LearnedPositional, MultiHeadAttention, PositionalEncoding,
    TransformerEncoder, TransformerEncoderLayer,
};
use nn_core::{Activation, Layer, Shape, Shape1, Shape2, TensorInfo, TrainCtx};

const RTOL: f32 = 1e-5;
const ATOL: f32 = 1e-6;
/// The absolute tolerance of the two-layer stacks (see the module documentation).
const ATOL_STACK: f32 = 5e-6;
/// What the gradient array holds before `backward`, which must add to it.
const GRAD_START: f32 = 0.5;

fn fixtures_in(group: &str) -> Vec<Fixture> {
    let found: Vec<Fixture> =
        Fixture::all().iter().map(|name| Fixture::load(name)).filter(|f| f.meta("group") == group).collect();
    assert!(!found.is_empty(), "no fixture of group `{group}`");
    found
}

/// Calls `f` for every tensor of a layer, as `Layer::visit_tensors` does.
type Visit<'a> = &'a dyn Fn(&mut dyn FnMut(&TensorInfo<'_>));

/// The flat parameter array filled from the fixture's `param.<name>` tensors; every
/// fixture tensor must be used and every parameter covered.
fn load_params(f: &Fixture, total: usize, visit: Visit<'_>) -> Vec<f32> {
    let mut params = vec![f32::NAN; total];
    let mut names = Vec::new();
    visit(&mut |t| {
        let key = format!("param.{}", t.path);
        assert_eq!(f.shape(&key), t.shape, "{}: shape of `{key}`", f.name);
        params[t.offset..t.offset + t.len].copy_from_slice(f.values(&key));
        names.push(key);
    });
    assert!(params.iter().all(|v| !v.is_nan()), "{}: parameters not covered by tensors", f.name);
    let in_fixture = f.tensor_names().filter(|n| n.starts_with("param.")).count();
    assert_eq!(in_fixture, names.len(), "{}: fixture has other parameters than {names:?}", f.name);
    params
}

/// Compares `grads - GRAD_START` with the fixture's `grad.<name>` tensors.
/// The absolute tolerance of fixture `f`.
fn atol(f: &Fixture) -> f32 {
    if f.name.starts_with("encoder_stack") {
        ATOL_STACK
    } else {
        ATOL
    }
}

fn check_grads(f: &Fixture, grads: &[f32], visit: Visit<'_>) {
    visit(&mut |t| {
        let key = format!("grad.{}", t.path);
        let added: Vec<f32> = grads[t.offset..t.offset + t.len].iter().map(|g| g - GRAD_START).collect();
        assert_close(&format!("{}: {key}", f.name), &added, f.values(&key), RTOL, atol(f));
    });
}

/// Compares `actual` with the fixture tensor `key`.
fn check(f: &Fixture, what: &str, actual: &[f32], key: &str) {
    assert_close(&format!("{}: {what}", f.name), actual, f.values(key), RTOL, atol(f));
}

/// The option `lengths` (`[5, 3, 1]`), if any.
fn lengths(f: &Fixture) -> Option<Vec<usize>> {
    let text = f.option("lengths")?;
    let inner = text.trim().trim_start_matches('[').trim_end_matches(']');
    Some(inner.split(',').map(|v| v.trim().parse().unwrap_or_else(|e| panic!("{}: lengths: {e}", f.name))).collect())
}

fn flag(f: &Fixture, key: &str) -> bool {
    match f.option(key) {
        Some("true") => true,
        Some("false") => false,
        other => panic!("{}: option `{key}` is {other:?}", f.name),
    }
}

/// A layer's three passes, with an optional key padding mask through `padded`
/// (`forward`, `forward_train`), which defaults to the `Layer` methods.
struct Passes<'a, L: Layer> {
    layer: &'a L,
    #[allow(clippy::type_complexity)]
    padded: Option<(&'a dyn Fn(&[f32], &[f32], &mut [f32], &mut [f32]), &'a dyn Fn(&[f32], &mut [f32], TrainCtx<'_>))>,
}

/// Runs every pass of `layer` on the fixture and checks output, input gradient and
/// parameter gradients. Returns the training cache (for the attention weights).
fn check_layer<L: Layer>(f: &Fixture, passes: Passes<'_, L>) -> Vec<f32> {
    let layer = passes.layer;
    let visit = |cb: &mut dyn FnMut(&TensorInfo<'_>)| layer.visit_tensors(None, 0, 0, cb);
    let params = load_params(f, L::PARAMS, &visit);
    let x = f.values("input");
    let batch = f.batch();
    let dims: Vec<usize> = [batch].iter().chain(<L::Input as Shape>::DIMS).copied().collect();
    assert_eq!(f.shape("input"), dims, "{}: input shape", f.name);
    let n_out = batch * <L::Output as Shape>::LEN;
    let mut scratch = vec![f32::NAN; batch * L::SCRATCH];
    let mut y = vec![f32::NAN; n_out];

    match passes.padded {
        Some((forward, _)) => forward(&params, x, &mut y, &mut scratch),
        None => layer.forward(nn_core::Weights::new(&params, &[]), x, &mut y, &mut scratch),
    }
    check(f, "forward", &y, "output");

    let mut s = Standalone::of(layer, batch, 0);
    y.fill(f32::NAN);
    match passes.padded {
        Some((_, forward_train)) => forward_train(x, &mut y, s.train(&params)),
        None => layer.forward_train(x, &mut y, s.train(&params)),
    }
    check(f, "forward_train", &y, "output");

    let mut dy = f.values("grad_output").to_vec();
    s.grads.fill(GRAD_START);
    let mut dx = vec![f32::NAN; x.len()];
    s.scratch.fill(f32::NAN);
    layer.backward(x, &y, &mut dy, Some(&mut dx), s.backward(&params));
    check(f, "grad_input", &dx, "grad_input");
    check_grads(f, &s.grads, &visit);

    // Without an input gradient the parameter gradients are the same.
    let mut dy = f.values("grad_output").to_vec();
    let grads = std::mem::replace(&mut s.grads, vec![GRAD_START; L::PARAMS]);
    layer.backward(x, &y, &mut dy, None, s.backward(&params));
    assert_eq!(grads, s.grads, "{}: parameter gradients depend on whether dx is asked for", f.name);
    s.cache
}

fn check_self_attention<const T: usize, const D: usize, const H: usize>(f: &Fixture) {
    assert_eq!(f.option("embed_dim"), Some(D.to_string().as_str()), "{}", f.name);
    assert_eq!(f.option("num_heads"), Some(H.to_string().as_str()), "{}", f.name);
    let layer = MultiHeadAttention::<T, D, H>::new(flag(f, "causal"), 0.0);
    let lengths = lengths(f);
    let cache = match &lengths {
        Some(l) => {
            let forward = |p: &[f32], x: &[f32], y: &mut [f32], s: &mut [f32]| layer.forward_padded(p, x, l, y, s);
            let forward_train = |x: &[f32], y: &mut [f32], cx: TrainCtx<'_>| layer.forward_train_padded(x, l, y, cx);
            check_layer(f, Passes { layer: &layer, padded: Some((&forward, &forward_train)) })
        }
        None => check_layer(f, Passes { layer: &layer, padded: None }),
    };
    let batch = f.batch();
    check(f, "weights in the cache", layer.weights_in(&cache, batch), "weights");
    if lengths.is_none() {
        // The inspection method, one sample at a time.
        let params = load_params(f, layer_params(&layer), &|cb| layer.visit_tensors(None, 0, 0, cb));
        let x = f.values("input");
        let weights: Vec<f32> =
            x.chunks_exact(T * D).flat_map(|sample| layer.attention_weights(&params, sample)).collect();
        check(f, "attention_weights", &weights, "weights");
    }
}

fn layer_params<L: Layer>(_: &L) -> usize {
    L::PARAMS
}

fn check_cross_attention<const TQ: usize, const TK: usize, const D: usize, const H: usize>(f: &Fixture) {
    type Cross<const TQ: usize, const TK: usize, const D: usize, const H: usize> = CrossAttention<TQ, TK, D, H>;
    let layer = Cross::<TQ, TK, D, H>::new(flag(f, "causal"), 0.0);
    let visit = |cb: &mut dyn FnMut(&TensorInfo<'_>)| layer.visit_tensors(None, 0, cb);
    let params = load_params(f, Cross::<TQ, TK, D, H>::PARAMS, &visit);
    let (query, context) = (f.values("input"), f.values("context"));
    let batch = f.batch();
    assert_eq!(f.shape("input"), [batch, TQ, D], "{}", f.name);
    assert_eq!(f.shape("context"), [batch, TK, D], "{}", f.name);
    let lengths = lengths(f);
    let lengths = lengths.as_deref();
    let mut scratch = vec![f32::NAN; batch * Cross::<TQ, TK, D, H>::SCRATCH];
    let mut y = vec![f32::NAN; batch * TQ * D];
    layer.forward(&params, query, context, lengths, &mut y, &mut scratch);
    check(f, "forward", &y, "output");

    let (cache_len, scratch_len) = (batch * Cross::<TQ, TK, D, H>::CACHE, scratch.len());
    let mut s = Standalone::sized(Cross::<TQ, TK, D, H>::PARAMS, 0, cache_len, scratch_len, 0);
    y.fill(f32::NAN);
    layer.forward_train(query, context, lengths, &mut y, s.train(&params));
    check(f, "forward_train", &y, "output");
    check(f, "weights in the cache", layer.weights_in(&s.cache, batch), "weights");

    let mut dy = f.values("grad_output").to_vec();
    s.grads.fill(GRAD_START);
    let (mut dq, mut dc) = (vec![f32::NAN; query.len()], vec![f32::NAN; context.len()]);
    layer.backward(query, context, &mut dy, Some(&mut dq), Some(&mut dc), s.backward(&params));
    check(f, "grad_input", &dq, "grad_input");
    check(f, "grad_context", &dc, "grad_context");
    check_grads(f, &s.grads, &visit);

    if lengths.is_none() {
        // The typed path gives the same outputs.
        let q: Vec<nn_core::Tensor<Shape2<TQ, D>>> =
            query.chunks_exact(TQ * D).map(|s| nn_core::Tensor::from_slice(s).unwrap()).collect();
        let c: Vec<nn_core::Tensor<Shape2<TK, D>>> =
            context.chunks_exact(TK * D).map(|s| nn_core::Tensor::from_slice(s).unwrap()).collect();
        let typed: Vec<f32> = layer.attend(&params, &q, &c).iter().flat_map(|t| t.to_vec()).collect();
        check(f, "attend", &typed, "output");
    }
}

#[test]
fn attention_matches_torch_multihead_attention() {
    for f in fixtures_in("attention") {
        assert_eq!(f.meta("kind"), "MultiheadAttention", "{}", f.name);
        match f.name.as_str() {
            "attention_self" | "attention_causal" => check_self_attention::<5, 8, 2>(&f),
            "attention_self_one_head" => check_self_attention::<4, 6, 1>(&f),
            "attention_padding" => check_self_attention::<5, 8, 4>(&f),
            "attention_causal_padding" => check_self_attention::<5, 8, 2>(&f),
            "attention_cross" | "attention_cross_padding" => check_cross_attention::<4, 6, 8, 2>(&f),
            other => panic!("no test for attention fixture `{other}`"),
        }
    }
}

#[test]
fn layer_norm_matches_torch() {
    for f in fixtures_in("layer_norm") {
        assert_eq!(f.option("eps"), Some("1e-05"), "{}", f.name);
        match f.name.as_str() {
            "layer_norm_sequence" => {
                check_layer(&f, Passes { layer: &LayerNorm::<Shape2<5, 8>>::new(1e-5), padded: None });
            }
            "layer_norm_vector" => {
                check_layer(&f, Passes { layer: &LayerNorm::<Shape1<6>>::new(1e-5), padded: None });
            }
            other => panic!("no test for layer norm fixture `{other}`"),
        }
    }
}

#[test]
fn positional_encodings_match_torch() {
    for f in fixtures_in("positional") {
        match f.name.as_str() {
            "positional_sinusoidal" => {
                check_layer(&f, Passes { layer: &PositionalEncoding::<6, 8>::new(), padded: None });
            }
            "positional_learned" => {
                check_layer(&f, Passes { layer: &LearnedPositional::<6, 8>::new(), padded: None });
            }
            other => panic!("no test for positional fixture `{other}`"),
        }
    }
}

fn activation(f: &Fixture) -> Activation {
    match f.option("activation") {
        Some("relu") => Activation::Relu,
        Some("gelu") => Activation::Gelu,
        other => panic!("{}: activation {other:?}", f.name),
    }
}

fn encoder_layer(f: &Fixture) -> TransformerEncoderLayer<5, 8, 2, 16> {
    assert_eq!(f.option("d_model"), Some("8"), "{}", f.name);
    assert_eq!(f.option("nhead"), Some("2"), "{}", f.name);
    assert_eq!(f.option("dim_feedforward"), Some("16"), "{}", f.name);
    assert_eq!(f.option("dropout"), Some("0.0"), "{}", f.name);
    TransformerEncoderLayer::new(flag(f, "norm_first"), activation(f), 0.0)
}

#[test]
fn transformer_encoder_matches_torch() {
    for f in fixtures_in("transformer") {
        match f.meta("kind") {
            "FeedForward" => {
                check_layer(&f, Passes { layer: &FeedForward::<5, 8, 16>::new(activation(&f), 0.0), padded: None });
            }
            "TransformerEncoderLayer" => {
                let layer = encoder_layer(&f);
                check_layer(&f, Passes { layer: &layer, padded: None });
            }
            "TransformerEncoder" => {
                assert_eq!(f.option("num_layers"), Some("2"), "{}", f.name);
                let stack = TransformerEncoder::<5, 8, 2, 16, 2>::new(encoder_layer(&f));
                let l = lengths(&f).unwrap_or_else(|| panic!("{}: lengths", f.name));
                let forward = |p: &[f32], x: &[f32], y: &mut [f32], s: &mut [f32]| stack.forward_padded(p, x, &l, y, s);
                let forward_train =
                    |x: &[f32], y: &mut [f32], cx: TrainCtx<'_>| stack.forward_train_padded(x, &l, y, cx);
                check_layer(&f, Passes { layer: &stack, padded: Some((&forward, &forward_train)) });
            }
            other => panic!("{}: no test for kind `{other}`", f.name),
        }
    }
}
