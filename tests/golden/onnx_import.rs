//! Networks imported from ONNX against onnxruntime.
//!
//! `tools/onnx/generate.py` exported small PyTorch models with `torch.onnx.export`
//! (`tests/import/models/NAME.onnx`) and recorded onnxruntime's outputs on seeded
//! inputs (`NAME.safetensors`). `nn-import` turned each model into `network!` source
//! and weights (`tests/import/generated/NAME.rs` and `.safetensors`; the test
//! `nn-import/tests/regenerate.rs` checks that importing again gives exactly these
//! files). Here the generated networks compile, load their weights and must give
//! onnxruntime's outputs within `1e-5 |e| + 1e-6`.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nn_core::io::{load_safetensors, LoadOptions};
use nn_core::layers::state_from_pytorch;
use nn_core::prelude::*;
use safetensors::SafeTensors;

#[path = "../import/generated/autoencoder.rs"]
mod autoencoder;
#[path = "../import/generated/bigru.rs"]
mod bigru;
#[path = "../import/generated/clip.rs"]
mod clip;
#[path = "../import/generated/clip_bounds.rs"]
mod clip_bounds;
#[path = "../import/generated/cnn1d.rs"]
mod cnn1d;
#[path = "../import/generated/cnn_bn.rs"]
mod cnn_bn;
#[path = "../import/generated/decoder.rs"]
mod decoder;
#[path = "../import/generated/encoder_prenorm.rs"]
mod encoder_prenorm;
#[path = "../import/generated/grouped.rs"]
mod grouped;
#[path = "../import/generated/gru_state.rs"]
mod gru_state;
#[path = "../import/generated/lstm.rs"]
mod lstm;
#[path = "../import/generated/lstm_state.rs"]
mod lstm_state;
#[path = "../import/generated/mlp.rs"]
mod mlp;
#[path = "../import/generated/ops_pool.rs"]
mod ops_pool;
#[path = "../import/generated/ops_rnn.rs"]
mod ops_rnn;
#[path = "../import/generated/pair.rs"]
mod pair;
#[path = "../import/generated/residual.rs"]
mod residual;
#[path = "../import/generated/tokens.rs"]
mod tokens;
#[path = "../import/generated/transformer.rs"]
mod transformer;

fn import_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/import")
}

/// The f32 tensors of a safetensors file: shape and values by name.
fn read(path: &Path) -> BTreeMap<String, (Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file = SafeTensors::deserialize(&bytes).unwrap();
    file.tensors()
        .into_iter()
        .map(|(name, view)| {
            let values = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            (name, (view.shape().to_vec(), values))
        })
        .collect()
}

/// The imported model `name` with its generated weights, checked against
/// onnxruntime's outputs; returns the model and the fixture's inputs.
fn imported<L: Layer + Default>(name: &str) -> (Model<L>, Vec<f32>) {
    let mut model = Model::<L>::zeros();
    let weights = import_dir().join("generated").join(format!("{name}.safetensors"));
    let report = load_safetensors(&mut model, &weights, &LoadOptions::default()).unwrap();
    assert!(!report.loaded.is_empty());
    let fixture = read(&import_dir().join("models").join(format!("{name}.safetensors")));
    let (input_shape, inputs) = &fixture["inputs"];
    let (output_shape, expected) = &fixture["outputs"];
    assert_eq!(input_shape[1..].iter().product::<usize>(), <L::Input as Shape>::LEN);
    assert_eq!(output_shape[1..].iter().product::<usize>(), <L::Output as Shape>::LEN);
    let actual = model.predict(inputs).unwrap();
    assert_eq!(actual.len(), expected.len());
    let mut worst = 0.0f32;
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        let bar = 1e-5 * e.abs() + 1e-6;
        assert!((a - e).abs() <= bar, "{name}: output {i} is {a}, onnxruntime gives {e}");
        worst = worst.max((a - e).abs());
    }
    eprintln!("{name}: {} outputs, largest difference {worst:e}", actual.len());
    (model, inputs.clone())
}

#[test]
fn mlp_matches_onnxruntime() {
    imported::<mlp::Mlp>("mlp");
}

#[test]
fn cnn_with_batch_norm_matches_onnxruntime() {
    imported::<cnn_bn::CnnBn>("cnn_bn");
}

