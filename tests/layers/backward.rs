//! Finite-difference checks of `Layer::backward`: `Dense` (every activation, with and
//! without bias, batch 1 and 5), every activation layer, `Dropout`, and a composed
//! network (`Chain` through `Model`), plus the contract that `backward` adds into
//! `grads`, overwrites `dx` and accepts `dx = None`.
//!
//! With a random upstream gradient `dy` (the loss is `sum dy * y`) every input and
//! parameter gradient is checked twice:
//!
//! - against central differences (`h = 1e-6`) of an independent `f64` reference of the
//!   forward pass, within `1e-6 + 1e-5 |expected|`: the analytic gradient is computed
//!   in `f32`, so it carries relative errors of about `1e-6`;
//! - against central differences (`h = 1e-2`) of the layer's own `f32` `forward_train`,
//!   summed in `f64`, within `1e-4 + 1e-3 |expected|`: the `f32` rounding of the
//!   outputs divided by `2h`, plus the `h^2` truncation. This proves that the layer's
//!   forward and backward describe the same function, fused bias path included.
//!
//! A difference whose two sides put some pre-activation on different sides of a kink
//! (ReLU, Leaky ReLU, ELU) is skipped; at most a tenth of them may be.
use crate::gradcheck;
use crate::handwritten_expansion as handwritten;
use crate::standalone::Standalone;

use std::collections::HashMap;
use std::ops::Range;

use gradcheck::{
    activate_f64, assert_close, assert_close_where, central_differences_f32, central_differences_f64, dense_f64,
    has_kink, uniform, weighted_sum, widen, Tolerance, ACTIVATIONS,
};
use handwritten::Mlp;
use nn_core::layers::{Act, Dense, Dropout};
use nn_core::{Activation, Layer, Model, Rng, Shape, Shape1, Shape2};

/// The step of the differences of the `f64` reference.
const H64: f64 = 1e-6;
/// The step of the differences of the layer's own `f32` forward.
const H32: f32 = 1e-2;
/// Analytic gradient against the `f64` reference.
const TIGHT: Tolerance = Tolerance { abs: 1e-6, rel: 1e-5 };
/// Analytic gradient against the layer's own `f32` forward.
const LOOSE: Tolerance = Tolerance { abs: 1e-4, rel: 1e-3 };

/// One `forward_train` and `backward`.
struct Pass {
    y: Vec<f32>,
    dy: Vec<f32>,
    dx: Vec<f32>,
    grads: Vec<f32>,
}

/// `forward_train` on `x`, drawing dropout masks from `seed`: the output and the cache.
fn forward_train<L: Layer>(layer: &L, params: &[f32], x: &[f32], seed: u64) -> (Vec<f32>, Vec<f32>) {
    let batch = x.len() / L::Input::LEN;
    let mut y = vec![f32::NAN; batch * L::Output::LEN];
    let mut s = Standalone::new::<L>(batch, seed);
    layer.forward_train(x, &mut y, s.train(params));
    (y, s.cache)
}

/// `backward` of `dy` after `forward_train`, adding into `grads`.
#[allow(clippy::too_many_arguments)]
fn backward<L: Layer>(
    layer: &L,
    params: &[f32],
    x: &[f32],
    seed: u64,
    dy: &[f32],
    dx: Option<&mut [f32]>,
    grads: &mut [f32],
) {
    let batch = x.len() / L::Input::LEN;
    let mut y = vec![f32::NAN; batch * L::Output::LEN];
    let mut s = Standalone::new::<L>(batch, seed);
    layer.forward_train(x, &mut y, s.train(params));
    s.grads.copy_from_slice(grads);
    layer.backward(x, &y, &mut dy.to_vec(), dx, s.backward(params));
    grads.copy_from_slice(&s.grads);
}

