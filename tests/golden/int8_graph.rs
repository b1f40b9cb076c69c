//! A whole int8 graph network against TensorFlow Lite Micro: a `network!` graph whose
//! convolution and dense branches merge by `add` and `concat`, quantized by
//! `Quantize::quantize_graph` from its f32 weights and calibration set, and run in
//! integers. `tests/fixtures/int8/model_graph_add_concat.json` (written by
//! `tools/int8/generate.py model_graph_add_concat`) holds the same model converted by
//! TensorFlow's converter and run in the TensorFlow Lite Micro interpreter: its f32
//! weights in this library's layouts, the calibration set, every tensor's int8
//! weights, biases, scales and zero points, and every intermediate int8 value.
use nn_core::describe::Describe;
use nn_core::prelude::*;
use nn_core::quant::calibrate::{MinMax, QuantizeOptions};
use nn_core::quant::network::{calibrate_graph, quantize_graph_with, Quantize, QuantizedStep};
use nn_core::quant::quantize::QuantizedLayer;
use nn_core::quant::sequential::TensorQuantization;
use serde_json::Value;

network! {
    /// The fixture's model: TensorFlow Lite fuses the ReLU into the add and the
    /// flatten becomes a reshape.
    pub struct AddConcat: [2, 7, 6] -> [5] graph {
        input x;
        ra = c1(x): Conv2d { filters: 4, kernel: 3, padding: Same };
        b = c2(x): Conv2d { filters: 4, kernel: 1 };
        s = add(ra, b);
        sr = r2(s): Relu;
        p = pool(sr): MaxPool2d { size: 2 };
        d = dw(p): Conv2d { filters: 4, kernel: 3, padding: Same, groups: 4 };
        e = pw(p): Conv2d { filters: 2, kernel: 1 };
        cat = concat(d, e);
        f = flat(cat): Flatten;
        h1 = fc1(f): Dense { units: 8, activation: Relu };
        h2 = fc2(f): Dense { units: 8 };
        cat2 = concat(h1, h2);
        out = fc3(cat2): Dense { units: 5 };
        output out;
    }
}

fn fixture() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/int8/model_graph_add_concat.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json")
}

fn numbers<T>(v: &Value, f: impl Fn(&Value) -> T) -> Vec<T> {
    v.as_array().expect("array").iter().map(f).collect()
}

/// `[H, W, C]` values to `[C, H, W]`.
fn hwc_to_chw<T: Copy + Default>(x: &[T], h: usize, w: usize, c: usize) -> Vec<T> {
    let mut y = vec![T::default(); x.len()];
    for i in 0..h * w {
        for k in 0..c {
            y[k * h * w + i] = x[i * c + k];
        }
    }
    y
}

/// The model with the fixture's f32 weights.
fn model(fixture: &Value) -> Model<AddConcat> {
    let tensors = &fixture["float_model"]["tensors"];
    let mut model = Model::<AddConcat>::zeros();
    let mut places = Vec::new();
    model.visit_tensors(&mut |t| places.push((t.path.to_string(), t.offset, t.len)));
    assert_eq!(places.len(), 14, "{places:?}");
    for (name, offset, len) in places {
        let values = numbers(&tensors[&name], |x| x.as_f64().unwrap() as f32);
        assert_eq!(values.len(), len, "{name}");
        model.params_mut()[offset..offset + len].copy_from_slice(&values);
    }
    model
}

