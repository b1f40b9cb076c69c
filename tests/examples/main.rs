//! The tutorial examples, compiled in as modules or run with `cargo run --example`, and
//! checked against the results they promise.

mod autoencoder;
mod cnn;
mod concept_index;
mod firmware_int8;
mod gan;
mod import_onnx;
mod import_pytorch;
mod quantization_aware;
mod quantize;
mod regularization;
mod rnn;
mod run;
mod siamese;
mod transformer;