/// Checks the input and parameter gradients of `layer` at `(params, x)` against both
/// finite differences (see the module doc).
///
/// `reference` maps `f64` parameters and input to the output and the sides of its kinks;
/// `kinks` gives the sides of the kinks of the layer's own forward from `(x, cache)`.
fn check_gradients<L: Layer>(
    what: &str,
    layer: &L,
    params: &[f32],
    x: &[f32],
    seed: u64,
    reference: impl Fn(&[f64], &[f64]) -> (Vec<f64>, Vec<bool>),
    kinks: impl Fn(&[f32], &[f32]) -> Vec<bool>,
) -> Pass {
    let batch = x.len() / L::Input::LEN;
    let dy = uniform(&mut Rng::new(seed + 1000), batch * L::Output::LEN, -1.0, 1.0);
    let (y, _) = forward_train(layer, params, x, seed);
    // `dx` starts as NaN: backward must overwrite it.
    let mut dx = vec![f32::NAN; x.len()];
    let mut grads = vec![0.0; L::PARAMS];
    backward(layer, params, x, seed, &dy, Some(&mut dx), &mut grads);
    let allowed = |n: usize| n / 10 + 1;

    let (params64, x64) = (widen(params), widen(x));
    let loss64 = |p: &[f64], x: &[f64]| {
        let (y, kinks) = reference(p, x);
        (dy.iter().zip(&y).map(|(&d, &y)| d as f64 * y).sum(), kinks)
    };
    let numeric = central_differences_f64(&x64, H64, |x| loss64(&params64, x));
    assert_close_where(&format!("{what}: dx vs f64 reference"), &dx, &numeric, TIGHT, allowed(x.len()));
    let numeric = central_differences_f64(&params64, H64, |p| loss64(p, &x64));
    assert_close_where(&format!("{what}: grads vs f64 reference"), &grads, &numeric, TIGHT, allowed(params.len()));

    let loss32 = |p: &[f32], x: &[f32]| {
        let (y, cache) = forward_train(layer, p, x, seed);
        (weighted_sum(&dy, &y), kinks(x, &cache))
    };
    let numeric = central_differences_f32(x, H32, |x| loss32(params, x));
    assert_close_where(&format!("{what}: dx vs own forward"), &dx, &numeric, LOOSE, allowed(x.len()));
    let numeric = central_differences_f32(params, H32, |p| loss32(p, x));
    assert_close_where(&format!("{what}: grads vs own forward"), &grads, &numeric, LOOSE, allowed(params.len()));

    Pass { y, dy, dx, grads }
}

/// `backward` adds into `grads` (twice from a non-zero start gives start + 2 g),
/// overwrites `dx`, and gives the same parameter gradients with `dx = None`.
fn check_accumulation<L: Layer>(what: &str, layer: &L, params: &[f32], x: &[f32], seed: u64, pass: &Pass) {
    let start = uniform(&mut Rng::new(seed + 2000), L::PARAMS, -1.0, 1.0);
    let mut grads = start.clone();
    backward(layer, params, x, seed, &pass.dy, None, &mut grads);
    let once: Vec<f64> = start.iter().zip(&pass.grads).map(|(&s, &g)| s as f64 + g as f64).collect();
    let rounding = Tolerance { abs: 1e-6, rel: 1e-6 };
    assert_close(&format!("{what}: start + g with dx = None"), &grads, &once, rounding);

    let mut dx = vec![f32::NAN; x.len()];
    backward(layer, params, x, seed, &pass.dy, Some(&mut dx), &mut grads);
    let twice: Vec<f64> = start.iter().zip(&pass.grads).map(|(&s, &g)| s as f64 + 2.0 * g as f64).collect();
    assert_close(&format!("{what}: start + 2 g"), &grads, &twice, rounding);
    assert_eq!(dx, pass.dx, "{what}: dx is overwritten, not accumulated");
}

