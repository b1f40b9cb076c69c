//! Compile-time neural networks.
//!
//! A model is written with [`network!`]. Every tensor shape in it is known at compile
//! time: a shape mistake is a compile error that points at the offending layer. The
//! macro expands into a zero-sized architecture type implementing [`Layer`], whose
//! `forward` and `backward` are monomorphized code over shared blocked kernels (internal
//! to the crate). Parameters live in one flat `f32` array per model ([`Model`]), laid out
//! as PyTorch's `state_dict`, so the same model trains on a laptop and runs from a
//! `static` array inside `no_std` firmware.
//!
//! New to deep learning? The [`guide`] module (딥러닝 기초 개념) takes the concepts of an
//! introductory course one by one, from the neuron to the Siamese network, each with
//! its formula and a runnable example.
//!
//! ```
//! use nn_core::prelude::*;
//!
//! network! {
//!     /// A tiny classifier.
//!     pub struct Tiny: [4] -> [3] {
//!         fc1: Dense { units: 8, activation: Relu },
//!         logits: Dense { units: 3 },
//!     }
//! }
//!
//! let model = Model::<Tiny>::new(7);
//! let scores = model.predict_one(&[0.1, 0.2, 0.3, 0.4].into());
//! assert_eq!(scores.len(), 3);
//! assert_eq!(Tiny::PARAMS, 4 * 8 + 8 + 8 * 3 + 3);
//! ```
#![cfg_attr(not(feature = "std"), no_std)]
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

#[cfg(feature = "alloc")]
extern crate alloc;
// The unit tests name the crate as users do (`nn_core::...`, the paths `network!`
// expands to).
#[cfg(test)]
extern crate self as nn_core;

pub mod activation;
pub mod describe;
pub mod graph;
/// The numeric kernels. Not part of the API: public only with the unstable `internals`
/// feature (for the benchmarks, the firmware's instruction counts and
/// `tools/kernel-probe`; paths and signatures change without notice), and hidden from
/// the documentation. Their tests are unit tests (`kernels/tests/`).
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod kernels;
#[cfg(not(feature = "internals"))]
pub(crate) mod kernels;
pub mod layer;
pub mod layers;
pub mod loss;
pub mod model;
pub mod multi;
pub mod optim;
pub mod quant;
pub mod rng;
pub mod shape;
pub mod stream;
pub mod tokens;
pub mod weights;

#[cfg(feature = "std")]
pub mod data;
#[cfg(feature = "std")]
pub mod guide;
#[cfg(feature = "std")]
pub mod io;
#[cfg(feature = "alloc")]
pub mod report;
#[cfg(feature = "alloc")]
pub mod train;

pub use activation::Activation;
pub use layer::{BackwardCtx, Layer, Network, TensorInfo, TensorPath, TrainCtx, Weights};
pub use model::Model;
pub use nn_macros::include_weights;
pub use nn_macros::network;
pub use rng::Rng;
pub use shape::{Shape, Shape1, Shape2, Shape3, Tensor};

/// What a model file needs: `use nn_core::prelude::*;` brings the `network!` macro,
/// the model, layer and shape types, the layers, losses and optimizers, and the types
/// of a training loop (`Fit`, `Dataset`, the step API's `Workspace` and
/// `OptimizerState`).
///
/// Settings with generic names stay in their modules, so that a file's own `Mode`,
/// `Metric` or `Schedule` never clashes with the prelude: import them from
/// [`train`] (`Metric`, `Schedule`, `Mode`, `Select`, `Penalty`, `Constraint`,
/// `GradClip`, `History`, `EpochLog`, `Evaluation`, `TrainError`) and [`layers`]
/// (`Padding`, `Merge`, the recurrent `Cell`s).
pub mod prelude {
    pub use crate::activation::Activation;
    pub use crate::layer::{Layer, Network};
    pub use crate::layers::{
        AvgPool1d, AvgPool2d, BatchNorm, BatchNorm1d, BatchNorm2d, Bidirectional, Conv1d, Conv2d, ConvTranspose2d,
        CrossAttention, Dense, Dropout, Elu, Embedding, FeedForward, Flatten, Gelu, GlobalAvgPool1d, GlobalAvgPool2d,
        GlobalMaxPool1d, GlobalMaxPool2d, Gru, Identity, LayerNorm, LeakyRelu, LearnedPositional, Lstm, MaxPool1d,
        MaxPool2d, MultiHeadAttention, PositionalEncoding, Relu, Reshape, SequenceDense, Sigmoid, SimpleRnn, Softmax,
        Tanh, TransformerEncoder, TransformerEncoderLayer, Upsample, Upsample1d,
    };
    pub use crate::loss::{
        BinaryCrossEntropy, CategoricalCrossEntropy, ContrastiveLoss, CosineEmbeddingLoss, GanLoss, Loss,
        MeanAbsoluteError, MeanSquaredError, PairLoss, SparseCategoricalCrossEntropy, TripletMarginLoss,
    };
    pub use crate::model::Model;
    pub use crate::network;
    pub use crate::optim::{AdaGrad, Adam, AdamW, Optimizer, RmsProp, Sgd};
    pub use crate::rng::Rng;
    pub use crate::shape::{Shape, Shape1, Shape2, Shape3, Tensor};
    #[cfg(feature = "alloc")]
    pub use crate::train::{Dataset, EarlyStopping, Fit, OptimizerState, ReduceOnPlateau, Workspace};
}

#[doc(hidden)]
pub mod __private {
    //! Items used by the code `network!` generates. Not part of the public API.
    pub use crate::layer::private::*;
}
