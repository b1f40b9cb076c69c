//! One thread and two give the same bits for attention: encoder layers (post-norm and
//! pre-norm, causal, with dropout, with a key padding mask), cross-attention and a layer
//! norm of a width that is not a multiple of 16, each a training forward, its backward
//! (input and parameter gradients) and, for the encoders, an inference,
//! are computed in child processes of this test binary with `MATMUL_NUM_THREADS` 1 and
//! 2, and their outputs compared bit for bit. The batches are large enough for the
//! heads to be shared between threads (`kernels::attention::PARALLEL_MIN_MACS`), for
//! the norms' rows (`layers::layer_norm::PARALLEL_MIN_FLOATS`) and for the products to be split (`gemm::PARALLEL_MIN_FLOPS`), with the `threading`
//! feature (`cargo test --workspace` enables it through `nn-bench`; alone,
//! `cargo test --test layers --features nn-core/threading`); without it both children
//! run on one thread.
use crate::standalone::Standalone;
use crate::thread_children;

use nn_core::layers::{CrossAttention, LayerNorm, TransformerEncoderLayer};
use nn_core::{Activation, Layer, Rng, Shape, Shape2};

/// The child's marker: set, the ignored test prints its outputs.
const CHILD: &str = "NN_ATTENTION_THREADS_CHILD";

/// Floats in `[-1, 1)` from a seed.
fn values(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..len).map(|_| rng.uniform_in(-1.0, 1.0)).collect()
}

/// A training forward (with `lengths`, a key padding mask, when given), its backward
/// and an inference of `layer` over `batch` samples: the output, input gradient,
/// parameter gradients and inference output.
fn encoder<L: Padded>(layer: &L, batch: usize, seed: u64, padded: bool) -> Vec<f32> {
    let (n_in, n_out) = (batch * <L::Input as Shape>::LEN, batch * <L::Output as Shape>::LEN);
    let mut params = vec![0.0; L::PARAMS];
    layer.init(&mut params, &mut [], &mut Rng::new(seed));
    params.iter_mut().zip(values(L::PARAMS, seed + 1)).for_each(|(p, v)| *p += 0.1 * v);
    let x = values(n_in, seed + 2);
    let mut dy = values(n_out, seed + 3);
    let lengths: Vec<usize> = (0..batch).map(|b| 1 + (b * 7) % L::STEPS).collect();
    let mut s = Standalone::of(layer, batch, seed + 4);
    let (mut y, mut dx) = (vec![0.0; n_out], vec![0.0; n_in]);
    if padded {
        layer.train_padded(&x, &lengths, &mut y, s.train(&params));
    } else {
        layer.forward_train(&x, &mut y, s.train(&params));
    }
    layer.backward(&x, &y.clone(), &mut dy, Some(&mut dx), s.backward(&params));
    let mut inferred = vec![0.0; n_out];
    let mut scratch = vec![0.0; batch * L::SCRATCH];
    layer.forward(nn_core::Weights::new(&params, &[]), &x, &mut inferred, &mut scratch);
    [y, dx, s.grads, inferred].concat()
}

/// An encoder layer's training forward with a key padding mask.
trait Padded: Layer {
    /// Steps of a sample.
    const STEPS: usize;
    fn train_padded(&self, x: &[f32], lengths: &[usize], y: &mut [f32], cx: nn_core::TrainCtx<'_>);
}

impl<const T: usize, const D: usize, const H: usize, const F: usize> Padded for TransformerEncoderLayer<T, D, H, F> {
    const STEPS: usize = T;
    fn train_padded(&self, x: &[f32], lengths: &[usize], y: &mut [f32], cx: nn_core::TrainCtx<'_>) {
        self.forward_train_padded(x, lengths, y, cx);
    }
}

/// Cross-attention of 12 queries over 20 context steps (width 32, 4 heads, dropout
/// 0.1, causal), training forward and backward: the output, both input gradients and
/// the parameter gradients.
fn cross(batch: usize) -> Vec<f32> {
    type Cross = CrossAttention<12, 20, 32, 4>;
    let layer = Cross::new(true, 0.1);
    let mut params = vec![0.0; Cross::PARAMS];
    layer.init(&mut params, &mut Rng::new(40));
    let (query, context) = (values(batch * 12 * 32, 41), values(batch * 20 * 32, 42));
    let mut dy = values(batch * 12 * 32, 43);
    let lengths: Vec<usize> = (0..batch).map(|b| 3 + b % 17).collect();
    let mut s = Standalone::sized(Cross::PARAMS, 0, batch * Cross::CACHE, batch * Cross::SCRATCH, 44);
    let mut y = vec![0.0; dy.len()];
    layer.forward_train(&query, &context, Some(&lengths), &mut y, s.train(&params));
    let (mut d_query, mut d_context) = (vec![0.0; query.len()], vec![0.0; context.len()]);
    layer.backward(&query, &context, &mut dy, Some(&mut d_query), Some(&mut d_context), s.backward(&params));
    [y, d_query, d_context, s.grads].concat()
}

/// A layer norm of width 40 over 40 samples of 17 rows (680 rows, 27,200 floats),
/// training forward and backward: the output, the input gradient and the parameter
/// gradients.
fn norm() -> Vec<f32> {
    type Norm = LayerNorm<Shape2<17, 40>>;
    let (layer, batch) = (Norm::new(1e-5), 40);
    let mut params: Vec<f32> = values(Norm::PARAMS, 50).iter().map(|v| 1.0 + 0.5 * v).collect();
    params[40..].iter_mut().for_each(|b| *b -= 1.0);
    let x = values(batch * 17 * 40, 51);
    let mut dy = values(x.len(), 52);
    let mut s = Standalone::of(&layer, batch, 53);
    let (mut y, mut dx) = (vec![0.0; x.len()], vec![0.0; x.len()]);
    layer.forward_train(&x, &mut y, s.train(&params));
    layer.backward(&x, &y.clone(), &mut dy, Some(&mut dx), s.backward(&params));
    [y, dx, s.grads].concat()
}

/// Every output this test compares, by name.
fn outputs() -> Vec<(&'static str, Vec<f32>)> {
    let post = TransformerEncoderLayer::<32, 64, 4, 128>::new(false, Activation::Relu, 0.1);
    let pre = TransformerEncoderLayer::<24, 32, 2, 64>::new(true, Activation::Gelu, 0.1).with_causal(true);
    vec![
        ("post-norm encoder, dropout", encoder(&post, 16, 1, false)),
        ("post-norm encoder, padded", encoder(&post, 9, 2, true)),
        ("pre-norm causal encoder, dropout", encoder(&pre, 33, 3, false)),
        ("cross-attention, causal, padded, dropout", cross(25)),
        ("layer norm, width 40", norm()),
    ]
}

/// Run by [`one_and_two_threads_give_the_same_bits`] in a child process: prints every
/// output's bits.
#[test]
#[ignore = "a child process of one_and_two_threads_give_the_same_bits"]
fn attention_outputs_under_threads() {
    if !thread_children::is_child(CHILD) {
        return;
    }
    // (A line of its own after the test's name, which libtest prints first.)
    println!("outputs");
    for (name, values) in outputs() {
        thread_children::print_bits(name, &values);
    }
}

#[test]
fn one_and_two_threads_give_the_same_bits() {
    thread_children::assert_one_and_two_threads_agree("attention_threads::attention_outputs_under_threads", CHILD, 5);
}