#[test]
fn an_int8_graph_with_add_and_concat_is_bit_exact_with_tensorflow_lite_micro() {
    let fixture = fixture();
    let model = model(&fixture);
    let calibration: Vec<f32> =
        numbers(&fixture["float_model"]["calibration"], |s| numbers(s, |x| x.as_f64().unwrap() as f32)).concat();
    let description = AddConcat::DESCRIPTION;
    let value = |name: &str| description.value_names.iter().position(|&n| n == name).expect("value");
    let options = QuantizeOptions::default();
    let own = model.quantize_graph(&calibration, &options).unwrap();
    let tensor = |id: &str| &fixture["tensors"][id];
    let values = fixture["values"].as_object().expect("values");
    assert_eq!(values.len(), 11, "every op but the reshape computes a value");
    let input = tensor(&fixture["inputs"][0].to_string());
    let quantization_of = |t: &Value| TensorQuantization {
        scale: t["scale"][0].as_f64().unwrap() as f32,
        zero_point: t["zero_point"][0].as_i64().unwrap() as i32,
    };

    // The library's calibration gives the converter's scales (within a unit in the
    // last place or two: the f32 forward rounds its sums differently) and zero points,
    // except for `ra`: the converter calibrates in TensorFlow Lite's interpreter, which
    // computes `add` in place, so the buffer of its first operand holds the (ReLU'd)
    // sum by the time its range is read, and `ra`'s range is the union of its own and
    // the sum's. That is the interpreter's memory plan, not the specification.
    assert_eq!(own.quantization[own.input], quantization_of(input), "input");
    let (ra, sr) = (value("ra"), value("sr"));
    let ranges = calibrate_graph(&model, &calibration, options.activations).unwrap();
    let union = MinMax { min: ranges[ra].min.min(ranges[sr].min), max: ranges[ra].max.max(ranges[sr].max) };
    for (out, name) in values {
        let (v, expected) = (value(name.as_str().unwrap()), quantization_of(tensor(out)));
        let found = if v == ra { union.quantization() } else { own.quantization[v] };
        assert!(
            ((found.scale - expected.scale) / expected.scale).abs() < 2.5e-7,
            "{name}: scale {found:?} against {expected:?}"
        );
        assert_eq!(found.zero_point, expected.zero_point, "{name}: zero point");
    }

    // With the converter's quantizations the quantizer gives its int8 weights, biases
    // and multipliers, and the network its integers.
    let mut quantization = own.quantization.clone();
    quantization[own.input] = quantization_of(input);
    for (out, name) in values {
        quantization[value(name.as_str().unwrap())] = quantization_of(tensor(out));
    }
    let graph = quantize_graph_with(&model, &quantization, &options).unwrap();

    let mut layers_compared = 0;
    for op in fixture["ops"].as_array().unwrap() {
        let out = op["outputs"][0].to_string();
        let Some(name) = values.get(&out).and_then(Value::as_str) else { continue };
        let v = value(name);
        assert_eq!(graph.quantization[v], quantization_of(tensor(&out)), "{name}: quantization");
        let Some(QuantizedStep::Layer { layer, .. }) =
            graph.steps.iter().find(|s| matches!(s, QuantizedStep::Layer { output, .. } if *output == v))
        else {
            continue;
        };
        let (weight, bias, multipliers) = match layer.as_ref() {
            QuantizedLayer::Dense { weight, bias, multipliers, .. }
            | QuantizedLayer::Conv2d { weight, bias, multipliers, .. } => (weight, bias, multipliers),
            _ => continue,
        };
        let filter = tensor(&op["inputs"][1].to_string());
        let shape = numbers(&filter["shape"], |d| d.as_u64().unwrap() as usize);
        let data = numbers(&filter["data"], |x| x.as_i64().unwrap() as i8);
        let expected: Vec<i8> = match (op["op"].as_str().unwrap(), name) {
            // OHWI and depthwise 1HWC filters to [O, I, kh, kw].
            ("CONV_2D", _) => data
                .chunks_exact(shape[1] * shape[2] * shape[3])
                .flat_map(|f| hwc_to_chw(f, shape[1], shape[2], shape[3]))
                .collect(),
            ("DEPTHWISE_CONV_2D", _) => hwc_to_chw(&data, shape[1], shape[2], shape[3]),
            // Rows over the flattened [3, 3, 6] concat, reordered to [C, H, W].
            (_, "h1" | "h2") => data.chunks_exact(shape[1]).flat_map(|row| hwc_to_chw(row, 3, 3, 6)).collect(),
            _ => data,
        };
        assert_eq!(weight, &expected, "{name}: int8 weights");
        let expected_bias = numbers(&tensor(&op["inputs"][2].to_string())["data"], |x| x.as_i64().unwrap() as i32);
        assert_eq!(bias, &expected_bias, "{name}: int32 biases");
        let r = &op["requantization"];
        let found: Vec<(i64, i64)> = multipliers.iter().map(|m| (m.multiplier as i64, m.shift as i64)).collect();
        let expected: Vec<(i64, i64)> = numbers(&r["multiplier"], |m| m.as_i64().unwrap())
            .into_iter()
            .zip(numbers(&r["shift"], |s| s.as_i64().unwrap()))
            .collect();
        assert_eq!(found, expected, "{name}: multipliers");
        layers_compared += 1;
    }
    assert_eq!(layers_compared, 7, "every Dense layer and convolution");

    // Every intermediate int8 value of every sample, bit for bit.
    let samples = input["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 4);
    let mut compared = 0;
    for (s, sample) in samples.iter().enumerate() {
        let x = hwc_to_chw(&numbers(sample, |x| x.as_i64().unwrap() as i8), 7, 6, 2);
        let found = graph.forward_values(&x).unwrap();
        for (out, name) in values {
            let v = value(name.as_str().unwrap());
            let expected = numbers(&tensor(out)["samples"][s], |x| x.as_i64().unwrap() as i8);
            let expected = match description.values[v] {
                &[c, h, w] => hwc_to_chw(&expected, h, w, c),
                _ => expected,
            };
            assert_eq!(found[v], expected, "sample {s}: {name}");
            compared += expected.len();
        }
    }
    assert_eq!(compared, 4 * (4 * 42 * 3 + 4 * 9 * 2 + 2 * 9 + 6 * 9 + 8 * 2 + 16 + 5));
}
