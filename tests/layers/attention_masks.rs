//! What the masks, the attention weights and dropout promise, checked as properties:
//! a causal layer's output at step `i` does not depend on later steps; a padded
//! sample's valid outputs do not depend on its padding; samples of a batch do not
//! interact; weights are a distribution over the visible keys; dropout is active in
//! training only; and the inspection methods agree with the training cache.
use crate::gradcheck;
use crate::standalone::Standalone;

use gradcheck::uniform;
use nn_core::layers::{CrossAttention, MultiHeadAttention, TransformerEncoder, TransformerEncoderLayer};
use nn_core::{Activation, Layer, Rng};

const T: usize = 6;
const D: usize = 8;
type Attn = MultiHeadAttention<T, D, 2>;
type Stack = TransformerEncoder<T, D, 2, 16, 2>;

fn params<L: Layer>(layer: &L, seed: u64) -> Vec<f32> {
    let mut p = vec![0.0; L::PARAMS];
    let mut rng = Rng::new(seed);
    layer.init(&mut p, &mut [], &mut rng);
    p.iter_mut().for_each(|v| *v += rng.uniform_in(-0.1, 0.1));
    p
}

fn infer<L: Layer>(layer: &L, params: &[f32], x: &[f32]) -> Vec<f32> {
    let batch = x.len() / (T * D);
    let mut y = vec![0.0; x.len()];
    layer.forward(nn_core::Weights::new(params, &[]), x, &mut y, &mut vec![0.0; batch * L::SCRATCH]);
    y
}

#[test]
fn causal_outputs_ignore_later_steps() {
    let stack = Stack {
        layer: TransformerEncoderLayer { causal: true, ..TransformerEncoderLayer::new(true, Activation::Relu, 0.0) },
    };
    let attn = Attn::new(true, 0.0);
    let x = uniform(&mut Rng::new(1), T * D, -1.0, 1.0);
    for step in 0..T {
        let mut changed = x.clone();
        changed[step * D..].iter_mut().for_each(|v| *v += 0.5);
        for (what, before, after) in [
            ("attention", infer(&attn, &params(&attn, 2), &x), infer(&attn, &params(&attn, 2), &changed)),
            ("encoder", infer(&stack, &params(&stack, 3), &x), infer(&stack, &params(&stack, 3), &changed)),
        ] {
            assert_eq!(before[..step * D], after[..step * D], "{what}: steps before {step} changed");
            assert_ne!(before[step * D..], after[step * D..], "{what}: step {step} did not change");
        }
    }
}

#[test]
fn padded_samples_ignore_their_padding_and_samples_do_not_interact() {
    let lengths = [T, 3, 1];
    let x = uniform(&mut Rng::new(4), 3 * T * D, -1.0, 1.0);
    let mut changed = x.clone();
    // Change the padding of samples 1 and 2 only.
    for (b, &n) in lengths.iter().enumerate() {
        changed[(b * T + n) * D..(b + 1) * T * D].iter_mut().for_each(|v| *v = -*v + 1.0);
    }
    let attn = Attn::new(false, 0.0);
    let stack = Stack::new(TransformerEncoderLayer::new(false, Activation::Gelu, 0.0));
    let (pa, ps) = (params(&attn, 5), params(&stack, 6));
    let run = |x: &[f32]| {
        let (mut ya, mut ys) = (vec![0.0; x.len()], vec![0.0; x.len()]);
        attn.forward_padded(&pa, x, &lengths, &mut ya, &mut vec![0.0; 3 * Attn::SCRATCH]);
        stack.forward_padded(&ps, x, &lengths, &mut ys, &mut vec![0.0; 3 * Stack::SCRATCH]);
        (ya, ys)
    };
    let (before, after) = (run(&x), run(&changed));
    for (b, &n) in lengths.iter().enumerate() {
        let valid = b * T * D..(b * T + n) * D;
        assert_eq!(before.0[valid.clone()], after.0[valid.clone()], "attention, sample {b}");
        assert_eq!(before.1[valid.clone()], after.1[valid], "encoder, sample {b}");
    }
    // A full-length sample is unpadded: the same as without a mask, alone or in a batch.
    let alone = infer(&attn, &pa, &x[..T * D]);
    assert_eq!(before.0[..T * D], alone[..]);
    let batch = infer(&attn, &pa, &x);
    let sample2 = infer(&attn, &pa, &x[2 * T * D..]);
    assert_eq!(batch[2 * T * D..], sample2[..], "a sample's output depends on the others");
}

