//! The built-in layers, one family per file.
mod activation;
mod conv;
mod dense;
mod dropout;
mod embedding;
mod fake_quant;
mod norm;
mod pool;
mod recurrent;
mod reshape;
mod sequence_dense;

pub use activation::{Abs, Act, Elu, Gelu, Identity, LeakyRelu, Relu, Relu6, Sigmoid, Softmax, Tanh};
pub use conv::{conv_output_size, conv_transpose_output_size, same_padding, Conv1d, Conv2d, ConvTranspose2d, Padding};
pub use dense::Dense;
pub use dropout::Dropout;
pub use embedding::Embedding;
pub use fake_quant::FakeQuant;
pub use norm::{BatchNorm, BatchNorm1d, BatchNorm2d};
pub use pool::{
    pool_output_size, Average, AvgPool1d, AvgPool2d, GlobalAvgPool1d, GlobalAvgPool2d, GlobalMaxPool1d,
    GlobalMaxPool2d, GlobalPool1d, GlobalPool2d, Max, MaxPool1d, MaxPool2d, Pool1d, Pool2d, PoolMode, Upsample,
    Upsample1d,
};
pub use recurrent::{
    state_from_pytorch, state_to_pytorch, Bidirectional, Cell, Gru, GruCell, Lstm, LstmCell, Merge, Recurrent, RnnCell,
    SimpleRnn, StateShapeError, States, StatesMut,
};
pub use reshape::{Flatten, Reshape};
pub use sequence_dense::SequenceDense;

mod attention;
pub(crate) mod layer_norm;
mod positional;
mod transformer;

pub use attention::{CrossAttention, MultiHeadAttention};
pub use layer_norm::LayerNorm;
pub use positional::{sinusoid, LearnedPositional, PositionalEncoding};
pub use transformer::{FeedForward, TransformerEncoder, TransformerEncoderLayer};
