//! Bit-exact checks against TensorFlow Lite Micro: every fixture in
//! `tests/fixtures/int8/` (written by `tools/int8/generate.py`, which runs converted
//! models in the TensorFlow Lite Micro interpreter) is run op by op through these
//! kernels, each op fed the previous ops' results from here, and every tensor compared
//! with the interpreter's. Fixture tensors keep TensorFlow Lite's layouts (NHWC,
//! OHWI filters); they are transposed to `[C, H, W]` around each kernel call.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

use super::prepare::{self, activation_range, channel_multiplier, softmax_params, tensor_multiplier};
use super::*;
use crate::kernels::conv::ConvGeometry;
use crate::kernels::pool::PoolGeometry;

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("tests").join("fixtures").join("int8")
}

fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixture_dir())
        .expect("tests/fixtures/int8 exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| p.file_stem().unwrap().to_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

fn load(name: &str) -> Value {
    let path = fixture_dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One tensor of a fixture.
struct Tensor<'a>(&'a Value);

impl Tensor<'_> {
    fn shape(&self) -> Vec<usize> {
        self.0["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect()
    }
    fn scales(&self) -> Vec<f32> {
        self.0["scale"].as_array().unwrap().iter().map(|s| s.as_f64().unwrap() as f32).collect()
    }
    fn scale(&self) -> f32 {
        self.scales()[0]
    }
    fn zero_point(&self) -> i32 {
        self.0["zero_point"][0].as_i64().unwrap() as i32
    }
    fn data_i8(&self) -> Vec<i8> {
        self.0["data"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap() as i8).collect()
    }
    fn data_i32(&self) -> Vec<i32> {
        self.0["data"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap() as i32).collect()
    }
    fn sample(&self, s: usize) -> Vec<i8> {
        self.0["samples"][s].as_array().unwrap().iter().map(|v| v.as_i64().unwrap() as i8).collect()
    }
    fn sample_count(&self) -> usize {
        self.0["samples"].as_array().map_or(0, Vec::len)
    }
}

fn tensor<'a>(fixture: &'a Value, id: i64) -> Tensor<'a> {
    Tensor(&fixture["tensors"][id.to_string()])
}

fn activation(op: &Value) -> FusedActivation {
    match op["options"]["fusedActivationFunction"].as_i64().unwrap_or(0) {
        0 => FusedActivation::None,
        1 => FusedActivation::Relu,
        3 => FusedActivation::Relu6,
        other => panic!("fused activation {other} not supported"),
    }
}

/// `[H, W, C]` to `[C, H, W]`.
fn hwc_to_chw(x: &[i8], h: usize, w: usize, c: usize) -> Vec<i8> {
    let mut y = vec![0; x.len()];
    for i in 0..h * w {
        for k in 0..c {
            y[k * h * w + i] = x[i * c + k];
        }
    }
    y
}

/// `[C, H, W]` to `[H, W, C]`.
fn chw_to_hwc(x: &[i8], h: usize, w: usize, c: usize) -> Vec<i8> {
    let mut y = vec![0; x.len()];
    for i in 0..h * w {
        for k in 0..c {
            y[i * c + k] = x[k * h * w + i];
        }
    }
    y
}

/// TensorFlow Lite's padding before the first row or column: half the total, rounded
/// down (`SAME`), or zero (`VALID`).
fn padding_before(same: bool, input: usize, output: usize, stride: usize, kernel: usize, dilation: usize) -> usize {
    if !same {
        return 0;
    }
    let effective = (kernel - 1) * dilation + 1;
    let total = ((output - 1) * stride + effective).saturating_sub(input);
    total / 2
}

fn opt(op: &Value, key: &str) -> usize {
    op["options"][key].as_u64().unwrap_or_else(|| panic!("option {key} missing")) as usize
}