/// The sides of the kinks of `activation` at the pre-activations `z` (ReLU6's at 0 and
/// at 6).
fn kink_sides<T: Into<f64> + Copy>(activation: Activation, z: &[T]) -> Vec<bool> {
    if activation == Activation::Relu6 {
        z.iter().flat_map(|&v| [v.into() > 0.0, v.into() > 6.0]).collect()
    } else if has_kink(activation) {
        z.iter().map(|&v| v.into() > 0.0).collect()
    } else {
        Vec::new()
    }
}

fn check_dense<const INPUTS: usize, const UNITS: usize, const BIAS: bool>(
    activation: Activation,
    batch: usize,
    seed: u64,
) {
    let what = format!("Dense<{INPUTS}, {UNITS}, bias={BIAS}> {activation:?} batch {batch}");
    let layer = Dense::<INPUTS, UNITS, BIAS>::new(activation);
    let mut rng = Rng::new(seed);
    let params = uniform(&mut rng, Dense::<INPUTS, UNITS, BIAS>::PARAMS, -1.0, 1.0);
    let x = uniform(&mut rng, batch * INPUTS, -1.5, 1.5);

    let reference = |p: &[f64], x: &[f64]| {
        let (weight, bias) = p.split_at(UNITS * INPUTS);
        let (z, y) = dense_f64(x, weight, BIAS.then_some(bias), activation, INPUTS, UNITS);
        (y, kink_sides(activation, &z))
    };
    // The cache holds the pre-activations.
    let kinks = |_: &[f32], cache: &[f32]| kink_sides(activation, cache);
    let pass = check_gradients(&what, &layer, &params, &x, seed, reference, kinks);
    check_accumulation(&what, &layer, &params, &x, seed, &pass);

    let mut y = vec![f32::NAN; batch * UNITS];
    layer.forward(nn_core::Weights::new(&params, &[]), &x, &mut y, &mut []);
    assert_eq!(y, pass.y, "{what}: forward_train computes what forward does");
}

#[test]
fn dense_gradients_match_finite_differences() {
    for (i, activation) in ACTIVATIONS.into_iter().enumerate() {
        for batch in [1, 5] {
            let seed = 10 * i as u64 + batch as u64;
            check_dense::<6, 4, true>(activation, batch, seed);
            check_dense::<6, 4, false>(activation, batch, seed);
            // A single unit (a perceptron) and a single input: the weight gradient is a
            // matrix-vector product and a rank-1 update.
            check_dense::<5, 1, true>(activation, batch, seed + 500);
            check_dense::<1, 3, false>(activation, batch, seed + 600);
        }
    }
}

fn check_activation_layer<S: Shape>(activation: Activation, batch: usize, seed: u64) {
    check_activation_layer_on::<S>(activation, batch, seed, (-2.0, 2.0));
}

/// [`check_activation_layer`] on inputs drawn from `low..high`.
fn check_activation_layer_on<S: Shape>(activation: Activation, batch: usize, seed: u64, (low, high): (f32, f32)) {
    let what = format!("Act<{:?}> {activation:?} batch {batch} on {low}..{high}", S::DIMS);
    let layer = Act::<S>::new(activation);
    let width = *S::DIMS.last().unwrap();
    let x = uniform(&mut Rng::new(seed), batch * S::LEN, low, high);
    let reference = |_: &[f64], x: &[f64]| (activate_f64(activation, x, width), kink_sides(activation, x));
    let kinks = |x: &[f32], _: &[f32]| kink_sides(activation, x);
    let pass = check_gradients(&what, &layer, &[], &x, seed, reference, kinks);
    check_accumulation(&what, &layer, &[], &x, seed, &pass);
}

#[test]
fn activation_layer_gradients_match_finite_differences() {
    for (i, activation) in ACTIVATIONS.into_iter().enumerate() {
        // Softmax normalises the last dimension: rows of 4 in [3, 4], all 5 in [5].
        check_activation_layer::<Shape2<3, 4>>(activation, 2, 100 + i as u64);
        check_activation_layer::<Shape1<5>>(activation, 3, 200 + i as u64);
    }
}

