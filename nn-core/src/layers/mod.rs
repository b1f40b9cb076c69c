//! The built-in layers, one family per file.
mod activation;
mod dense;
mod dropout;

pub use activation::{Act, Elu, Gelu, Identity, LeakyRelu, Relu, Sigmoid, Softmax, Tanh};
pub use dense::Dense;
pub use dropout::Dropout;
