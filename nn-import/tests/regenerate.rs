//! The committed imports are what the importer writes today, and a model with
//! several unsupported operators gets one report naming each of them.
//!
//! The models are `tests/import/models/*.onnx` (from `tools/onnx/generate.py`); the
//! generated sources and weights, `tests/import/generated/`, are compiled and checked
//! against onnxruntime by `tests/golden/onnx_import.rs`. After a change to the
//! importer, rewrite them with `NN_IMPORT_BLESS=1 cargo test -p nn-import --test regenerate`
//! and read the diff.
use std::path::{Path, PathBuf};

use nn_import::{import_file, ImportError, Options};

/// The golden models and their network names.
const MODELS: &[(&str, &str)] = &[
    ("mlp", "Mlp"),
    ("cnn_bn", "CnnBn"),
    ("cnn1d", "Cnn1d"),
    ("lstm", "LstmNet"),
    ("bigru", "BiGru"),
    ("residual", "Residual"),
    ("autoencoder", "Autoencoder"),
    ("tokens", "TokenGru"),
    ("decoder", "Decoder"),
    ("grouped", "Grouped"),
    ("transformer", "Transformer"),
    ("pair", "Pair"),
    ("clip", "Clipped"),
    ("clip_bounds", "ClipBounds"),
    ("ops_rnn", "OpsRnn"),
    ("ops_pool", "OpsPool"),
    ("encoder_prenorm", "PreNormEncoder"),
    ("lstm_state", "LstmState"),
    ("gru_state", "GruState"),
];

fn import_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/import")
}

/// Every committed import: the model, the network's name, the source and the weights.
fn imports() -> Vec<(PathBuf, &'static str, PathBuf, PathBuf)> {
    let dir = import_dir();
    let mut all: Vec<_> = MODELS
        .iter()
        .map(|&(file, name)| {
            (
                dir.join("models").join(format!("{file}.onnx")),
                name,
                dir.join("generated").join(format!("{file}.rs")),
                dir.join("generated").join(format!("{file}.safetensors")),
            )
        })
        .collect();
    // The model of the example `16_import_onnx`.
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    all.push((
        examples.join("data/onnx_digits.onnx"),
        "DigitCnn",
        examples.join("imported/digit_cnn.rs"),
        examples.join("data/onnx_digits.safetensors"),
    ));
    all
}

#[test]
fn importing_again_gives_the_committed_sources_and_weights() {
    let bless = std::env::var_os("NN_IMPORT_BLESS").is_some();
    let mut stale = Vec::new();
    for (model, name, source, weights) in imports() {
        let mut options = Options::new(name);
        options.weights_name = weights.file_name().map(|n| n.to_string_lossy().into_owned());
        let imported = import_file(&model, &options).unwrap_or_else(|e| panic!("{}: {e}", model.display()));
        if bless {
            imported.write(&source, &weights).unwrap();
            continue;
        }
        if std::fs::read_to_string(&source).ok().as_deref() != Some(imported.source.as_str()) {
            stale.push(source.display().to_string());
        }
        if std::fs::read(&weights).ok() != imported.safetensors().ok() {
            stale.push(weights.display().to_string());
        }
    }
    assert!(stale.is_empty(), "regenerate with NN_IMPORT_BLESS=1: these files differ from the import: {stale:?}");
}

#[test]
fn every_unsupported_node_is_reported_at_once() {
    let model = import_dir().join("models/unsupported.onnx");
    let err = import_file(&model, &Options::new("Unsupported")).unwrap_err();
    let ImportError::Unsupported(nodes) = &err else { panic!("{err}") };
    let ops: Vec<&str> = nodes.iter().map(|n| n.op.as_str()).collect();
    // The grouped convolution between them is supported and not listed.
    assert_eq!(ops, ["Sin", "Pad", "CumSum"], "{err}");
    assert_eq!(nodes[0].input_shapes, ["[1, 4, 6, 6]"]);
    assert_eq!(nodes[1].input_shapes[0], "[1, 4, 4, 4]");
    assert!(nodes.iter().all(|n| !n.node.is_empty()));
    let message = err.to_string();
    assert!(message.starts_with("3 node(s) of the model have no equivalent in the library:"), "{message}");
    assert!(
        message.contains("Sin `node_sin`, inputs [1, 4, 6, 6]: no layer of the library computes `Sin`"),
        "{message}"
    );
}