#[test]
fn cnn1d_matches_onnxruntime() {
    imported::<cnn1d::Cnn1d>("cnn1d");
}

#[test]
fn lstm_matches_onnxruntime() {
    imported::<lstm::LstmNet>("lstm");
}

#[test]
fn bidirectional_gru_matches_onnxruntime() {
    imported::<bigru::BiGru>("bigru");
}

#[test]
fn residual_network_matches_onnxruntime() {
    imported::<residual::Residual>("residual");
}

#[test]
fn autoencoder_matches_onnxruntime() {
    imported::<autoencoder::Autoencoder>("autoencoder");
}

#[test]
fn embedding_layer_norm_and_gru_match_onnxruntime() {
    imported::<tokens::TokenGru>("tokens");
}

#[test]
fn transposed_convolution_decoder_matches_onnxruntime() {
    imported::<decoder::Decoder>("decoder");
}

#[test]
fn grouped_and_depthwise_convolutions_match_onnxruntime() {
    imported::<grouped::Grouped>("grouped");
}

/// `torch.clamp(x, 0, 6)` and `nn.ReLU6` (`Clip(0, 6)`) import as `Relu6`,
/// `torch.clamp(x, min=0)` (`Max(x, 0)`) as `Relu`; the inputs include values exactly
/// at 0 and 6.
#[test]
fn clip_to_zero_and_six_imports_as_relu6_and_matches_onnxruntime() {
    imported::<clip::Clipped>("clip");
    let source = std::fs::read_to_string(import_dir().join("generated/clip.rs")).unwrap();
    assert!(source.contains(": Relu6 => [8]"), "{source}");
    assert!(source.contains("units: 16, activation: Relu6"), "{source}");
    assert!(source.contains("units: 8, activation: Relu"), "{source}");
}

/// `Clip` with its upper bound omitted, and `Clip(0, inf)`, import as `Relu`.
#[test]
fn clip_with_a_lower_bound_of_zero_imports_as_relu_and_matches_onnxruntime() {
    imported::<clip_bounds::ClipBounds>("clip_bounds");
    let source = std::fs::read_to_string(import_dir().join("generated/clip_bounds.rs")).unwrap();
    assert!(source.contains(": Relu => [6]"), "{source}");
    assert!(source.contains("units: 8, activation: Relu "), "{source}");
}

/// An ONNX `RNN` both ways, then one forward with `Relu` activations whose final
/// state is the output (written with `onnx.helper`: `nn.RNN` does not export as `RNN`).
#[test]
fn rnn_both_ways_and_with_relu_matches_onnxruntime() {
    imported::<ops_rnn::OpsRnn>("ops_rnn");
    let source = std::fs::read_to_string(import_dir().join("generated/ops_rnn.rs")).unwrap();
    assert!(source.contains("SimpleRnn { units: 4, return_sequences: true, bidirectional: true }"), "{source}");
    assert!(source.contains("SimpleRnn { units: 3, activation: Relu }"), "{source}");
}

/// `Identity`, a 2-D `AveragePool`, `Dropout`, `GlobalAveragePool` and `Flatten`.
#[test]
fn average_pools_flatten_and_dropped_nodes_match_onnxruntime() {
    imported::<ops_pool::OpsPool>("ops_pool");
    let source = std::fs::read_to_string(import_dir().join("generated/ops_pool.rs")).unwrap();
    assert!(source.contains("AvgPool2d") && source.contains("GlobalAvgPool2d"), "{source}");
    assert!(!source.contains("Dropout") && !source.contains("Identity"), "{source}");
}

/// The imported autoencoder trains on: a few epochs of `Fit` towards its own inputs
/// lower the reconstruction loss.
#[test]
fn imported_autoencoder_trains_further_with_fit() {
    let (mut model, inputs) = imported::<autoencoder::Autoencoder>("autoencoder");
    // Targets in (0, 1), the range of the decoder's sigmoid.
    let targets: Vec<f32> = inputs.iter().map(|x| 1.0 / (1.0 + (-x).exp())).collect();
    let samples = inputs.len() / 20;
    let data = Dataset::new(inputs, 20, targets, 20).unwrap();
    let mut fit = Fit::new(Adam::new(1e-2), MeanSquaredError).epochs(30).batch_size(samples).seed(22);
    let history = fit.run(&mut model, &data, None).unwrap();
    let (first, last) = (history.epochs[0].loss, history.epochs.last().unwrap().loss);
    assert!(last < 0.7 * first, "loss {first} -> {last}");
}

