//! Quantizing whole `network!` models from their description: the layers the
//! quantizer reads from a network are the ones a user would list by hand, and what it
//! cannot run is an error naming the layer.
use nn_core::prelude::*;
use nn_core::quant::calibrate::{FloatDense, QuantizeOptions, WeightGranularity};
use nn_core::quant::network::{NetworkQuantizeError, Quantize};
use nn_core::quant::quantize::{fold_batch_norm, quantize_sequential, FloatConv2d, FloatLayer};
use nn_core::quant::ConvGeometry;
use nn_core::quant::FusedActivation;
use nn_core::quant::PoolGeometry;

network! {
    /// Every 1-D layer the quantizer folds, fuses or skips.
    pub struct Signal: [2, 12] -> [3] {
        conv: Conv1d { filters: 4, kernel: 3, padding: 1 },
        bn: BatchNorm1d,
        relu: Relu,
        pool: MaxPool1d { size: 2 },
        avg: AvgPool1d { size: 2 },
        flat: Flatten,
        drop: Dropout { rate: 0.1 },
        fc: Dense { units: 3 },
    }
}

/// The named tensor of `model`, mutable.
fn tensor_mut<'m, L: Network>(model: &'m mut Model<L>, name: &str) -> &'m mut [f32] {
    let mut found = None;
    model.visit_tensors(&mut |t| {
        if t.path.to_string() == name {
            found = Some((t.offset, t.len, t.trainable));
        }
    });
    let (offset, len, trainable) = found.expect("tensor");
    let (params, buffers) = model.split_state_mut();
    let values = if trainable { params } else { buffers };
    &mut values[offset..offset + len]
}

fn tensor<L: Network>(model: &Model<L>, name: &str) -> Vec<f32> {
    let mut found = None;
    model.visit_tensors(&mut |t| {
        if t.path.to_string() == name {
            found = Some((t.offset, t.len, t.trainable));
        }
    });
    let (offset, len, trainable) = found.expect("tensor");
    let values = if trainable { model.params() } else { model.buffers() };
    values[offset..offset + len].to_vec()
}

#[test]
fn a_network_quantizes_as_its_layers_listed_by_hand() {
    let mut model = Model::<Signal>::new(3);
    // Batch-norm statistics and an affine map far from the identity.
    for (name, values) in [
        ("bn.weight", [1.5, 0.5, 2.0, 0.8]),
        ("bn.bias", [0.1, -0.3, 0.2, 0.0]),
        ("bn.running_mean", [0.2, -0.1, 0.4, -0.3]),
        ("bn.running_var", [0.5, 2.0, 1.5, 0.7]),
    ] {
        tensor_mut(&mut model, name).copy_from_slice(&values);
    }
    let calibration: Vec<f32> = (0..24 * 20).map(|i| ((i * 37 % 101) as f32 / 50.0 - 1.0) * 1.7).collect();

    let (mut weight, mut bias) = (tensor(&model, "conv.weight"), tensor(&model, "conv.bias"));
    let [gamma, beta, mean, var] =
        ["weight", "bias", "running_mean", "running_var"].map(|t| tensor(&model, &format!("bn.{t}")));
    fold_batch_norm(&mut weight, &mut bias, &gamma, &beta, &mean, &var, 1e-5).unwrap();
    let (fc_weight, fc_bias) = (tensor(&model, "fc.weight"), tensor(&model, "fc.bias"));
    // A signal is an image of height 1.
    let geometry = ConvGeometry {
        channels: 2,
        height: 1,
        width: 12,
        kernel: [1, 3],
        stride: [1, 1],
        padding: [0, 1],
        dilation: [1, 1],
        out_height: 1,
        out_width: 12,
    };
    let pool = |width| PoolGeometry {
        height: 1,
        width,
        size: [1, 2],
        stride: [1, 2],
        padding: [0, 0],
        out_height: 1,
        out_width: width / 2,
    };
    let by_hand = [
        FloatLayer::Conv2d(FloatConv2d {
            weight: &weight,
            bias: &bias,
            geometry,
            filters: 4,
            groups: 1,
            activation: FusedActivation::Relu,
        }),
        FloatLayer::MaxPool2d { geometry: pool(12), channels: 4 },
        FloatLayer::AveragePool2d { geometry: pool(6), channels: 4 },
        FloatLayer::Dense(FloatDense {
            weight: &fc_weight,
            bias: &fc_bias,
            inputs: 12,
            outputs: 3,
            activation: FusedActivation::None,
        }),
    ];
    for weights in [WeightGranularity::PerChannel, WeightGranularity::PerTensor] {
        let options = QuantizeOptions { weights, ..QuantizeOptions::default() };
        let expected = quantize_sequential(&by_hand, &calibration, &options).unwrap();
        assert_eq!(model.quantize(&calibration, &options).unwrap(), expected, "{weights:?}");
        // The graph form of the same network computes the same integers.
        let graph = model.quantize_graph(&calibration, &options).unwrap();
        for sample in calibration.chunks_exact(24).take(5) {
            assert_eq!(graph.forward_real(sample).unwrap(), expected.forward_real(sample).unwrap());
        }
    }
}

network! {
    /// A tanh the int8 kernels do not have.
    pub struct WithTanh: [4] -> [2] {
        fc: Dense { units: 3 },
        squash: Tanh,
        out: Dense { units: 2 },
    }
}

