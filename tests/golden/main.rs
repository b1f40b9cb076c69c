//! Golden tests: layers, losses, optimizers, networks and training steps against the
//! values PyTorch computed (`tests/fixtures/`, written by `tools/fixtures/generate.py`).

#[path = "../common/fixtures.rs"]
mod fixtures;

#[path = "../common/gradcheck.rs"]
mod gradcheck;

#[path = "../common/standalone.rs"]
mod standalone;

mod attention;
mod basics;
mod conv;
mod embedding_losses;
mod eval_mode;
mod fake_quant;
mod gan;
mod graph;
mod int8_graph;
mod layers;
mod onnx_import;
mod rnn;
mod rnn_state;