/// ReLU6 on inputs on both sides of both kinks (0 and 6): the gradient is 1 between
/// them and 0 beyond, on either side of 6 as of 0.
#[test]
fn relu6_gradient_matches_finite_differences_across_both_kinks() {
    check_activation_layer_on::<Shape2<4, 5>>(Activation::Relu6, 3, 300, (-3.0, 9.0));
    let x = [-1.0, 0.0, 0.5, 6.0, 7.0];
    let y: Vec<f32> = x.iter().map(|&z| Activation::Relu6.scalar(z)).collect();
    assert_eq!(y, [0.0, 0.0, 0.5, 6.0, 6.0]);
    // PyTorch's `hardtanh_backward`: 0 at both kinks.
    let d: Vec<f32> = x.iter().zip(&y).map(|(&z, &y)| Activation::Relu6.derivative(z, y)).collect();
    assert_eq!(d, [0.0, 0.0, 1.0, 0.0, 0.0]);
}

#[test]
fn dropout_gradient_is_the_mask_times_dy() {
    let layer = Dropout::<Shape1<8>>::new(0.5);
    let (batch, seed) = (5, 7);
    let x = uniform(&mut Rng::new(1), batch * 8, -1.0, 1.0);
    // The mask of this seed, fixed across the differences by reusing the seed.
    let (_, mask) = forward_train(&layer, &[], &x, seed);
    assert!(mask.iter().all(|&m| m == 0.0 || m == 2.0), "mask values are 0 or 1 / (1 - rate): {mask:?}");
    assert!(mask.contains(&0.0) && mask.contains(&2.0));
    let reference = |_: &[f64], x: &[f64]| (x.iter().zip(&mask).map(|(&x, &m)| x * m as f64).collect(), Vec::new());
    let pass = check_gradients("Dropout", &layer, &[], &x, seed, reference, |_, _| Vec::new());
    check_accumulation("Dropout", &layer, &[], &x, seed, &pass);
    let expected: Vec<f32> = pass.dy.iter().zip(&mask).map(|(d, m)| d * m).collect();
    assert_eq!(pass.dx, expected);

    // A mask written by hand: backward reads it from the cache.
    let mask: Vec<f32> = (0..x.len()).map(|i| if i % 3 == 0 { 0.0 } else { 2.0 }).collect();
    let dy = uniform(&mut Rng::new(2), x.len(), -1.0, 1.0);
    let mut dx = vec![f32::NAN; x.len()];
    let mut s = Standalone::of(&layer, batch, 0);
    s.cache.copy_from_slice(&mask);
    layer.backward(&x, &x, &mut dy.clone(), Some(&mut dx), s.backward(&[]));
    let expected: Vec<f32> = dy.iter().zip(&mask).map(|(d, m)| d * m).collect();
    assert_eq!(dx, expected);
}

#[test]
fn dropout_keeps_one_minus_rate_scaled_and_is_the_identity_in_inference() {
    // 100 samples of 1000 values: 100k draws.
    type Wide = Shape1<1000>;
    let x = uniform(&mut Rng::new(3), 100 * 1000, 0.5, 1.5);
    for (rate, seed) in [(0.1f32, 1), (0.3, 2), (0.5, 3), (0.8, 4)] {
        let layer = Dropout::<Wide>::new(rate);
        let (y, mask) = forward_train(&layer, &[], &x, seed);
        let kept = y.iter().filter(|&&v| v != 0.0).count() as f64 / y.len() as f64;
        let keep = 1.0 - rate as f64;
        assert!((kept - keep).abs() < 0.01, "rate {rate}: kept {kept}, expected {keep}");
        for ((&y, &x), &m) in y.iter().zip(&x).zip(&mask) {
            if y != 0.0 {
                let expected = x as f64 / keep;
                assert!((y as f64 - expected).abs() <= 1e-6 * expected, "rate {rate}: {y} != {x} / {keep}");
                assert_eq!(y, x * m, "the cache holds the mask");
            } else {
                assert_eq!(m, 0.0);
            }
        }

        let mut y = vec![f32::NAN; x.len()];
        layer.forward(nn_core::Weights::new(&[], &[]), &x, &mut y, &mut []);
        assert_eq!(y, x, "rate {rate}: inference is the identity");
    }

    // Rate 0 keeps everything, unscaled, in training too.
    let (y, _) = forward_train(&Dropout::<Wide>::new(0.0), &[], &x, 5);
    assert_eq!(y, x);
}