/// An imported network trains on: `Fit` (Adam, mean squared error) towards targets
/// that are another function of its onnxruntime outputs (`0.5 y + 0.1`) lowers the loss
/// to less than `ratio` of the first epoch's.
fn trains_further_with_fit<L: Layer + Default>(name: &str, ratio: f32) {
    let (mut model, inputs) = imported::<L>(name);
    let outputs = model.predict(&inputs).unwrap();
    let targets: Vec<f32> = outputs.iter().map(|y| 0.5 * y + 0.1).collect();
    let (input_len, output_len) = (<L::Input as Shape>::LEN, <L::Output as Shape>::LEN);
    let samples = inputs.len() / input_len;
    let data = Dataset::new(inputs, input_len, targets, output_len).unwrap();
    let mut fit = Fit::new(Adam::new(1e-2), MeanSquaredError).epochs(30).batch_size(samples).seed(22);
    let history = fit.run(&mut model, &data, None).unwrap();
    let (first, last) = (history.epochs[0].loss, history.epochs.last().unwrap().loss);
    assert!(first > 0.0 && last < ratio * first, "{name}: loss {first} -> {last}");
}

#[test]
fn imported_mlp_cnns_and_residual_network_train_further_with_fit() {
    trains_further_with_fit::<mlp::Mlp>("mlp", 0.5);
    // Batch norm trains on batch statistics and starts near its targets: a smaller step.
    trains_further_with_fit::<cnn_bn::CnnBn>("cnn_bn", 0.8);
    trains_further_with_fit::<cnn1d::Cnn1d>("cnn1d", 0.5);
    trains_further_with_fit::<residual::Residual>("residual", 0.5);
}

#[test]
fn imported_recurrent_networks_train_further_with_fit() {
    trains_further_with_fit::<lstm::LstmNet>("lstm", 0.5);
    trains_further_with_fit::<bigru::BiGru>("bigru", 0.5);
    trains_further_with_fit::<tokens::TokenGru>("tokens", 0.5);
}

/// Two `nn.TransformerEncoderLayer`s in an `nn.TransformerEncoder` and an
/// `nn.MultiheadAttention`, each exported as some thirty nodes, import as one
/// `TransformerEncoder { layers: 2 }` and a `MultiHeadAttention`.
#[test]
fn transformer_encoder_classifier_matches_onnxruntime() {
    imported::<transformer::Transformer>("transformer");
    let source = std::fs::read_to_string(import_dir().join("generated/transformer.rs")).unwrap();
    assert!(source.contains("encoder: TransformerEncoder { heads: 2, ff: 16, dropout: 0.0, layers: 2 }"), "{source}");
    assert_eq!(source.matches("MultiHeadAttention { heads: 4 }").count(), 1, "{source}");
    assert!(!source.contains("LayerNorm") && !source.contains("add("), "{source}");
}

/// A pre-norm encoder layer with GELU imports as one `TransformerEncoderLayer`.
#[test]
fn pre_norm_encoder_layer_matches_onnxruntime() {
    imported::<encoder_prenorm::PreNormEncoder>("encoder_prenorm");
    let source = std::fs::read_to_string(import_dir().join("generated/encoder_prenorm.rs")).unwrap();
    let layer = "layer: TransformerEncoderLayer { heads: 2, ff: 12, norm_first: true, activation: Gelu, dropout: 0.0 }";
    assert!(source.contains(layer), "{source}");
}

/// The imported Transformer classifier trains on: `Fit` towards labels of its own
/// lowers the cross-entropy.
#[test]
fn imported_transformer_trains_further_with_fit() {
    let (mut model, inputs) = imported::<transformer::Transformer>("transformer");
    let samples = inputs.len() / 30;
    // Labels from the sign of each sample's first two features.
    let labels: Vec<f32> = inputs.chunks(30).map(|x| f32::from(u8::from(x[0] > 0.0) + u8::from(x[1] > 0.0))).collect();
    let data = Dataset::new(inputs, 30, labels, 1).unwrap();
    let loss = SparseCategoricalCrossEntropy::from_logits();
    let mut fit = Fit::new(Adam::new(1e-2), loss).epochs(30).batch_size(samples).seed(22);
    let history = fit.run(&mut model, &data, None).unwrap();
    let (first, last) = (history.epochs[0].loss, history.epochs.last().unwrap().loss);
    assert!(last < 0.5 * first, "loss {first} -> {last}");
}