#[test]
fn clips_other_than_relu_and_relu6_are_reported_with_their_bounds() {
    let model = import_dir().join("models/clip_unsupported.onnx");
    let err = import_file(&model, &Options::new("Clips")).unwrap_err();
    let ImportError::Unsupported(nodes) = &err else { panic!("{err}") };
    let names: Vec<&str> = nodes.iter().map(|n| n.node.as_str()).collect();
    assert_eq!(names, ["hardtanh", "relu5"], "{err}");
    assert!(nodes.iter().all(|n| n.op == "Clip"), "{err}");
    assert!(nodes[0].reason.starts_with("a clip to [-1, 1]; the library clips to [0, inf] (`Relu`)"), "{err}");
    assert!(nodes[1].reason.starts_with("a clip to [0, 5];"), "{err}");
}

#[test]
fn a_recurrent_layer_run_backwards_only_is_reported() {
    let model = import_dir().join("models/rnn_reverse.onnx");
    let err = import_file(&model, &Options::new("Reverse")).unwrap_err();
    let ImportError::Unsupported(nodes) = &err else { panic!("{err}") };
    assert_eq!(nodes.len(), 1, "{err}");
    assert_eq!((nodes[0].op.as_str(), nodes[0].node.as_str()), ("RNN", "rnn_reverse"));
    assert_eq!(nodes[0].reason, "`direction = reverse`; the library runs forward or both ways", "{err}");
}

#[test]
fn a_constant_initial_state_that_is_not_zero_is_reported() {
    let model = import_dir().join("models/rnn_constant_state.onnx");
    let err = import_file(&model, &Options::new("ConstantState")).unwrap_err();
    let ImportError::Unsupported(nodes) = &err else { panic!("{err}") };
    assert_eq!(nodes.len(), 1, "{err}");
    assert_eq!((nodes[0].op.as_str(), nodes[0].node.as_str()), ("RNN", "rnn_h0"));
    assert!(nodes[0].reason.starts_with("its initial_h is a constant that is not zero;"), "{err}");
    assert!(nodes[0].reason.ends_with("(make `h0` an input of the model)"), "{err}");
}

#[test]
fn a_dynamic_dimension_names_itself_and_the_fix() {
    // An LSTM exported with dynamic batch and time axes: the batch is fine, the time
    // axis must be fixed.
    let model = import_dir().join("models/dynamic_time.onnx");
    let err = import_file(&model, &Options::new("Dynamic")).unwrap_err();
    let ImportError::DynamicShape(dims) = &err else { panic!("{err}") };
    assert_eq!(dims.len(), 1);
    assert_eq!((dims[0].input.as_str(), dims[0].axis, dims[0].declared.as_str()), ("x", 1, "[batch, time, 6]"));
    assert!(err.to_string().contains("give it with `--input-shape x=...`"), "{err}");
    // An `--input-shape` for an input the model does not have.
    let err = import_file(&model, &Options::new("Dynamic").input_shape("y", &[1, 7, 6])).unwrap_err();
    assert!(err.to_string().contains("the model's inputs are [\"x\"]"), "{err}");
    let err = nn_import::import(b"not a model", &Options::new("Dynamic")).unwrap_err();
    assert!(matches!(err, ImportError::Parse(_)), "{err}");
}

#[test]
fn attention_the_library_does_not_compute_is_reported_not_guessed() {
    // Written out by hand with the scale 1 / D: the pattern of `nn.MultiheadAttention`
    // (input projection, split, scaled product, softmax, output projection), one entry.
    let model = import_dir().join("models/attention_scaled.onnx");
    let err = import_file(&model, &Options::new("Scaled")).unwrap_err();
    let ImportError::Unsupported(nodes) = &err else { panic!("{err}") };
    assert_eq!(nodes.len(), 1, "{err}");
    assert_eq!(nodes[0].op, "MatMul");
    assert!(nodes[0].reason.starts_with("the multi-head attention pattern of 10 nodes"), "{err}");
    assert!(nodes[0].reason.contains("for any number of heads"), "{err}");
    // The TorchScript exporter (`dynamo=False`) computes the attention's shapes at run
    // time (`Shape`, `Slice`, `Cast`...): every such node is listed, nothing panics.
    let model = import_dir().join("models/attention_torchscript.onnx");
    let err = import_file(&model, &Options::new("TorchScript")).unwrap_err();
    let ImportError::Unsupported(nodes) = &err else { panic!("{err}") };
    assert!(nodes.iter().any(|n| n.op == "Shape") && nodes.len() > 5, "{err}");
}
