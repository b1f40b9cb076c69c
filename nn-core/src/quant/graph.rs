//! An int8 graph network over borrowed constants, for firmware: the counterpart of
//! [`Int8Sequential`](super::sequential::Int8Sequential) for graph networks with
//! `add` and `concat`, as [`QuantizedGraph::rust_source`](super::network::QuantizedGraph::rust_source)
//! writes it. No allocation: every value lives in its own range of one arena the caller
//! provides ([`Int8Graph::arena_len`] bytes, values one after another in index order,
//! a value no step writes taking none), and `const` [`Int8Graph::validate`] checks the
//! wiring, lengths and constants when the generated module compiles.

use super::sequential::{Int8Layer, TensorQuantization};
use super::{add, check_len, AddParams, QuantError};

/// One step of an [`Int8Graph`], over value indices.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Int8Step<'a> {
    /// A Dense layer, convolution or pooling reading `input`, writing `output`.
    Layer {
        /// The layer and its constants.
        layer: Int8Layer<'a>,
        /// The value it reads.
        input: usize,
        /// The value it writes.
        output: usize,
    },
    /// [`add`] of two values, requantized to the output's scale.
    Add {
        /// Offsets, multipliers and clamp.
        params: AddParams,
        /// The operands.
        inputs: [usize; 2],
        /// The result.
        output: usize,
    },
    /// [`concat`](super::concat) of values sharing the output's quantization, one after
    /// another.
    Concat {
        /// The operands.
        inputs: &'a [usize],
        /// The result.
        output: usize,
    },
}

impl Int8Step<'_> {
    /// The value the step writes.
    pub const fn output(&self) -> usize {
        match self {
            Int8Step::Layer { output, .. } | Int8Step::Add { output, .. } | Int8Step::Concat { output, .. } => *output,
        }
    }
}

/// An int8 graph network: its input's and output's quantization, the elements of every
/// value, and the steps computing them in order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Int8Graph<'a> {
    /// The input's quantization.
    pub input: TensorQuantization,
    /// The output's quantization.
    pub output: TensorQuantization,
    /// The value that is the input.
    pub input_value: usize,
    /// The value that is the output.
    pub output_value: usize,
    /// Elements per sample of every value (0 for a value no step writes).
    pub lens: &'a [usize],
    /// The steps, in order.
    pub steps: &'a [Int8Step<'a>],
}

/// Whether `value` is the input or written by a step before `before`.
const fn written(graph: &Int8Graph<'_>, value: usize, before: usize) -> bool {
    if value == graph.input_value {
        return true;
    }
    let mut i = 0;
    while i < before {
        if graph.steps[i].output() == value {
            return true;
        }
        i += 1;
    }
    false
}