/// Runs one op with inputs from `values`, returning its output (NHWC, flat).
fn run_op(fixture: &Value, op: &Value, values: &BTreeMap<i64, Vec<i8>>, rounding: Rounding) -> Vec<i8> {
    let ids: Vec<i64> = op["inputs"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
    let out_id = op["outputs"][0].as_i64().unwrap();
    let out = tensor(fixture, out_id);
    let out_len: usize = out.shape().iter().product();
    let value = |id: i64| values.get(&id).cloned().unwrap_or_else(|| tensor(fixture, id).data_i8());
    let bias = |position: usize| ids.get(position).filter(|&&id| id >= 0).map(|&id| tensor(fixture, id).data_i32());
    let mut y = vec![0i8; out_len];
    match op["op"].as_str().unwrap() {
        "FULLY_CONNECTED" => {
            let (input, filter) = (tensor(fixture, ids[0]), tensor(fixture, ids[1]));
            let [outputs, depth] = filter.shape()[..] else { panic!("filter shape") };
            let multipliers: Vec<QuantizedMultiplier> = if filter.scales().len() > 1 {
                filter.scales().iter().map(|&s| channel_multiplier(input.scale(), s, out.scale(), rounding)).collect()
            } else {
                vec![tensor_multiplier(input.scale(), filter.scale(), out.scale(), rounding)]
            };
            let (activation_min, activation_max) = activation_range(activation(op), out.scale(), out.zero_point());
            let params = FullyConnectedParams {
                input_offset: -input.zero_point(),
                filter_offset: -filter.zero_point(),
                output_offset: out.zero_point(),
                activation_min,
                activation_max,
                rounding,
            };
            let x = value(ids[0]);
            let (w, b) = (filter.data_i8(), bias(2));
            for (xr, yr) in x.chunks(depth).zip(y.chunks_mut(outputs)) {
                fully_connected(&params, xr, &w, b.as_deref(), &multipliers, yr).unwrap();
            }
            if rounding == Rounding::Double {
                check_requantization(op, &multipliers);
            }
        }
        kind @ ("CONV_2D" | "DEPTHWISE_CONV_2D") => {
            let (input, filter) = (tensor(fixture, ids[0]), tensor(fixture, ids[1]));
            let [_, h, w, c] = input.shape()[..] else { panic!("input shape") };
            let [_, oh, ow, f] = out.shape()[..] else { panic!("output shape") };
            let fs = filter.shape();
            let (kh, kw) = (fs[1], fs[2]);
            let raw = filter.data_i8();
            // OHWI (or 1HW(C*M) for depthwise) to [F, C / groups, KH, KW].
            let (groups, group_channels) = if kind == "CONV_2D" { (c / fs[3], fs[3]) } else { (c, 1) };
            let mut weights = vec![0i8; raw.len()];
            for o in 0..f {
                for i in 0..kh {
                    for j in 0..kw {
                        for k in 0..group_channels {
                            let src = if kind == "CONV_2D" {
                                ((o * kh + i) * kw + j) * group_channels + k
                            } else {
                                (i * kw + j) * f + o
                            };
                            weights[((o * group_channels + k) * kh + i) * kw + j] = raw[src];
                        }
                    }
                }
            }
            let same = opt(op, "padding") == 0;
            let (sh, sw) = (opt(op, "strideH"), opt(op, "strideW"));
            let (dh, dw) = (opt(op, "dilationHFactor"), opt(op, "dilationWFactor"));
            let geometry = ConvGeometry {
                channels: c,
                height: h,
                width: w,
                kernel: [kh, kw],
                stride: [sh, sw],
                padding: [padding_before(same, h, oh, sh, kh, dh), padding_before(same, w, ow, sw, kw, dw)],
                dilation: [dh, dw],
                out_height: oh,
                out_width: ow,
            };
            let scales = filter.scales();
            let multipliers: Vec<QuantizedMultiplier> =
                scales.iter().map(|&s| channel_multiplier(input.scale(), s, out.scale(), rounding)).collect();
            let (activation_min, activation_max) = activation_range(activation(op), out.scale(), out.zero_point());
            let params = ConvParams {
                geometry,
                filters: f,
                groups,
                input_offset: -input.zero_point(),
                output_offset: out.zero_point(),
                activation_min,
                activation_max,
                rounding,
            };
            let x = hwc_to_chw(&value(ids[0]), h, w, c);
            let mut y_chw = vec![0i8; out_len];
            conv2d(&params, &x, &weights, bias(2).as_deref(), &multipliers, &mut y_chw).unwrap();
            y = chw_to_hwc(&y_chw, oh, ow, f);
            if rounding == Rounding::Double {
                check_requantization(op, &multipliers);
            }
        }
        kind @ ("MAX_POOL_2D" | "AVERAGE_POOL_2D") => {
            let input = tensor(fixture, ids[0]);
            let [_, h, w, c] = input.shape()[..] else { panic!("input shape") };
            let [_, oh, ow, _] = out.shape()[..] else { panic!("output shape") };
            let (kh, kw) = (opt(op, "filterHeight"), opt(op, "filterWidth"));
            let (sh, sw) = (opt(op, "strideH"), opt(op, "strideW"));
            let same = opt(op, "padding") == 0;
            let geometry = PoolGeometry {
                height: h,
                width: w,
                size: [kh, kw],
                stride: [sh, sw],
                padding: [padding_before(same, h, oh, sh, kh, 1), padding_before(same, w, ow, sw, kw, 1)],
                out_height: oh,
                out_width: ow,
            };
            let (activation_min, activation_max) = activation_range(activation(op), out.scale(), out.zero_point());
            let params = PoolParams { geometry, activation_min, activation_max };
            let x = hwc_to_chw(&value(ids[0]), h, w, c);
            let mut y_chw = vec![0i8; out_len];
            if kind == "MAX_POOL_2D" {
                max_pool2d(&params, &x, &mut y_chw).unwrap();
            } else {
                average_pool2d(&params, &x, &mut y_chw).unwrap();
            }
            y = chw_to_hwc(&y_chw, oh, ow, c);
        }
        "ADD" => {
            let (a, b) = (tensor(fixture, ids[0]), tensor(fixture, ids[1]));
            let params = prepare::add_params(
                (a.scale(), a.zero_point()),
                (b.scale(), b.zero_point()),
                (out.scale(), out.zero_point()),
                activation(op),
                rounding,
            );
            add(&params, &value(ids[0]), &value(ids[1]), &mut y).unwrap();
            if rounding == Rounding::Double {
                let r = &op["requantization"];
                let pair = |m: QuantizedMultiplier| serde_json::json!([m.multiplier, m.shift]);
                assert_eq!(r["input1"], pair(params.input1_multiplier));
                assert_eq!(r["input2"], pair(params.input2_multiplier));
                assert_eq!(r["output"], pair(params.output_multiplier));
            }
        }
        "SOFTMAX" => {
            let input = tensor(fixture, ids[0]);
            let beta = op["options"]["beta"].as_f64().unwrap() as f32;
            let params = softmax_params(beta, input.scale(), rounding);
            let depth = *input.shape().last().unwrap();
            softmax(&params, &value(ids[0]), depth, &mut y).unwrap();
            if rounding == Rounding::Double {
                let r = &op["requantization"];
                assert_eq!(r["multiplier"].as_i64().unwrap(), params.input.multiplier as i64);
                assert_eq!(r["left_shift"].as_i64().unwrap(), params.input.shift as i64);
                assert_eq!(r["diff_min"].as_i64().unwrap(), params.diff_min as i64);
            }
        }
        "RESHAPE" => y.copy_from_slice(&value(ids[0])),
        "CONCATENATION" => {
            let axis = op["options"]["axis"].as_i64().unwrap();
            let rank = out.shape().len() as i64;
            assert!(axis == -1 || axis == rank - 1, "concatenation along the channels only");
            // Vectors `[1, n]` are one channel each of height and width 1.
            let (h, w, c_out) = match out.shape()[..] {
                [_, h, w, c] => (h, w, c),
                [_, n] => (1, 1, n),
                _ => panic!("output shape"),
            };
            let parts: Vec<Vec<i8>> = ids
                .iter()
                .map(|&id| {
                    let t = tensor(fixture, id);
                    assert_eq!((t.scale(), t.zero_point()), (out.scale(), out.zero_point()), "requantizing concat");
                    hwc_to_chw(&value(id), h, w, *t.shape().last().unwrap())
                })
                .collect();
            let refs: Vec<&[i8]> = parts.iter().map(Vec::as_slice).collect();
            let mut y_chw = vec![0i8; out_len];
            concat(&refs, &mut y_chw).unwrap();
            y = chw_to_hwc(&y_chw, h, w, c_out);
        }
        other => panic!("op {other} has no int8 kernel"),
    }
    y
}

/// The multipliers and shifts the fixture script derived (as TensorFlow Lite Micro does)
/// equal [`prepare`]'s.
/// (The script derives them for the default build, so this runs for double rounding.)
fn check_requantization(op: &Value, multipliers: &[QuantizedMultiplier]) {
    let r = &op["requantization"];
    let expected: Vec<(i64, i64)> = r["multiplier"]
        .as_array()
        .unwrap()
        .iter()
        .zip(r["shift"].as_array().unwrap())
        .map(|(m, s)| (m.as_i64().unwrap(), s.as_i64().unwrap()))
        .collect();
    let found: Vec<(i64, i64)> = multipliers.iter().map(|m| (m.multiplier as i64, m.shift as i64)).collect();
    assert_eq!(found, expected, "{}: multipliers", op["op"]);
}

/// Runs every sample of `fixture` through its ops, chaining this module's outputs;
/// returns, per sample, every op output tensor id and its values.
fn run_fixture(fixture: &Value, rounding: Rounding) -> Vec<BTreeMap<i64, Vec<i8>>> {
    let inputs: Vec<i64> = fixture["inputs"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
    let samples = tensor(fixture, inputs[0]).sample_count();
    assert!(samples > 0, "{}: no samples", fixture["name"]);
    (0..samples)
        .map(|s| {
            let mut values: BTreeMap<i64, Vec<i8>> =
                inputs.iter().map(|&id| (id, tensor(fixture, id).sample(s))).collect();
            for op in fixture["ops"].as_array().unwrap() {
                let y = run_op(fixture, op, &values, rounding);
                values.insert(op["outputs"][0].as_i64().unwrap(), y);
            }
            values
        })
        .collect()
}

#[test]
fn every_fixture_is_bit_exact_with_tensorflow_lite_micro() {
    let names = fixture_names();
    assert!(names.len() >= 20, "only {} int8 fixtures", names.len());
    let mut compared = 0usize;
    for name in &names {
        let fixture = load(name);
        for (s, values) in run_fixture(&fixture, Rounding::Double).iter().enumerate() {
            for op in fixture["ops"].as_array().unwrap() {
                let id = op["outputs"][0].as_i64().unwrap();
                let expected = tensor(&fixture, id).sample(s);
                let found = &values[&id];
                assert_eq!(found.len(), expected.len());
                for (i, (f, e)) in found.iter().zip(&expected).enumerate() {
                    assert_eq!(f, e, "{name}: sample {s}, {} output (tensor {id}) element {i}", op["op"]);
                }
                compared += expected.len();
            }
        }
    }
    assert!(compared > 2000, "compared only {compared} values");
}

#[test]
fn single_rounding_differs_on_the_halves_and_matches_its_own_reference() {
    let halves: Vec<String> = fixture_names().into_iter().filter(|n| n.ends_with("_halves")).collect();
    assert!(halves.len() >= 4, "halves fixtures: {halves:?}");
    for name in &halves {
        let fixture = load(name);
        let out_id = fixture["outputs"][0].as_i64().unwrap();
        let single = run_fixture(&fixture, Rounding::Single);
        let double = run_fixture(&fixture, Rounding::Double);
        let reference = fixture["single_rounding_output"].as_array().unwrap();
        assert_eq!(reference.len(), single.len());
        for (s, (values, expected)) in single.iter().zip(reference).enumerate() {
            let expected: Vec<i8> = expected.as_array().unwrap().iter().map(|v| v.as_i64().unwrap() as i8).collect();
            assert_eq!(values[&out_id], expected, "{name}: sample {s} with single rounding");
            let tflm = tensor(&fixture, out_id).sample(s);
            assert_eq!(double[s][&out_id], tflm, "{name}: sample {s} with double rounding");
            assert_ne!(values[&out_id], tflm, "{name}: sample {s} does not tell the roundings apart");
        }
    }
}

#[test]
fn calibration_of_the_float_mlp_reproduces_the_converter() {
    use super::calibrate::WeightGranularity;
    calibration_reproduces_the_converter("model_digits_mlp", WeightGranularity::PerChannel);
    calibration_reproduces_the_converter("model_digits_mlp_per_tensor", WeightGranularity::PerTensor);
}

fn calibration_reproduces_the_converter(name: &str, granularity: super::calibrate::WeightGranularity) {
    use super::calibrate::{quantize_dense_stack, FloatDense, QuantizeOptions};
    let fixture = load(name);
    let float_model = &fixture["float_model"];
    let floats = |v: &Value| -> Vec<f32> { v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect() };
    let layers_json = float_model["layers"].as_array().unwrap();
    let weights: Vec<Vec<f32>> = layers_json.iter().map(|l| floats(&l["weight"])).collect();
    let biases: Vec<Vec<f32>> = layers_json.iter().map(|l| floats(&l["bias"])).collect();
    let layers: Vec<FloatDense<'_>> = layers_json
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let outputs = l["units"].as_u64().unwrap() as usize;
            FloatDense {
                weight: &weights[i],
                bias: &biases[i],
                inputs: weights[i].len() / outputs,
                outputs,
                activation: match l["activation"].as_str().unwrap() {
                    "relu" => FusedActivation::Relu,
                    "linear" => FusedActivation::None,
                    other => panic!("activation {other}"),
                },
            }
        })
        .collect();
    let calibration: Vec<f32> = float_model["calibration"].as_array().unwrap().iter().flat_map(floats).collect();
    let options = QuantizeOptions { weights: granularity, ..QuantizeOptions::default() };
    let quantized = quantize_dense_stack(&layers, &calibration, &options).unwrap();

    let ops = fixture["ops"].as_array().unwrap();
    assert_eq!(ops.len(), quantized.len());
    for (l, (op, q)) in ops.iter().zip(&quantized).enumerate() {
        let id = |k: &str, i: usize| op[k][i].as_i64().unwrap();
        let (input, weight, bias, output) = (
            tensor(&fixture, id("inputs", 0)),
            tensor(&fixture, id("inputs", 1)),
            tensor(&fixture, id("inputs", 2)),
            tensor(&fixture, id("outputs", 0)),
        );
        assert_eq!(q.weight_scales, weight.scales(), "{name} layer {l}: weight scales");
        assert_eq!(q.weight, weight.data_i8(), "{name} layer {l}: int8 weights");
        for (found, expected) in [(q.input, &input), (q.output, &output)] {
            // The input's range is the calibration set's, exactly; later ranges come
            // from an f32 forward whose sums may round differently in the last bit
            // (measured: at most one unit in the last place of the scale).
            let relative = ((found.scale - expected.scale()) / expected.scale()).abs();
            assert!(relative < 2.5e-7, "{name} layer {l}: scale {} against {}", found.scale, expected.scale());
            assert_eq!(found.zero_point, expected.zero_point(), "{name} layer {l}: zero point");
        }
        if l == 0 {
            assert_eq!(q.input.scale, input.scale(), "the input scale is exact");
        }
        assert_eq!(q.bias, bias.data_i32(), "{name} layer {l}: int32 biases");
    }

    // The calibrated stack, run in integers, gives the interpreter's outputs: the
    // one-ulp scale differences do not move any multiplier far enough to matter here.
    let input_id = fixture["inputs"][0].as_i64().unwrap();
    let output_id = fixture["outputs"][0].as_i64().unwrap();
    for s in 0..tensor(&fixture, input_id).sample_count() {
        let mut x = tensor(&fixture, input_id).sample(s);
        for q in &quantized {
            let mut y = vec![0i8; q.bias.len()];
            q.forward(&x, &mut y).unwrap();
            x = y;
        }
        assert_eq!(x, tensor(&fixture, output_id).sample(s), "{name}: sample {s}");
    }
}