/// The handwritten `Mlp` (64 -> Dense 32 ReLU -> Dropout 0.2 -> Dense 10), through the
/// model's flat parameter array: every parameter's gradient lands at the offset the
/// model reports for its tensor.
#[test]
fn composed_network_gradients_match_through_model_params() {
    let model = Model::<Mlp>::new(11);
    let mut offsets = HashMap::new();
    model.visit_tensors(&mut |t| {
        offsets.insert(t.path.to_string(), t.offset..t.offset + t.len);
    });
    for (batch, seed) in [(1, 20), (5, 21)] {
        check_mlp(&model, &offsets, batch, seed);
    }
}

fn check_mlp(model: &Model<Mlp>, offsets: &HashMap<String, Range<usize>>, batch: usize, seed: u64) {
    let what = format!("Mlp batch {batch}");
    let x = uniform(&mut Rng::new(seed), batch * 64, -1.0, 1.0);

    // The chain's cache per batch: fc1's output, fc1's cache (pre-activations), then
    // the rest's: drop's output, drop's mask, fc2's cache.
    let (_, cache) = forward_train(model.layer(), model.params(), &x, seed);
    assert_eq!(cache.len(), batch * (32 + 32 + 32 + 32 + 10));
    let mask = cache[batch * 96..batch * 128].to_vec();
    assert!(mask.iter().all(|&m| m == 0.0 || m == 1.25), "mask values are 0 or 1 / (1 - 0.2)");
    assert!(mask.contains(&0.0));

    let reference = |p: &[f64], x: &[f64]| {
        let tensor = |name: &str| &p[offsets[name].clone()];
        let (z1, h) = dense_f64(x, tensor("fc1.weight"), Some(tensor("fc1.bias")), Activation::Relu, 64, 32);
        let h: Vec<f64> = h.iter().zip(&mask).map(|(&h, &m)| h * m as f64).collect();
        let (_, y) = dense_f64(&h, tensor("fc2.weight"), Some(tensor("fc2.bias")), Activation::Identity, 32, 10);
        (y, kink_sides(Activation::Relu, &z1))
    };
    // fc1's output is ReLU(z): positive exactly where z is.
    let kinks = |_: &[f32], cache: &[f32]| kink_sides(Activation::Relu, &cache[..batch * 32]);
    let pass = check_gradients(&what, model.layer(), model.params(), &x, seed, reference, kinks);
    check_accumulation(&what, model.layer(), model.params(), &x, seed, &pass);
    for name in ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"] {
        assert!(pass.grads[offsets[name].clone()].iter().any(|&g| g != 0.0), "{what}: {name} has a gradient");
    }
}

#[test]
fn reference_erf_matches_tabulated_values() {
    // Abramowitz and Stegun, table 7.1; erfc(3) and erfc(4) from the same tables.
    for (x, expected) in [
        (0.0, 0.0),
        (0.5, 0.520_499_877_813_046_5),
        (1.0, 0.842_700_792_949_714_9),
        (2.0, 0.995_322_265_018_952_7),
        (-1.0, -0.842_700_792_949_714_9),
        (3.0, 1.0 - 2.209_049_699_858_544e-5),
        (4.0, 1.0 - 1.541_725_790_028_002e-8),
    ] {
        let found = gradcheck::erf(x);
        assert!((found - expected).abs() < 1e-13, "erf({x}) = {found}, expected {expected}");
    }
}
