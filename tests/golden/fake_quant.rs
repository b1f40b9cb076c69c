//! Golden tests of quantization-aware training (`nn_core::quant::qat`, the `FakeQuant`
//! layer and the weight fake quantization of `Fit::fake_quantize_weights`) against
//! PyTorch (group `fake_quant` of `tools/fixtures/generate.py`):
//!
//! - `fake_quant_per_tensor_*`: `torch.fake_quantize_per_tensor_affine` forward and
//!   backward, bit for bit, on exact halves of a step (ties to even), values around
//!   them, random values and values far outside the range; the scale and zero point
//!   are TensorFlow Lite's for the case's range, computed by the script in float32.
//! - `fake_quant_per_channel`: `torch.fake_quantize_per_channel_affine` with the
//!   post-training weight scales `max|w| / 127` and with power-of-two scales on exact
//!   halves and saturating weights.
//! - `fake_quant_observer`: the range of `MovingAverageMinMaxObserver` after each of
//!   four batches.
//!
//! The straight-through gradient is not a derivative (fake quantization is a step
//! function), so finite differences cannot check it: the tests assert its documented
//! mask, `grad_input = grad_output` where the unclamped integer lies in the range and
//! 0 elsewhere, against PyTorch's.
use crate::fixtures;

use fixtures::Fixture;
use nn_core::layers::FakeQuant;
use nn_core::quant::calibrate::WeightGranularity;
use nn_core::quant::qat::{
    activation_quantization, fake_quantize, fake_quantize_per_channel, weight_scale, WeightFakeQuant, ACTIVATION_RANGE,
    WEIGHT_RANGE,
};
use nn_core::{BackwardCtx, Layer, Rng, Shape1, TrainCtx, Weights};

fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

/// Asserts `actual == expected` bit for bit (`-0` and `0` alike), naming the first
/// difference.
fn assert_bits(what: &str, actual: &[f32], expected: &[f32]) {
    assert_eq!(actual.len(), expected.len(), "{what}: length");
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!(a == e || a.to_bits() == e.to_bits(), "{what}[{i}]: {a:e}, PyTorch {e:e}");
    }
}

fn mask_product(mask: &[f32], grad_output: &[f32]) -> Vec<f32> {
    mask.iter().zip(grad_output).map(|(m, g)| m * g).collect()
}

#[test]
fn per_tensor_fake_quantization_is_pytorchs() {
    for name in ["fake_quant_per_tensor_pow2", "fake_quant_per_tensor_range"] {
        let f = Fixture::load(name);
        let (x, scale, zero_point) = (f.values("input"), f.values("scale")[0], f.values("zero_point")[0] as i32);
        let (q, _) = activation_quantization(f.option_f32("min"), f.option_f32("max"));
        assert_eq!((q.scale.to_bits(), q.zero_point), (scale.to_bits(), zero_point), "{name}: TensorFlow Lite's scale");
        let (mut y, mut mask) = (vec![0.0; x.len()], vec![0.0; x.len()]);
        fake_quantize(x, scale, zero_point, ACTIVATION_RANGE, &mut y, Some(&mut mask));
        assert_bits(name, &y, f.values("output"));
        assert_bits(name, &mask_product(&mask, f.values("grad_output")), f.values("grad_input"));
        assert!(mask.contains(&0.0) && mask.contains(&1.0), "{name}: values inside and outside the range");

        // The layer in evaluation mode with that range computes the same, forward and
        // backward.
        let layer = FakeQuant::<Shape1<1>>::new(0.01);
        let mut buffers = [f.option_f32("min"), f.option_f32("max")];
        let mut inference = vec![0.0; x.len()];
        layer.forward(Weights::new(&[], &buffers), x, &mut inference, &mut []);
        assert_bits(name, &inference, f.values("output"));
        let (mut cache, mut rng) = (vec![0.0; x.len()], Rng::new(0));
        let cx = TrainCtx {
            params: &[],
            buffers: &mut buffers,
            cache: &mut cache,
            scratch: &mut [],
            rng: &mut rng,
            training: false,
        };
        layer.forward_train(x, &mut y, cx);
        let (mut dy, mut dx) = (f.values("grad_output").to_vec(), vec![0.0; x.len()]);
        let cx =
            BackwardCtx { params: &[], cache: &cache, grads: &mut [], frozen: Default::default(), scratch: &mut [] };
        layer.backward(x, &y, &mut dy, Some(&mut dx), cx);
        assert_bits(name, &dx, f.values("grad_input"));
        assert_eq!(buffers, [f.option_f32("min"), f.option_f32("max")], "evaluation mode keeps the range");
    }
    // The power-of-two case lands exactly on halves, where ties to even and ties away
    // from zero differ.
    let f = Fixture::load("fake_quant_per_tensor_pow2");
    let scale = f.values("scale")[0];
    let halves = f.values("input").iter().filter(|&&x| (x / scale).fract().abs() == 0.5).count();
    assert!(halves >= 40, "{halves} exact halves");
}

#[test]
fn per_channel_fake_quantization_is_pytorchs() {
    let f = Fixture::load("fake_quant_per_channel");
    let (w, scales) = (f.values("input"), f.values("scale"));
    let row = w.len() / scales.len();
    for r in 0..3 {
        let scale = weight_scale(&w[r * row..(r + 1) * row]);
        assert_eq!(scale.to_bits(), scales[r].to_bits(), "row {r}: max|w| / 127");
    }
    let (mut y, mut mask) = (vec![0.0; w.len()], vec![0.0; w.len()]);
    fake_quantize_per_channel(w, scales, &vec![0; scales.len()], WEIGHT_RANGE, &mut y, Some(&mut mask));
    assert_bits("per channel", &y, f.values("output"));
    assert_bits("per channel grad", &mask_product(&mask, f.values("grad_output")), f.values("grad_input"));
    assert!(mask[..3 * row].iter().all(|&m| m == 1.0), "max|w| / 127 saturates no weight");
    assert!(mask[3 * row..].contains(&0.0));

    // The weight fake quantization of training computes PyTorch's values with the
    // post-training scales.
    let mut params = w[..3 * row].to_vec();
    let mut weights = WeightFakeQuant::new(vec![(0..3 * row, row)], WeightGranularity::PerChannel);
    weights.quantize(&mut params);
    assert_bits("training weights", &params, &f.values("output")[..3 * row]);
    weights.restore(&mut params);
    assert_eq!(bits(&params), bits(&w[..3 * row]));
}

#[test]
fn the_observed_range_is_pytorchs_moving_average() {
    let f = Fixture::load("fake_quant_observer");
    let momentum = f.option_f32("averaging_constant");
    let layer = FakeQuant::<Shape1<8>>::new(momentum);
    let mut buffers = [0.0f32; 2];
    layer.init(&mut [], &mut buffers, &mut Rng::new(0));
    let mut rng = Rng::new(0);
    for step in 0..4 {
        let x = f.values(&format!("input.step{step}"));
        let (mut y, mut cache) = (vec![0.0; x.len()], vec![0.0; x.len()]);
        let cx = TrainCtx {
            params: &[],
            buffers: &mut buffers,
            cache: &mut cache,
            scratch: &mut [],
            rng: &mut rng,
            training: true,
        };
        layer.forward_train(x, &mut y, cx);
        let expected = [f.values(&format!("min_val.step{step}"))[0], f.values(&format!("max_val.step{step}"))[0]];
        assert_eq!(bits(&buffers), bits(&expected), "step {step}");
    }
}