/// A graph with two inputs and two outputs imports as a network of several inputs
/// and outputs (`MultiIo`): `predict_multi` gives onnxruntime's outputs.
#[test]
fn two_inputs_and_two_outputs_match_onnxruntime() {
    let mut model = Model::<pair::Pair>::zeros();
    let weights = import_dir().join("generated/pair.safetensors");
    load_safetensors(&mut model, &weights, &LoadOptions::default()).unwrap();
    let fixture = read(&import_dir().join("models/pair.safetensors"));
    let (a, b) = (&fixture["inputs_a"].1, &fixture["inputs_b"].1);
    let (score, rec) = model.predict_multi((a, b)).unwrap();
    for (name, actual) in [("score", &score), ("rec", &rec)] {
        let expected = &fixture[&format!("outputs_{name}")].1;
        assert_eq!(actual.len(), expected.len());
        for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
            assert!((a - e).abs() <= 1e-5 * e.abs() + 1e-6, "{name} {i}: {a}, onnxruntime gives {e}");
        }
    }
}

/// A state of the fixture, `[directions, samples, hidden]` (PyTorch's and ONNX's
/// layout), as the network's state input: `[directions, hidden]` per sample.
fn state(fixture: &BTreeMap<String, (Vec<usize>, Vec<f32>)>, name: &str) -> Vec<f32> {
    let (shape, torch) = &fixture[name];
    let mut state = vec![0.0; torch.len()];
    assert_eq!(state_from_pytorch(shape[0], shape[2], torch, &mut state), Ok(shape[1]));
    state
}

fn assert_matches(name: &str, actual: &[f32], expected: &[f32]) {
    assert_eq!(actual.len(), expected.len());
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        assert!((a - e).abs() <= 1e-5 * e.abs() + 1e-6, "{name}: output {i} is {a}, onnxruntime gives {e}");
    }
}

/// An LSTM whose `initial_h` and `initial_c` are inputs of the model imports as
/// `lstm(x, h0, c0)`; with the states converted by `state_from_pytorch` it gives
/// onnxruntime's outputs.
#[test]
fn lstm_from_given_states_matches_onnxruntime() {
    let mut model = Model::<lstm_state::LstmState>::zeros();
    load_safetensors(&mut model, import_dir().join("generated/lstm_state.safetensors"), &LoadOptions::default())
        .unwrap();
    let fixture = read(&import_dir().join("models/lstm_state.safetensors"));
    let (h0, c0) = (state(&fixture, "inputs_h0"), state(&fixture, "inputs_c0"));
    let (actual,) = model.predict_multi((&fixture["inputs_x"].1, &h0, &c0)).unwrap();
    assert_matches("lstm_state", &actual, &fixture["outputs"].1);
    let source = std::fs::read_to_string(import_dir().join("generated/lstm_state.rs")).unwrap();
    assert!(source.contains("(x, h0, c0): Lstm { units: 12 }"), "{source}");
    assert!(source.contains("`nn_core::layers::state_from_pytorch`"), "{source}");
}

/// A bidirectional GRU whose `initial_h` (`[2, batch, 8]`) is an input of the model
/// imports as `gru(x, h0)` with `h0: [2, 8]` and gives onnxruntime's outputs.
#[test]
fn bidirectional_gru_from_a_given_state_matches_onnxruntime() {
    let mut model = Model::<gru_state::GruState>::zeros();
    load_safetensors(&mut model, import_dir().join("generated/gru_state.safetensors"), &LoadOptions::default())
        .unwrap();
    let fixture = read(&import_dir().join("models/gru_state.safetensors"));
    let h0 = state(&fixture, "inputs_h0");
    let (actual,) = model.predict_multi((&fixture["inputs_x"].1, &h0)).unwrap();
    assert_matches("gru_state", &actual, &fixture["outputs"].1);
    let source = std::fs::read_to_string(import_dir().join("generated/gru_state.rs")).unwrap();
    assert!(source.contains("GruState: ([6, 5], [2, 8]) -> [6, 4] graph"), "{source}");
}