network! {
    /// A Dense layer with a sigmoid activation.
    pub struct WithSigmoid: [4] -> [2] {
        fc: Dense { units: 2, activation: Sigmoid },
    }
}

network! {
    /// A product of two branches.
    pub struct Gated: [4] -> [3] graph {
        input x;
        a = left(x): Dense { units: 3 };
        b = right(x): Dense { units: 3 };
        m = multiply(a, b);
        output m;
    }
}

network! {
    /// A concat of the network's input, which keeps its own quantization.
    pub struct Skip: [4] -> [7] graph {
        input x;
        h = fc(x): Dense { units: 3 };
        both = concat(x, h);
        output both;
    }
}

#[test]
fn what_int8_cannot_run_is_an_error_naming_the_layer() {
    let calibration = [0.5f32, -1.0, 0.25, 2.0, 1.0, 0.0, -0.5, 0.75];
    let options = QuantizeOptions::default();
    let unsupported = |e: NetworkQuantizeError| match e {
        NetworkQuantizeError::Unsupported { network, layer, kind, .. } => (network, layer, kind),
        other => panic!("{other}"),
    };
    let error = Model::<WithTanh>::new(1).quantize(&calibration, &options).unwrap_err();
    assert!(error.to_string().contains("`squash`"), "{error}");
    assert_eq!(unsupported(error), ("WithTanh", "squash", "activation"));
    let error = Model::<WithSigmoid>::new(1).quantize(&calibration, &options).unwrap_err();
    assert_eq!(unsupported(error), ("WithSigmoid", "fc", "Dense"));
    let error = Model::<Gated>::new(1).quantize_graph(&calibration, &options).unwrap_err();
    assert_eq!(unsupported(error), ("Gated", "m", "multiply"));
    let error = Model::<Skip>::new(1).quantize_graph(&calibration, &options).unwrap_err();
    assert_eq!(unsupported(error), ("Skip", "both", "concat"));
    // A graph is not a list of layers.
    let error = Model::<Gated>::new(1).quantize(&calibration, &options).unwrap_err();
    assert!(matches!(error, NetworkQuantizeError::Unsupported { .. } | NetworkQuantizeError::NotSequential { .. }));
}

network! {
    /// ReLU6 as a layer after a convolution and as a Dense layer's activation.
    pub struct Clipped: [2, 12] -> [3] {
        conv: Conv1d { filters: 4, kernel: 3, padding: 1 },
        clip: Relu6,
        flat: Flatten,
        fc1: Dense { units: 5, activation: Relu6 },
        fc2: Dense { units: 3 },
    }
}

#[test]
fn relu6_fuses_into_the_layer_before_it_as_the_hand_listed_layers_do() {
    let mut model = Model::<Clipped>::new(11);
    // Weights large enough that both ReLU6 clamp at 6 on the calibration set.
    for name in ["conv.weight", "fc1.weight"] {
        tensor_mut(&mut model, name).iter_mut().for_each(|w| *w *= 6.0);
    }
    let calibration: Vec<f32> = (0..24 * 20).map(|i| ((i * 37 % 101) as f32 / 50.0 - 1.0) * 3.0).collect();
    let [conv_weight, conv_bias, fc1_weight, fc1_bias, fc2_weight, fc2_bias] =
        ["conv.weight", "conv.bias", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"].map(|t| tensor(&model, t));
    let geometry = ConvGeometry {
        channels: 2,
        height: 1,
        width: 12,
        kernel: [1, 3],
        stride: [1, 1],
        padding: [0, 1],
        dilation: [1, 1],
        out_height: 1,
        out_width: 12,
    };
    let by_hand = |activation: FusedActivation| {
        [
            FloatLayer::Conv2d(FloatConv2d {
                weight: &conv_weight,
                bias: &conv_bias,
                geometry,
                filters: 4,
                groups: 1,
                activation,
            }),
            FloatLayer::Dense(FloatDense { weight: &fc1_weight, bias: &fc1_bias, inputs: 48, outputs: 5, activation }),
            FloatLayer::Dense(FloatDense {
                weight: &fc2_weight,
                bias: &fc2_bias,
                inputs: 5,
                outputs: 3,
                activation: FusedActivation::None,
            }),
        ]
    };
    for weights in [WeightGranularity::PerChannel, WeightGranularity::PerTensor] {
        let options = QuantizeOptions { weights, ..QuantizeOptions::default() };
        let expected = quantize_sequential(&by_hand(FusedActivation::Relu6), &calibration, &options).unwrap();
        let quantized = model.quantize(&calibration, &options).unwrap();
        assert_eq!(quantized, expected, "{weights:?}");
        // The clamp at 6 matters here: fused as a plain ReLU the layers quantize otherwise.
        let relu = quantize_sequential(&by_hand(FusedActivation::Relu), &calibration, &options).unwrap();
        assert_ne!(quantized, relu, "{weights:?}: the calibration set never reaches 6");
        let graph = model.quantize_graph(&calibration, &options).unwrap();
        for sample in calibration.chunks_exact(24).take(5) {
            assert_eq!(graph.forward_real(sample).unwrap(), expected.forward_real(sample).unwrap());
        }
    }
}
