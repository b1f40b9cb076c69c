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
//! assert_eq!(d.statements[3], Statement::Apply { layer: 3, input: 3, initial: &[], output: 4, states: &[] });
//! assert_eq!((d.inputs, d.outputs), (&[0][..], &[4][..]));
//! ```
//!
//! Displayed, a description reads as the graph form: the inputs, one statement a line
//! with the layer's kind and the shape of every value it writes, and the outputs.
//!
//! ```
//! # use nn_core::describe::Describe;
//! # use nn_core::prelude::*;
//! network! {
//!     pub struct Encoder: [4, 2] -> ([4, 3], [3]) graph {
//!         input x;
//!         (y, h, c) = enc(x): Lstm { units: 3, return_sequences: true };
//!         z = add(h, c);
//!         output y, z;
//!     }
//! }
//!
//! assert_eq!(
//!     Encoder::DESCRIPTION.to_string(),
//!     "Encoder
//! input x: [4, 2]
//! (y, h, c) = enc(x): Lstm -> y: [4, 3], h: [3], c: [3]
//! z = add(h, c) -> z: [3]
//! output y, z
//! "
//! );
//! ```
use core::fmt;

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
    /// The name of each value as written (`x`, `h`, `_` for a discarded one; a
    /// sequential network's values are the input and then its layers' names).
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
    /// `output = layer(input)`; for a recurrent layer, with its initial state
    /// `output = layer(input, h0, c0)` and its final state `(output, h, c) = layer(input)`.
    Apply {
        /// The index of the layer in [`Description::layers`].
        layer: usize,
        /// The value it reads.
        input: usize,
        /// The values it reads as its initial state (`h0`, then `c0` for an LSTM); empty
        /// when it starts from zeros.
        initial: &'static [usize],
        /// The value it writes.
        output: usize,
        /// The values it writes its final state into (`h`, then `c` for an LSTM:
        /// `(y, h, c) = lstm(x)`); empty when it gives only `output`.
        states: &'static [usize],
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
    /// The value this statement writes (a recurrent layer's output; its final state
    /// is in [`Statement::Apply`]'s `states`).
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
            Statement::Apply { input, initial, .. } => {
                usize::from(input == v) + initial.iter().filter(|&&i| i == v).count()
            }
            Statement::Add { inputs, .. }
            | Statement::Subtract { inputs, .. }
            | Statement::Multiply { inputs, .. }
            | Statement::Concat { inputs, .. } => inputs.iter().filter(|&&i| i == v).count(),
        };
        self.statements.iter().map(reads).sum::<usize>() + self.outputs.iter().filter(|&&o| o == v).count()
    }
}

impl LayerKind {
    /// The kind as `network!` names it (`Dense`, `Conv2d`, `Relu`, `Lstm`); a batch
    /// norm is `BatchNorm`, whichever its axes.
    pub fn name(&self) -> &'static str {
        let by_axes = |axes: usize, one: &'static str, two: &'static str| if axes == 1 { one } else { two };
        match *self {
            LayerKind::Dense { .. } => "Dense",
            LayerKind::Conv { axes, .. } => by_axes(axes, "Conv1d", "Conv2d"),
            LayerKind::MaxPool { axes, .. } => by_axes(axes, "MaxPool1d", "MaxPool2d"),
            LayerKind::AvgPool { axes, .. } => by_axes(axes, "AvgPool1d", "AvgPool2d"),
            LayerKind::BatchNorm { .. } => "BatchNorm",
            LayerKind::Activation(a) => a.name(),
            LayerKind::Flatten => "Flatten",
            LayerKind::Reshape => "Reshape",
            LayerKind::Dropout => "Dropout",
            LayerKind::Other { kind } => kind,
        }
    }
}

/// Names and shapes, `a: [4, 3], b: [3]`, or names only, `a, b`.
struct Values<'a> {
    d: &'a Description,
    values: &'a [usize],
    shapes: bool,
}

impl fmt::Display for Values<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, &v) in self.values.iter().enumerate() {
            let sep = if n == 0 { "" } else { ", " };
            let name = self.d.value_names.get(v).copied().unwrap_or("?");
            write!(f, "{sep}{name}")?;
            if self.shapes {
                write!(f, ": {:?}", self.d.values.get(v).copied().unwrap_or(&[]))?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for Description {
    /// The network as its graph form writes it: its name, `input` with the inputs'
    /// shapes, one statement a line (`(y, h) = gru(x): Gru -> y: [5, 8], h: [8]`, the
    /// shape of every value it writes) and `output`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let values = |values: &'static [usize], shapes| Values { d: self, values, shapes };
        writeln!(f, "{}", self.name)?;
        writeln!(f, "input {}", values(self.inputs, true))?;
        for s in self.statements {
            let (op, inputs) = match *s {
                Statement::Apply { layer, input, initial, output, states } => {
                    let layer = self.layers.get(layer);
                    let name = layer.map_or("?", |l| l.name);
                    let kind = layer.map_or("?", |l| l.kind.name());
                    let name_of = |v: usize| self.value_names.get(v).copied().unwrap_or("?");
                    if states.is_empty() {
                        write!(f, "{} = {name}({}", name_of(output), name_of(input))?;
                    } else {
                        write!(f, "({}, {}) = {name}({}", name_of(output), values(states, false), name_of(input))?;
                    }
                    for &v in initial {
                        write!(f, ", {}", name_of(v))?;
                    }
                    write!(f, "): {kind} -> {}", Values { d: self, values: &[output], shapes: true })?;
                    if !states.is_empty() {
                        write!(f, ", {}", values(states, true))?;
                    }
                    writeln!(f)?;
                    continue;
                }
                Statement::Add { inputs, .. } => ("add", inputs),
                Statement::Subtract { inputs, .. } => ("subtract", inputs),
                Statement::Multiply { inputs, .. } => ("multiply", inputs),
                Statement::Concat { inputs, .. } => ("concat", inputs),
            };
            let output = [s.output()];
            let name = self.value_names.get(output[0]).copied().unwrap_or("?");
            writeln!(
                f,
                "{name} = {op}({}) -> {}",
                values(inputs, false),
                Values { d: self, values: &output, shapes: true }
            )?;
        }
        writeln!(f, "output {}", values(self.outputs, false))
    }
}