#[test]
fn weights_are_distributions_over_the_visible_keys() {
    let x = uniform(&mut Rng::new(7), 2 * T * D, -2.0, 2.0);
    let lengths = [4, 2];
    for causal in [false, true] {
        let attn = Attn::new(causal, 0.0);
        let p = params(&attn, 8);
        let (mut y, mut s) = (vec![0.0; x.len()], Standalone::of(&attn, 2, 0));
        attn.forward_train_padded(&x, &lengths, &mut y, s.train(&p));
        let weights = attn.weights_in(&s.cache, 2);
        assert_eq!(weights.len(), 2 * 2 * T * T);
        for (row_index, row) in weights.chunks_exact(T).enumerate() {
            let (sample, query) = (row_index / (2 * T), row_index % T);
            let visible = if causal { lengths[sample].min(query + 1) } else { lengths[sample] };
            let sum: f32 = row[..visible].iter().sum();
            assert!((sum - 1.0).abs() < 1e-6, "row {row_index} sums to {sum}");
            assert!(row[..visible].iter().all(|&w| w > 0.0), "row {row_index}: {row:?}");
            assert!(row[visible..].iter().all(|&w| w == 0.0), "row {row_index} attends to masked keys: {row:?}");
        }
        // Unpadded, the inspection method gives the cache's weights of that sample.
        attn.forward_train(&x, &mut y, s.train(&p));
        let second = attn.attention_weights(&p, &x[T * D..]);
        assert_eq!(second[..], attn.weights_in(&s.cache, 2)[2 * T * T..]);
    }
}

#[test]
fn a_sample_without_valid_keys_attends_to_nothing() {
    let attn = Attn::new(false, 0.0);
    let p = params(&attn, 9);
    let x = uniform(&mut Rng::new(10), T * D, -1.0, 1.0);
    let mut y = vec![0.0; T * D];
    attn.forward_padded(&p, &x, &[0], &mut y, &mut vec![0.0; Attn::SCRATCH]);
    // Every head's output is 0, so each step is the output projection's bias.
    let bias = &p[Attn::PARAMS - D..];
    for step in y.chunks_exact(D) {
        assert_eq!(step, bias);
    }
}

#[test]
fn dropout_acts_in_training_only() {
    let x = uniform(&mut Rng::new(11), 4 * T * D, -1.0, 1.0);
    let layer = TransformerEncoderLayer::<T, D, 2, 16>::new(false, Activation::Relu, 0.3);
    let quiet = TransformerEncoderLayer::<T, D, 2, 16>::new(false, Activation::Relu, 0.0);
    let p = params(&layer, 12);
    let train = |layer: &TransformerEncoderLayer<T, D, 2, 16>, seed: u64| {
        let (mut y, mut s) = (vec![0.0; x.len()], Standalone::of(layer, 4, seed));
        layer.forward_train(&x, &mut y, s.train(&p));
        y
    };
    let inference = infer(&layer, &p, &x);
    assert_eq!(inference, infer(&quiet, &p, &x), "dropout changed inference");
    let without = train(&quiet, 1);
    for (a, b) in without.iter().zip(&inference) {
        assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "training without dropout differs: {a} vs {b}");
    }
    let (first, again, other) = (train(&layer, 1), train(&layer, 1), train(&layer, 2));
    assert_eq!(first, again, "the same seed draws the same masks");
    assert_ne!(first, other);
    assert_ne!(first, without);
}

#[test]
fn cross_attention_with_itself_as_context_is_self_attention() {
    let attn = Attn::new(true, 0.0);
    let cross = CrossAttention::<T, T, D, 2>::new(true, 0.0);
    let p = params(&attn, 13);
    let x = uniform(&mut Rng::new(14), 2 * T * D, -1.0, 1.0);
    let mut y = vec![0.0; x.len()];
    cross.forward(&p, &x, &x, Some(&[5, 3]), &mut y, &mut vec![0.0; 2 * CrossAttention::<T, T, D, 2>::SCRATCH]);
    let mut expected = vec![0.0; x.len()];
    attn.forward_padded(&p, &x, &[5, 3], &mut expected, &mut vec![0.0; 2 * Attn::SCRATCH]);
    for (a, b) in y.iter().zip(&expected) {
        assert!((a - b).abs() <= 1e-6 * b.abs().max(1.0), "{a} vs {b}");
    }
}

#[test]
fn encoder_weights_of_a_later_layer_see_the_earlier_layers() {
    let stack = Stack::new(TransformerEncoderLayer::new(true, Activation::Gelu, 0.0));
    let p = params(&stack, 15);
    let x = uniform(&mut Rng::new(16), T * D, -1.0, 1.0);
    // Layer 1's weights are those of a lone layer fed with layer 0's output.
    let first = TransformerEncoderLayer::<T, D, 2, 16>::new(true, Activation::Gelu, 0.0);
    let n = <TransformerEncoderLayer<T, D, 2, 16> as Layer>::PARAMS;
    let mid = infer(&first, &p[..n], &x);
    assert_eq!(stack.attention_weights(&p, &x, 1), first.attention_weights(&p[n..], &mid));
    assert_eq!(stack.attention_weights(&p, &x, 0), first.attention_weights(&p[..n], &x));
}

#[test]
fn softmax_exponential_is_rounded_from_f64() {
    use nn_core::kernels::maths::exp_rounded as exp;
    let (mut exact, mut total) = (0, 0);
    let mut x = -104.0f32;
    while x < 88.7 {
        let (found, reference) = (exp(x), (x as f64).exp() as f32);
        let ulps = (found.to_bits() as i64 - reference.to_bits() as i64).abs();
        assert!(ulps <= 1, "exp({x}) = {found}, expected {reference}");
        exact += usize::from(ulps == 0);
        total += 1;
        x += 0.001_3;
    }
    assert!(exact as f64 >= 0.999 * total as f64, "{exact} of {total} correctly rounded");
    assert_eq!(exp(-200.0), 0.0);
    assert_eq!(exp(0.0), 1.0);
}
