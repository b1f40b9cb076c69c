//! Quantization-aware training through `Fit`: `FakeQuant` layers observe their ranges
//! in training mode and keep them in evaluation mode, `Fit::fake_quantize_weights`
//! trains float weights through their int8 values, and `model.quantize` takes the
//! trained ranges for the values the `FakeQuant` layers read.
use nn_core::prelude::*;
use nn_core::quant::calibrate::{activation_quantization, QuantizeOptions, WeightGranularity};
use nn_core::quant::network::{Quantize, QuantizedStep};
use nn_core::quant::qat::WeightFakeQuant;
use nn_core::quant::sequential::Int8Layer;
use nn_core::train::Select;

network! {
    pub struct Qat: [3] -> [2] {
        input_quant: FakeQuant { momentum: 0.5 },
        hidden: Dense { units: 4, activation: Relu },
        hidden_quant: FakeQuant { momentum: 0.5 },
        out: Dense { units: 2 },
    }
}

fn data() -> Dataset {
    let x: Vec<f32> = (0..48).map(|i| ((i * 7 % 13) as f32 - 6.0) / 3.0).collect();
    let t: Vec<f32> = x.chunks(3).flat_map(|s| [s[0] - s[1], s[2] * 0.5]).collect();
    Dataset::new(x, 3, t, 2).unwrap()
}

/// The buffers `[input min, input max, hidden min, hidden max]`.
fn ranges(model: &Model<Qat>) -> [f32; 4] {
    model.buffers().try_into().unwrap()
}

#[test]
fn ranges_move_in_training_and_stay_in_evaluation_mode() {
    let data = data();
    let mut model = Model::<Qat>::new(3);
    assert_eq!(ranges(&model), [0.0; 4], "nothing observed: the layers are the identity");
    let mut names = Vec::new();
    model.visit_tensors(&mut |t| names.push((t.path.to_string(), t.shape.to_vec(), t.trainable)));
    assert!(names.contains(&("input_quant.min_val".to_string(), vec![], false)), "{names:?}");
    let mut fit = Fit::new(Sgd::new(0.01), MeanSquaredError).epochs(1).batch_size(16).shuffle(false);
    fit.run(&mut model, &data, None).unwrap();
    // The first batch sets the input's range; its inputs span [-2, 2].
    let [lo, hi, hidden_lo, hidden_hi] = ranges(&model);
    assert_eq!((lo, hi), (-2.0, 2.0));
    assert!(hidden_lo >= 0.0 && hidden_hi > 0.0, "after a ReLU: [{hidden_lo}, {hidden_hi}]");
    model.eval();
    let before = ranges(&model);
    fit.run(&mut model, &data, None).unwrap();
    assert_eq!(ranges(&model), before, "evaluation mode freezes the ranges");
}

#[test]
fn quantize_takes_the_trained_ranges_instead_of_the_calibration_set() {
    let data = data();
    let mut model = Model::<Qat>::new(3);
    let mut fit = Fit::new(Adam::new(0.01), MeanSquaredError)
        .epochs(20)
        .batch_size(16)
        .fake_quantize_weights(Select::Weights, WeightGranularity::PerChannel);
    fit.run(&mut model, &data, None).unwrap();
    model.eval();
    let [lo, hi, hidden_lo, hidden_hi] = ranges(&model);
    // A calibration set ten times wider than the training data: the input's
    // quantization still comes from the trained range.
    let calibration: Vec<f32> = data.inputs().iter().map(|x| x * 10.0).collect();
    let options = QuantizeOptions::default();
    let int8 = model.quantize(&calibration, &options).unwrap();
    assert_eq!(int8.input, activation_quantization(lo, hi).0);
    assert!(matches!(int8.layers()[0], Int8Layer::Dense { .. }));
    assert_eq!(int8.outputs()[0], activation_quantization(hidden_lo, hidden_hi).0);
    let graph = model.quantize_graph(&calibration, &options).unwrap();
    assert_eq!(graph.quantization[graph.input], int8.input);
    assert!(matches!(&graph.steps[0], QuantizedStep::Layer { name: "hidden", .. }));

    // The int8 network computes what the fake-quantized float network does, to within
    // a step of the output's scale or two.
    let mut fake = model.clone();
    WeightFakeQuant::of_weights(fake.layer(), WeightGranularity::PerChannel).quantize(fake.params_mut());
    let expected = fake.predict(data.inputs()).unwrap();
    let output = int8.output();
    for (s, x) in data.inputs().chunks(3).enumerate() {
        let y = int8.forward_real(x).unwrap();
        for (o, &q) in y.iter().enumerate() {
            let (real, want) = (output.dequantize(q), expected[2 * s + o]);
            assert!((real - want).abs() <= 2.0 * output.scale, "sample {s} output {o}: int8 {real}, float {want}");
        }
    }
}

#[test]
fn weight_fake_quantization_trains_the_float_weights() {
    let data = data();
    let mut model = Model::<Qat>::new(3);
    let mut fit = Fit::new(Sgd::new(0.05), MeanSquaredError)
        .epochs(1)
        .batch_size(48)
        .fake_quantize_weights(Select::Weights, WeightGranularity::PerTensor);
    let before = model.params().to_vec();
    fit.run(&mut model, &data, None).unwrap();
    // The step moved the float weights by small amounts, not onto the int8 grid.
    let weight = &model.params()[..12];
    let scale = weight.iter().fold(0.0f32, |m, w| m.max(w.abs())) / 127.0;
    let off_grid = weight.iter().filter(|w| ((*w / scale) - (*w / scale).round()).abs() > 0.01).count();
    assert!(off_grid > 6, "{off_grid} of 12 weights off the int8 grid");
    assert_ne!(model.params(), &before[..]);
}
