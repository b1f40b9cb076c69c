//! A network's architecture as data: its layers with their kinds and options, its
//! values with their shapes, and the statements that compute them, as `network!`
//! wrote them. Every network the macro declares implements [`Describe`]; a tool that
//! transforms whole networks (post-training quantization, [`crate::quant::network`])
//! reads this description and the model's tensors (by name, through
//! [`crate::Model::visit_tensors`]) instead of a list of layers written by hand.
//!
//! A sequential network is described as the graph it lowers to: value 0 is the input,
//! and statement `n` applies layer `n` to value `n` to give value `n + 1`.
//!
//! ```
//! use nn_core::describe::{Describe, LayerKind, Statement};
//! use nn_core::prelude::*;
//!
//! network! {
//!     pub struct Tiny: [1, 6, 6] -> [3] {
//!         conv: Conv2d { filters: 2, kernel: 3, padding: Same },
//!         relu: Relu,
//!         flat: Flatten,
//!         fc: Dense { units: 3 },
//!     }
//! }
//!
//! let d = Tiny::DESCRIPTION;
//! assert_eq!(d.layers[0].name, "conv");
//! assert!(matches!(d.layers[0].kind,
//!     LayerKind::Conv { axes: 2, filters: 2, kernel: [3, 3], padding: [[1, 1], [1, 1]], groups: 1, .. }));
//! assert_eq!(d.values[1], &[2, 6, 6]);
//! assert_eq!(d.statements[3], Statement::Apply { layer: 3, input: 3, output: 4 });
//! assert_eq!((d.inputs, d.outputs), (&[0][..], &[4][..]));
//! ```
use crate::Activation;

/// A network whose architecture is known as data (every network of `network!`).
pub trait Describe {
    /// The network's layers, values and statements.
    const DESCRIPTION: Description;
}

/// The architecture of one network.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Description {
    /// The network's name.
    pub name: &'static str,
    /// Its layers, each once even when applied several times (a shared layer).
    pub layers: &'static [LayerDescription],
    /// The shape of one sample of each value (inputs, every statement's result).
    pub values: &'static [&'static [usize]],
    /// The name of each value as written (`x`, `h`; a sequential network's values are
    /// the input and then its layers' names).
    pub value_names: &'static [&'static str],
    /// The statements in the order they run.
    pub statements: &'static [Statement],
    /// The values that are the network's inputs, in declared order.
    pub inputs: &'static [usize],
    /// The values that are its outputs, in declared order.
    pub outputs: &'static [usize],
}

/// One layer: its name (its tensors are `name.weight`, `name.bias`, ...) and kind.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayerDescription {
    /// The layer's name in its network.
    pub name: &'static str,
    /// What it computes.
    pub kind: LayerKind,
}

/// What a layer computes, with the options that define it. Per-axis options of a 1-D
/// layer (`axes: 1`) are in the first entry of each pair.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LayerKind {
    /// `Dense`: `y = activation(W x + b)`, `weight[units, inputs]`.
    Dense {
        /// Outputs.
        units: usize,
        /// The activation applied to the outputs.
        activation: Activation,
        /// Whether it has a bias.
        bias: bool,
    },
    /// `Conv1d` (`axes: 1`) or `Conv2d` (`axes: 2`), `weight[filters, channels / groups, k..]`.
    Conv {
        /// Spatial axes.
        axes: usize,
        /// Output channels.
        filters: usize,
        /// Kernel size per axis.
        kernel: [usize; 2],
        /// Stride per axis.
        stride: [usize; 2],
        /// Zeros `[before, after]` per axis (`Same` resolved).
        padding: [[usize; 2]; 2],
        /// Dilation per axis.
        dilation: [usize; 2],
        /// Channel groups.
        groups: usize,
        /// Whether it has a bias.
        bias: bool,
    },
    /// `MaxPool1d` or `MaxPool2d`.
    MaxPool {
        /// Spatial axes.
        axes: usize,
        /// Window size per axis.
        size: [usize; 2],
        /// Stride per axis.
        stride: [usize; 2],
        /// Padding per axis (both sides).
        padding: [usize; 2],
    },
    /// `AvgPool1d` or `AvgPool2d` (dividing by the window's size).
    AvgPool {
        /// Spatial axes.
        axes: usize,
        /// Window size per axis.
        size: [usize; 2],
        /// Stride per axis.
        stride: [usize; 2],
        /// Padding per axis (both sides).
        padding: [usize; 2],
    },
    /// `BatchNorm1d` or `BatchNorm2d` (tensors `weight`, `bias`, `running_mean`,
    /// `running_var`).
    BatchNorm {
        /// The epsilon added to the variance.
        eps: f32,
    },
    /// An activation used as a layer (`Relu`, `Tanh`, ...).
    Activation(Activation),
    /// `Flatten`: the same values as a vector.
    Flatten,
    /// `Reshape`: the same values in another shape.
    Reshape,
    /// `Dropout`: the identity at inference.
    Dropout,
    /// Any other kind (a recurrent layer, attention, a network used as a layer, a
    /// tied Dense layer), by the name written.
    Other {
        /// The kind's name.
        kind: &'static str,
    },
}

/// One statement of a network: a value computed from others.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Statement {
    /// `output = layer(input)`.
    Apply {
        /// The index of the layer in [`Description::layers`].
        layer: usize,
        /// The value it reads.
        input: usize,
        /// The value it writes.
        output: usize,
    },
    /// `output = inputs[0] + inputs[1] + ...`, element by element.
    Add {
        /// The operands.
        inputs: &'static [usize],
        /// The result.
        output: usize,
    },
    /// `output = inputs[0] - inputs[1]`.
    Subtract {
        /// The operands.
        inputs: &'static [usize],
        /// The result.
        output: usize,
    },
    /// `output = inputs[0] * inputs[1] * ...`, element by element.
    Multiply {
        /// The operands.
        inputs: &'static [usize],
        /// The result.
        output: usize,
    },
    /// Concatenation along one axis: operand `k` is read as rows of `blocks[k]`
    /// contiguous values (see [`crate::graph::concat`]).
    Concat {
        /// The operands.
        inputs: &'static [usize],
        /// Each operand's block.
        blocks: &'static [usize],
        /// The result.
        output: usize,
    },
}

impl Statement {
    /// The value this statement writes.
    pub const fn output(&self) -> usize {
        match *self {
            Statement::Apply { output, .. }
            | Statement::Add { output, .. }
            | Statement::Subtract { output, .. }
            | Statement::Multiply { output, .. }
            | Statement::Concat { output, .. } => output,
        }
    }
}

impl Description {
    /// How many statements read value `v`.
    pub fn uses(&self, v: usize) -> usize {
        let reads = |s: &Statement| match *s {
            Statement::Apply { input, .. } => usize::from(input == v),
            Statement::Add { inputs, .. }
            | Statement::Subtract { inputs, .. }
            | Statement::Multiply { inputs, .. }
            | Statement::Concat { inputs, .. } => inputs.iter().filter(|&&i| i == v).count(),
        };
        self.statements.iter().map(reads).sum::<usize>() + self.outputs.iter().filter(|&&o| o == v).count()
    }
}