impl Int8Graph<'_> {
    /// Checks the network at compile time (the generated module calls it in a `const`):
    /// every index names a value, each value is written once and read after it is
    /// written, each layer's constants are valid ([`Int8Layer::validate`]) and its
    /// lengths those of the values it reads and writes, an add's operands and result
    /// have one length, a concat's result the sum of its operands'. Returns the broken
    /// rule.
    pub const fn validate(&self) -> Result<(), &'static str> {
        let values = self.lens.len();
        if self.input_value >= values || self.output_value >= values {
            return Err("int8 graph: the input or output is not a value");
        }
        if self.lens[self.input_value] == 0 || self.lens[self.output_value] == 0 {
            return Err("int8 graph: the input or output has no elements");
        }
        if self.steps.is_empty() {
            return Err("int8 graph: no steps");
        }
        let mut s = 0;
        while s < self.steps.len() {
            let output = self.steps[s].output();
            if output >= values || self.lens[output] == 0 {
                return Err("int8 graph: a step writes a value that does not exist or has no elements");
            }
            if written(self, output, s) {
                return Err("int8 graph: a value is written twice (or the input overwritten)");
            }
            match &self.steps[s] {
                Int8Step::Layer { layer, input, output } => {
                    if *input >= values || !written(self, *input, s) {
                        return Err("int8 graph: a layer reads a value before it is written");
                    }
                    if let Err(e) = layer.validate() {
                        return Err(e);
                    }
                    let lengths_match = match (layer.input_len(), layer.output_len()) {
                        (Some(i), Some(o)) => i == self.lens[*input] && o == self.lens[*output],
                        _ => false,
                    };
                    if !lengths_match {
                        return Err("int8 graph: a layer reads or writes a different number of values than its \
                                    operand or result has");
                    }
                }
                Int8Step::Add { params, inputs: [a, b], output } => {
                    if *a >= values || *b >= values || !written(self, *a, s) || !written(self, *b, s) {
                        return Err("int8 graph: an add reads a value before it is written");
                    }
                    if self.lens[*a] != self.lens[*output] || self.lens[*b] != self.lens[*output] {
                        return Err("int8 graph: an add's operands and result differ in length");
                    }
                    if params.activation_min < -128
                        || params.activation_min > params.activation_max
                        || params.activation_max > 127
                    {
                        return Err("int8 graph: an add's clamp is not inside int8");
                    }
                }
                Int8Step::Concat { inputs, output } => {
                    let mut total = 0usize;
                    let mut i = 0;
                    while i < inputs.len() {
                        let v = inputs[i];
                        if v >= values || !written(self, v, s) {
                            return Err("int8 graph: a concat reads a value before it is written");
                        }
                        total = match total.checked_add(self.lens[v]) {
                            Some(t) => t,
                            None => return Err("int8 graph: a concat's length overflows"),
                        };
                        i += 1;
                    }
                    if total != self.lens[*output] {
                        return Err("int8 graph: a concat's result is not as long as its operands together");
                    }
                }
            }
            s += 1;
        }
        if !written(self, self.output_value, self.steps.len()) {
            return Err("int8 graph: no step writes the output");
        }
        Ok(())
    }

    /// int8 values per input sample.
    pub const fn input_len(&self) -> usize {
        if self.input_value < self.lens.len() {
            self.lens[self.input_value]
        } else {
            0
        }
    }

    /// int8 values per output sample.
    pub const fn output_len(&self) -> usize {
        if self.output_value < self.lens.len() {
            self.lens[self.output_value]
        } else {
            0
        }
    }

    /// Bytes of the arena [`forward`](Self::forward) takes: every value's elements.
    pub const fn arena_len(&self) -> usize {
        self.offset(self.lens.len())
    }

    /// Where value `v` starts in the arena: the elements of the values before it.
    const fn offset(&self, v: usize) -> usize {
        let mut sum = 0;
        let mut i = 0;
        while i < v && i < self.lens.len() {
            sum += self.lens[i];
            i += 1;
        }
        sum
    }

    /// Bytes of every layer's constants ([`Int8Layer::param_bytes`]), 40 an add's
    /// parameters and 16 for the input's and output's quantization.
    pub const fn param_bytes(&self) -> usize {
        let mut bytes = 16;
        let mut i = 0;
        while i < self.steps.len() {
            bytes += match &self.steps[i] {
                Int8Step::Layer { layer, .. } => layer.param_bytes(),
                Int8Step::Add { .. } => 40,
                Int8Step::Concat { .. } => 0,
            };
            i += 1;
        }
        bytes
    }

    /// The most stack [`forward`](Self::forward) takes below its caller's frame (the
    /// arena is the caller's): the layers' kernels', as
    /// [`Int8Sequential::stack_bound_bytes`](super::sequential::Int8Sequential::stack_bound_bytes).
    pub const fn stack_bound_bytes(&self) -> usize {
        super::sequential::INT8_STACK_BOUND_BYTES
    }

    /// One int8 sample through the network, in integers only, every value in its range
    /// of `arena` (at least [`arena_len`](Self::arena_len) bytes); returns the output's.
    pub fn forward<'b>(&self, input: &[i8], arena: &'b mut [i8]) -> Result<&'b [i8], QuantError> {
        const OP: &str = "int8 graph";
        if let Err(reason) = self.validate() {
            return Err(QuantError::Geometry { op: OP, reason });
        }
        let needed = self.arena_len();
        if arena.len() < needed {
            return Err(QuantError::Length { op: OP, operand: "arena", expected: needed, found: arena.len() });
        }
        check_len(OP, "input", self.input_len(), input.len())?;
        let start = self.offset(self.input_value);
        arena[start..start + input.len()].copy_from_slice(input);
        for step in self.steps {
            let output = step.output();
            let (at, len) = (self.offset(output), self.lens[output]);
            // The result's range apart from the rest: validation makes every operand
            // another value, so another range.
            let (head, rest) = arena.split_at_mut(at);
            let (y, tail) = rest.split_at_mut(len);
            let read = |v: usize| -> &[i8] {
                let (from, n) = (self.offset(v), self.lens[v]);
                if from + n <= at {
                    &head[from..from + n]
                } else {
                    &tail[from - at - len..from - at - len + n]
                }
            };
            match step {
                Int8Step::Layer { layer, input, .. } => layer.forward(read(*input), y)?,
                Int8Step::Add { params, inputs: [a, b], .. } => add(params, read(*a), read(*b), y)?,
                Int8Step::Concat { inputs, .. } => {
                    let mut from = 0;
                    for &v in inputs.iter() {
                        let part = read(v);
                        y[from..from + part.len()].copy_from_slice(part);
                        from += part.len();
                    }
                }
            }
        }
        let (at, len) = (self.offset(self.output_value), self.lens[self.output_value]);
        Ok(&arena[at..at + len])
    }
}