/// OHWI filters (TensorFlow Lite's) to `[O, I, kh, kw]` (this library's).
fn ohwi_to_oihw(x: &[i8], o: usize, kh: usize, kw: usize, i: usize) -> Vec<i8> {
    x.chunks_exact(kh * kw * i).flat_map(|filter| hwc_to_chw(filter, kh, kw, i)).collect::<Vec<_>>()[..o * kh * kw * i]
        .to_vec()
}

#[test]
fn calibration_of_the_float_cnn_folds_its_batch_norm_and_reproduces_the_converter() {
    use super::calibrate::QuantizeOptions;
    use super::quantize::{fold_batch_norm, quantize_sequential, FloatConv2d, FloatLayer, QuantizedLayer};
    use crate::kernels::conv::ConvGeometry;
    use crate::kernels::pool::PoolGeometry;
    let name = "model_cnn_batch_norm";
    let fixture = load(name);
    let float_model = &fixture["float_model"];
    let floats = |v: &Value| -> Vec<f32> { v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect() };
    let sizes =
        |v: &Value| -> Vec<usize> { v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect() };
    let activation = |l: &Value| match l["activation"].as_str().unwrap() {
        "relu" => FusedActivation::Relu,
        "relu6" => FusedActivation::Relu6,
        "linear" => FusedActivation::None,
        other => panic!("activation {other}"),
    };
    // Each layer's weights and biases (the batch norm folded), then the layers.
    let json = float_model["layers"].as_array().unwrap();
    let mut constants: Vec<(Vec<f32>, Vec<f32>)> = Vec::new();
    for l in json {
        if l["kind"] == "max_pool2d" {
            constants.push((Vec::new(), Vec::new()));
            continue;
        }
        let (mut w, mut b) = (floats(&l["weight"]), floats(&l["bias"]));
        if let Some(bn) = l.get("batch_norm") {
            let eps = bn["eps"].as_f64().unwrap() as f32;
            let [gamma, beta, mean, var] = ["gamma", "beta", "mean", "var"].map(|k| floats(&bn[k]));
            fold_batch_norm(&mut w, &mut b, &gamma, &beta, &mean, &var, eps).unwrap();
        }
        constants.push((w, b));
    }
    let mut layers = Vec::new();
    for (l, (w, b)) in json.iter().zip(&constants) {
        let kind = l["kind"].as_str().unwrap();
        if kind == "dense" {
            let outputs = l["units"].as_u64().unwrap() as usize;
            layers.push(FloatLayer::Dense(super::calibrate::FloatDense {
                weight: w,
                bias: b,
                inputs: w.len() / outputs,
                outputs,
                activation: activation(l),
            }));
            continue;
        }
        let [c, h, wd] = sizes(&l["input"])[..] else { panic!("input") };
        let same = l["padding"].as_str().unwrap() == "same";
        let stride = sizes(&l["strides"]);
        let kernel = sizes(&l[if kind == "conv2d" { "kernel" } else { "size" }]);
        let out = |input: usize, axis: usize| {
            if same {
                input.div_ceil(stride[axis])
            } else {
                (input - kernel[axis]) / stride[axis] + 1
            }
        };
        let (oh, ow) = (out(h, 0), out(wd, 1));
        let padding = [
            padding_before(same, h, oh, stride[0], kernel[0], 1),
            padding_before(same, wd, ow, stride[1], kernel[1], 1),
        ];
        if kind == "conv2d" {
            let geometry = ConvGeometry {
                channels: c,
                height: h,
                width: wd,
                kernel: [kernel[0], kernel[1]],
                stride: [stride[0], stride[1]],
                padding,
                dilation: [1, 1],
                out_height: oh,
                out_width: ow,
            };
            layers.push(FloatLayer::Conv2d(FloatConv2d {
                weight: w,
                bias: b,
                geometry,
                filters: l["filters"].as_u64().unwrap() as usize,
                groups: l["groups"].as_u64().unwrap() as usize,
                activation: activation(l),
            }));
        } else {
            let geometry = PoolGeometry {
                height: h,
                width: wd,
                size: [kernel[0], kernel[1]],
                stride: [stride[0], stride[1]],
                padding,
                out_height: oh,
                out_width: ow,
            };
            layers.push(FloatLayer::MaxPool2d { geometry, channels: c });
        }
    }
    let calibration: Vec<f32> = float_model["calibration"].as_array().unwrap().iter().flat_map(floats).collect();
    let network = quantize_sequential(&layers, &calibration, &QuantizeOptions::default()).unwrap();

    // The converter's ops, the reshape before the Dense layer left out.
    let ops: Vec<&Value> =
        fixture["ops"].as_array().unwrap().iter().filter(|op| op["op"].as_str() != Some("RESHAPE")).collect();
    assert_eq!(ops.len(), network.layers.len());
    let input_id = fixture["inputs"][0].as_i64().unwrap();
    assert_eq!(network.input.scale, tensor(&fixture, input_id).scale(), "the input scale is exact");
    assert_eq!(network.input.zero_point, tensor(&fixture, input_id).zero_point());
    for (l, ((op, q), quantization)) in ops.iter().zip(&network.layers).zip(network.outputs()).enumerate() {
        let output = tensor(&fixture, op["outputs"][0].as_i64().unwrap());
        // Scales within a unit in the last place or two: the f32 forward (and here the
        // batch norm folding) rounds its sums differently from TensorFlow's.
        let relative = ((quantization.scale - output.scale()) / output.scale()).abs();
        assert!(relative < 2.5e-7, "{name} layer {l}: scale {} against {}", quantization.scale, output.scale());
        assert_eq!(quantization.zero_point, output.zero_point(), "{name} layer {l}: zero point");
        let (weight, bias) = match q {
            QuantizedLayer::Conv2d { weight, bias, .. } | QuantizedLayer::Dense { weight, bias, .. } => (weight, bias),
            _ => continue,
        };
        let filter = tensor(&fixture, op["inputs"][1].as_i64().unwrap());
        for (found, expected) in q.weight_scales().iter().zip(filter.scales()) {
            let relative = ((found - expected) / expected).abs();
            assert!(relative < 2.5e-7, "{name} layer {l}: weight scale {found} against {expected}");
        }
        let shape = filter.shape();
        let expected = if let QuantizedLayer::Conv2d { .. } = q {
            ohwi_to_oihw(&filter.data_i8(), shape[0], shape[1], shape[2], shape[3])
        } else {
            // The Dense layer's inputs in [C, H, W] order: the pooled conv output is 3x2x6.
            filter.data_i8().chunks_exact(shape[1]).flat_map(|row| hwc_to_chw(row, 3, 2, 6)).collect()
        };
        assert_eq!(weight, &expected, "{name} layer {l}: int8 weights");
        assert_eq!(bias, &tensor(&fixture, op["inputs"][2].as_i64().unwrap()).data_i32(), "{name} layer {l}: biases");
    }

    // The calibrated network, in integers, gives the interpreter's outputs.
    let output_id = fixture["outputs"][0].as_i64().unwrap();
    let input = tensor(&fixture, input_id);
    let [_, h, w, c] = input.shape()[..] else { panic!("input shape") };
    for s in 0..input.sample_count() {
        let x = hwc_to_chw(&input.sample(s), h, w, c);
        assert_eq!(network.forward(&x).unwrap(), tensor(&fixture, output_id).sample(s), "{name}: sample {s}");
    }
}
