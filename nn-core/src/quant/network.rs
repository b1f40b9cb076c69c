//! Post-training quantization of a whole `network!` model, read from its
//! [`Description`] and its tensors: no list of layers written by hand.
//!
//! Supported: `Dense`, `Conv1d` and `Conv2d` (with `groups`; symmetric padding),
//! `MaxPool1d`/`MaxPool2d`, `AvgPool1d`/`AvgPool2d` without padding, `Flatten`,
//! `Reshape` and `Dropout` (no-ops at inference), `FakeQuant` (the identity, whose
//! trained range gives the value it reads its quantization instead of the calibration
//! set: [`qat`](super::qat)), `Relu` and `Relu6` (a layer's
//! `activation: Relu` or `activation: Relu6`, or a `Relu` or `Relu6` layer after a
//! Dense, convolution or `add`, fused into it as the output's clamp), `BatchNorm1d`
//! and `BatchNorm2d` right after a Dense layer or convolution (folded into it, as
//! TensorFlow Lite's converter does), and in graph networks `add` of two values and
//! `concat` along the first axis. Anything else is a
//! [`NetworkQuantizeError::Unsupported`] naming the layer or value.
//!
//! The rules are TensorFlow Lite's int8 specification, as in
//! [`quantize_sequential`]: the calibration set
//! runs through the f32 network to find the range of every value; pooling keeps its
//! input's quantization; `add` rescales both operands to its output's scale (its
//! fused ReLU the clamp); `concat` copies, so its operands take its output's
//! quantization (the union of their ranges), which the Dense layers and convolutions
//! that compute them requantize to, as the converter arranges.
//!
//! `concat` has two limits. It joins along the first axis of the sample only (the
//! channels of `[channels, height, width]`, or the features of a flat value: each
//! operand's part of the result is one block), where the int8 result is the operands
//! one after another; another axis is an [`NetworkQuantizeError::Unsupported`]
//! naming the concat. And each operand must already be in the result's quantization,
//! which this quantizer arranges only for an operand that a Dense layer or convolution
//! computes (it requantizes straight to the result's scale), that no other step reads
//! and that is not the network's output; an operand that is the network's input, a
//! pooling's (which keeps its input's quantization), an `add`'s result or a value
//! read twice is an `Unsupported` error too. Lifting the second limit needs an int8
//! requantize step before the concat (TensorFlow Lite Micro's `QUANTIZE` from int8 to
//! int8, which its converter inserts; its concat itself requires equal scales), which
//! is not implemented.
//!
//! A [`QuantizedGraph`] becomes firmware through [`QuantizedGraph::rust_source`]: a
//! module of `static`s and an [`Int8Graph`](super::graph::Int8Graph) over them, which
//! runs without allocation in one arena.
//!
//! ```
//! use nn_core::prelude::*;
//! use nn_core::quant::calibrate::QuantizeOptions;
//! use nn_core::quant::network::Quantize;
//!
//! network! {
//!     pub struct Residual: [4] -> [3] graph {
//!         input x;
//!         a = left(x): Dense { units: 6, activation: Relu };
//!         b = right(x): Dense { units: 6 };
//!         s = add(a, b);
//!         h = both(s): Dense { units: 3 };
//!         output h;
//!     }
//! }
//!
//! let model = Model::<Residual>::new(1);
//! let calibration: Vec<f32> = (0..64).map(|i| (i as f32 * 0.37).sin()).collect();
//! let int8 = model.quantize_graph(&calibration, &QuantizeOptions::default()).unwrap();
//! let logits = int8.forward_real(&calibration[..4]).unwrap();
//! assert_eq!(logits.len(), 3);
//! // A sequential network quantizes to the list of layers a firmware bakes in; this one
//! // is not a sequence.
//! assert!(model.quantize(&calibration, &QuantizeOptions::default()).is_err());
//! ```
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use super::add::AddParams;
use super::calibrate::{
    activation_quantization, percentile_range, FloatDense, MinMax, QuantizeOptions, RangeEstimator,
};
use super::prepare::{add_params, FusedActivation};
use super::quantize::{
    checked_sizes, float_forward, fold_batch_norm, quantize_layer, quantize_sequential, FloatConv2d, FloatLayer,
    QuantizedLayer, QuantizedSequential,
};
use super::sequential::TensorQuantization;
use super::{add, concat, QuantError};
use crate::describe::{Describe, Description, LayerKind, Statement};
use crate::kernels::conv::ConvGeometry;
use crate::kernels::pool::PoolGeometry;
use crate::layer::Layer;
use crate::model::Model;
use crate::Activation;

/// Why a network could not be quantized.
#[derive(Clone, Debug, PartialEq)]
pub enum NetworkQuantizeError {
    /// A layer or statement the int8 kernels cannot run.
    Unsupported {
        /// The network.
        network: &'static str,
        /// The layer's name, or the value a statement computes.
        layer: &'static str,
        /// Its kind (`"Lstm"`, `"multiply"`).
        kind: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// A tensor the description implies is not among the model's.
    MissingTensor {
        /// Its full name (`fc1.weight`).
        name: String,
    },
    /// The network is a graph: use [`quantize_graph`].
    NotSequential {
        /// The network.
        network: &'static str,
    },
    /// A size, geometry or calibration set refused by the quantizer.
    Quant(QuantError),
}

impl fmt::Display for NetworkQuantizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetworkQuantizeError::Unsupported { network, layer, kind, reason } => {
                write!(f, "cannot quantize `{network}`: `{layer}` ({kind}) {reason}")
            }
            NetworkQuantizeError::MissingTensor { name } => write!(f, "the model has no tensor `{name}`"),
            NetworkQuantizeError::NotSequential { network } => {
                write!(f, "`{network}` is not a sequence of layers: quantize it with `quantize_graph`")
            }
            NetworkQuantizeError::Quant(e) => e.fmt(f),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for NetworkQuantizeError {}

impl From<QuantError> for NetworkQuantizeError {
    fn from(e: QuantError) -> Self {
        NetworkQuantizeError::Quant(e)
    }
}

/// Quantization of `network!` models: `model.quantize(&calibration, &options)`.
pub trait Quantize {
    /// [`quantize_network`] of this model.
    fn quantize(
        &self,
        calibration: &[f32],
        options: &QuantizeOptions,
    ) -> Result<QuantizedSequential, NetworkQuantizeError>;
    /// [`quantize_graph`] of this model.
    fn quantize_graph(
        &self,
        calibration: &[f32],
        options: &QuantizeOptions,
    ) -> Result<QuantizedGraph, NetworkQuantizeError>;
}

impl<L: Layer + Describe, P: AsRef<[f32]>> Quantize for Model<L, P> {
    fn quantize(
        &self,
        calibration: &[f32],
        options: &QuantizeOptions,
    ) -> Result<QuantizedSequential, NetworkQuantizeError> {
        quantize_network(self, calibration, options)
    }

    fn quantize_graph(
        &self,
        calibration: &[f32],
        options: &QuantizeOptions,
    ) -> Result<QuantizedGraph, NetworkQuantizeError> {
        quantize_graph(self, calibration, options)
    }
}

/// Quantizes a sequential network (its layers applied one after another) from
/// `calibration`, whole input samples one after another, into the list of int8 layers
/// of [`QuantizedSequential`] (which a firmware bakes in through its `rust_source`).
pub fn quantize_network<L: Layer + Describe, P: AsRef<[f32]>>(
    model: &Model<L, P>,
    calibration: &[f32],
    options: &QuantizeOptions,
) -> Result<QuantizedSequential, NetworkQuantizeError> {
    let plan = Plan::new(model)?;
    if plan.observed.iter().any(Option::is_some) {
        // Ranges trained by `FakeQuant` layers: the graph quantizer, whose steps for a
        // sequence are those of `quantize_sequential`, takes them.
        if !plan.is_sequence() {
            return Err(NetworkQuantizeError::NotSequential { network: L::DESCRIPTION.name });
        }
        let ranges = plan.ranges(calibration, options.activations)?;
        let graph = plan.quantize(&|v| activation_quantization(ranges[v].min, ranges[v].max).0, options)?;
        let layers = graph
            .steps
            .into_iter()
            .filter_map(|s| match s {
                QuantizedStep::Layer { layer, .. } => Some(*layer),
                _ => None,
            })
            .collect();
        return Ok(QuantizedSequential { input: graph.quantization[graph.input], layers });
    }
    if !plan.is_sequence() {
        return Err(NetworkQuantizeError::NotSequential { network: L::DESCRIPTION.name });
    }
    let layers: Vec<FloatLayer<'_>> = plan
        .steps
        .iter()
        .filter_map(|s| match s {
            FloatStep::Layer { layer, .. } => Some(layer.float()),
            _ => None,
        })
        .collect();
    Ok(quantize_sequential(&layers, calibration, options)?)
}

/// Quantizes any supported network, graph networks with `add` and `concat` included,
/// from `calibration` (whole input samples one after another).
pub fn quantize_graph<L: Layer + Describe, P: AsRef<[f32]>>(
    model: &Model<L, P>,
    calibration: &[f32],
    options: &QuantizeOptions,
) -> Result<QuantizedGraph, NetworkQuantizeError> {
    let plan = Plan::new(model)?;
    let ranges = plan.ranges(calibration, options.activations)?;
    plan.quantize(&|v| activation_quantization(ranges[v].min, ranges[v].max).0, options)
}

/// The range of every value of a network (indexed as its description's values; the
/// values a flatten, dropout, folded batch norm or fused ReLU shares with another are
/// left empty) over `calibration`, as [`quantize_graph`] finds them.
pub fn calibrate_graph<L: Layer + Describe, P: AsRef<[f32]>>(
    model: &Model<L, P>,
    calibration: &[f32],
    estimator: RangeEstimator,
) -> Result<Vec<MinMax>, NetworkQuantizeError> {
    Plan::new(model)?.ranges(calibration, estimator)
}

/// [`quantize_graph`] with the quantization of every value given (indexed as the
/// description's values; those a value shares with another are not read): another
/// tool's, to reproduce its integers exactly, or ranges known in advance. Pooling still
/// keeps its input's quantization.
pub fn quantize_graph_with<L: Layer + Describe, P: AsRef<[f32]>>(
    model: &Model<L, P>,
    quantization: &[TensorQuantization],
    options: &QuantizeOptions,
) -> Result<QuantizedGraph, NetworkQuantizeError> {
    let plan = Plan::new(model)?;
    super::check_len("quantize_graph_with", "quantization", plan.lens.len(), quantization.len())?;
    plan.quantize(&|v| quantization[v], options)
}

/// One step of an int8 graph, over value indices of [`QuantizedGraph::quantization`].
#[derive(Clone, Debug, PartialEq)]
pub enum QuantizedStep {
    /// A Dense layer, convolution or pooling.
    Layer {
        /// The layer's name.
        name: &'static str,
        /// The layer and its constants.
        layer: Box<QuantizedLayer>,
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
    /// [`concat()`](super::concat) of values sharing the output's quantization.
    Concat {
        /// The operands.
        inputs: Vec<usize>,
        /// The result.
        output: usize,
    },
}

/// An int8 graph network, owning its constants: each value (numbered as in the
/// network's description; a flatten, reshape, dropout, folded batch norm or fused
/// ReLU shares the value it reads) has a quantization, and the steps compute them in
/// integers.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantizedGraph {
    /// The value that is the input.
    pub input: usize,
    /// The value that is the output.
    pub output: usize,
    /// The quantization of every value.
    pub quantization: Vec<TensorQuantization>,
    /// Elements per sample of every value.
    pub lens: Vec<usize>,
    /// The steps, in order.
    pub steps: Vec<QuantizedStep>,
}

impl QuantizedGraph {
    /// One int8 sample through the network: the int8 value of every value index
    /// (empty for the values that share another's).
    pub fn forward_values(&self, input: &[i8]) -> Result<Vec<Vec<i8>>, QuantError> {
        super::check_len("quantized graph", "input", self.lens[self.input], input.len())?;
        let mut values: Vec<Vec<i8>> = vec![Vec::new(); self.lens.len()];
        values[self.input] = input.to_vec();
        for step in &self.steps {
            let (output, y) = match step {
                QuantizedStep::Layer { layer, input, output, .. } => {
                    let mut y = vec![0i8; self.lens[*output]];
                    layer.layer().forward(&values[*input], &mut y)?;
                    (*output, y)
                }
                QuantizedStep::Add { params, inputs: [a, b], output } => {
                    let mut y = vec![0i8; self.lens[*output]];
                    add(params, &values[*a], &values[*b], &mut y)?;
                    (*output, y)
                }
                QuantizedStep::Concat { inputs, output } => {
                    let parts: Vec<&[i8]> = inputs.iter().map(|&i| values[i].as_slice()).collect();
                    let mut y = vec![0i8; self.lens[*output]];
                    concat(&parts, &mut y)?;
                    (*output, y)
                }
            };
            values[output] = y;
        }
        Ok(values)
    }

    /// One int8 sample through the network: its int8 output.
    pub fn forward(&self, input: &[i8]) -> Result<Vec<i8>, QuantError> {
        let mut values = self.forward_values(input)?;
        Ok(core::mem::take(&mut values[self.output]))
    }

    /// One real sample, quantized with the input's quantization, through the network.
    pub fn forward_real(&self, input: &[f32]) -> Result<Vec<i8>, QuantError> {
        let q = self.quantization[self.input];
        let x: Vec<i8> = input.iter().map(|&v| q.quantize(v)).collect();
        self.forward(&x)
    }

    /// Bytes of constants: 1 a weight, 4 a bias, 4 a weight scale, 8 (scale and zero
    /// point) for the input and each step's output.
    pub fn param_bytes(&self) -> usize {
        let layers: usize = self
            .steps
            .iter()
            .map(|s| match s {
                QuantizedStep::Layer { layer, .. } => match layer.as_ref() {
                    QuantizedLayer::Dense { weight, bias, weight_scales, .. }
                    | QuantizedLayer::Conv2d { weight, bias, weight_scales, .. } => {
                        weight.len() + 4 * bias.len() + 4 * weight_scales.len()
                    }
                    _ => 0,
                },
                _ => 0,
            })
            .sum();
        layers + 8 * (self.steps.len() + 1)
    }
}

/// An f32 layer owning its (possibly folded) constants.
struct OwnedLayer {
    shape: OwnedShape,
    weight: Vec<f32>,
    bias: Vec<f32>,
    activation: FusedActivation,
}

enum OwnedShape {
    Dense { inputs: usize, outputs: usize },
    Conv { geometry: ConvGeometry, filters: usize, groups: usize },
    MaxPool { geometry: PoolGeometry, channels: usize },
    AvgPool { geometry: PoolGeometry, channels: usize },
}

impl OwnedLayer {
    fn float(&self) -> FloatLayer<'_> {
        let (weight, bias, activation) = (self.weight.as_slice(), self.bias.as_slice(), self.activation);
        match self.shape {
            OwnedShape::Dense { inputs, outputs } => {
                FloatLayer::Dense(FloatDense { weight, bias, inputs, outputs, activation })
            }
            OwnedShape::Conv { geometry, filters, groups } => {
                FloatLayer::Conv2d(FloatConv2d { weight, bias, geometry, filters, groups, activation })
            }
            OwnedShape::MaxPool { geometry, channels } => FloatLayer::MaxPool2d { geometry, channels },
            OwnedShape::AvgPool { geometry, channels } => FloatLayer::AveragePool2d { geometry, channels },
        }
    }

    /// A Dense layer or convolution without a fused activation yet.
    fn weighted_linear(&self) -> bool {
        matches!(self.shape, OwnedShape::Dense { .. } | OwnedShape::Conv { .. })
            && self.activation == FusedActivation::None
    }
}

/// One step of the f32 network over canonical value indices.
enum FloatStep {
    Layer { name: &'static str, layer: OwnedLayer, input: usize, output: usize },
    Add { inputs: [usize; 2], activation: FusedActivation, output: usize },
    Concat { name: &'static str, inputs: Vec<usize>, output: usize },
}

impl FloatStep {
    fn output(&self) -> usize {
        match self {
            FloatStep::Layer { output, .. } | FloatStep::Add { output, .. } | FloatStep::Concat { output, .. } => {
                *output
            }
        }
    }

    fn inputs(&self) -> &[usize] {
        match self {
            FloatStep::Layer { input, .. } => core::slice::from_ref(input),
            FloatStep::Add { inputs, .. } => inputs,
            FloatStep::Concat { inputs, .. } => inputs,
        }
    }
}

/// A network's description resolved into f32 steps: the identities dropped, batch
/// norms folded, ReLUs fused, each value's canonical index and length known.
struct Plan {
    /// The range a `FakeQuant` layer observed for each canonical value it reads.
    observed: Vec<Option<MinMax>>,
    network: &'static str,
    steps: Vec<FloatStep>,
    /// Every value's canonical value (itself, or the value it shares).
    canonical: Vec<usize>,
    lens: Vec<usize>,
    input: usize,
    output: usize,
}

/// The model's tensors by full name: offset, length, whether a parameter.
struct Tensors<'m> {
    entries: Vec<(String, usize, usize, bool)>,
    params: &'m [f32],
    buffers: &'m [f32],
}

impl Tensors<'_> {
    fn get(&self, layer: &str, tensor: &str) -> Result<&[f32], NetworkQuantizeError> {
        let name = alloc::format!("{layer}.{tensor}");
        let (_, offset, len, trainable) = self
            .entries
            .iter()
            .find(|e| e.0 == name)
            .ok_or_else(|| NetworkQuantizeError::MissingTensor { name: name.clone() })?;
        let values = if *trainable { self.params } else { self.buffers };
        values.get(*offset..*offset + *len).ok_or(NetworkQuantizeError::MissingTensor { name })
    }
}

fn product(dims: &[usize]) -> Result<usize, QuantError> {
    super::checked_product("quantize_graph", dims)
}

impl Plan {
    fn new<L: Layer + Describe, P: AsRef<[f32]>>(model: &Model<L, P>) -> Result<Plan, NetworkQuantizeError> {
        let d: &Description = &L::DESCRIPTION;
        let mut entries = Vec::new();
        model.visit_tensors(&mut |t| {
            entries.push((alloc::string::ToString::to_string(t.path), t.offset, t.len, t.trainable))
        });
        let tensors = Tensors { entries, params: model.params(), buffers: model.buffers() };
        let unsupported =
            |layer, kind, reason| NetworkQuantizeError::Unsupported { network: d.name, layer, kind, reason };
        let ([input], [output]) = (d.inputs, d.outputs) else {
            return Err(unsupported(d.name, "network", "has several inputs or outputs"));
        };
        let mut canonical: Vec<usize> = (0..d.values.len()).collect();
        let lens = d.values.iter().map(|dims| product(dims)).collect::<Result<Vec<_>, _>>()?;
        let mut steps: Vec<FloatStep> = Vec::new();
        let mut observed = vec![None; d.values.len()];
        for statement in d.statements {
            let out = statement.output();
            let value = d.value_names.get(out).copied().unwrap_or("");
            match *statement {
                Statement::Apply { layer, input, output, .. } => {
                    let spec = &d.layers[layer];
                    let source = canonical[input];
                    // The step computing `source` when it is that step's own value, read
                    // only here: a batch norm folds into it, a ReLU fuses.
                    let fusible = d.uses(input) == 1 && source == input;
                    let producer = steps.iter_mut().rev().find(|s| s.output() == source).filter(|_| fusible);
                    let (name, dims) = (spec.name, d.values[input]);
                    match spec.kind {
                        LayerKind::Flatten | LayerKind::Reshape | LayerKind::Dropout => canonical[output] = source,
                        LayerKind::Activation(Activation::Identity) => canonical[output] = source,
                        LayerKind::Activation(activation @ (Activation::Relu | Activation::Relu6)) => {
                            let (fusion, kind) = if activation == Activation::Relu6 {
                                (FusedActivation::Relu6, "Relu6")
                            } else {
                                (FusedActivation::Relu, "Relu")
                            };
                            match producer {
                                Some(FloatStep::Layer { layer, output: o, .. }) if layer.weighted_linear() => {
                                    layer.activation = fusion;
                                    *o = output;
                                }
                                Some(FloatStep::Add { activation: a @ FusedActivation::None, output: o, .. }) => {
                                    *a = fusion;
                                    *o = output;
                                }
                                _ => {
                                    return Err(unsupported(
                                        name,
                                        kind,
                                        "must follow a Dense layer, a convolution, a batch norm or an add whose \
                                         value nothing else reads (int8 fuses it into that step)",
                                    ))
                                }
                            }
                        }
                        LayerKind::BatchNorm { eps } => match producer {
                            Some(FloatStep::Layer { layer, output: o, .. }) if layer.weighted_linear() => {
                                let [gamma, beta, mean, var] = [
                                    tensors.get(name, "weight")?,
                                    tensors.get(name, "bias")?,
                                    tensors.get(name, "running_mean")?,
                                    tensors.get(name, "running_var")?,
                                ];
                                fold_batch_norm(&mut layer.weight, &mut layer.bias, gamma, beta, mean, var, eps)?;
                                *o = output;
                            }
                            _ => {
                                return Err(unsupported(
                                    name,
                                    "BatchNorm",
                                    "must follow a Dense layer or a convolution whose value nothing else reads \
                                     (int8 folds it into that layer)",
                                ))
                            }
                        },
                        LayerKind::Dense { units, activation, bias } => {
                            let activation = fused(activation).ok_or_else(|| {
                                unsupported(name, "Dense", "has an activation other than Relu, Relu6 or Identity")
                            })?;
                            let inputs = product(dims)?;
                            let layer = OwnedLayer {
                                shape: OwnedShape::Dense { inputs, outputs: units },
                                weight: tensors.get(name, "weight")?.to_vec(),
                                bias: if bias { tensors.get(name, "bias")?.to_vec() } else { vec![0.0; units] },
                                activation,
                            };
                            steps.push(FloatStep::Layer { name, layer, input: source, output });
                        }
                        LayerKind::Conv { axes, filters, kernel, stride, padding, dilation, groups, bias } => {
                            let (kind, (channels, height, width)) = spatial(axes, dims, "Conv1d", "Conv2d")
                                .ok_or_else(|| unsupported(name, "Conv", "has an input of an unexpected rank"))?;
                            if padding[..axes].iter().any(|p| p[0] != p[1]) {
                                return Err(unsupported(
                                    name,
                                    kind,
                                    "has more padding after than before (`Same` with an even kernel): int8 \
                                     convolutions pad both sides alike",
                                ));
                            }
                            // A signal is an image of height 1: kernel, stride and dilation 1,
                            // no padding, along the height.
                            let at = |v: [usize; 2], one| if axes == 1 { [one, v[0]] } else { v };
                            let (kernel, stride, dilation) = (at(kernel, 1), at(stride, 1), at(dilation, 1));
                            let padding = at([padding[0][0], padding[1][0]], 0);
                            let out = |axis: usize, n: usize| {
                                let span = dilation[axis] * (kernel[axis] - 1) + 1;
                                (n + 2 * padding[axis]).checked_sub(span).map(|d| d / stride[axis] + 1)
                            };
                            let (Some(out_height), Some(out_width)) = (out(0, height), out(1, width)) else {
                                return Err(unsupported(name, kind, "has a kernel larger than its padded input"));
                            };
                            let geometry = ConvGeometry {
                                channels,
                                height,
                                width,
                                kernel,
                                stride,
                                padding,
                                dilation,
                                out_height,
                                out_width,
                            };
                            let layer = OwnedLayer {
                                shape: OwnedShape::Conv { geometry, filters, groups },
                                weight: tensors.get(name, "weight")?.to_vec(),
                                bias: if bias { tensors.get(name, "bias")?.to_vec() } else { vec![0.0; filters] },
                                activation: FusedActivation::None,
                            };
                            steps.push(FloatStep::Layer { name, layer, input: source, output });
                        }
                        LayerKind::MaxPool { axes, size, stride, padding }
                        | LayerKind::AvgPool { axes, size, stride, padding } => {
                            let max = matches!(spec.kind, LayerKind::MaxPool { .. });
                            let names = if max { ("MaxPool1d", "MaxPool2d") } else { ("AvgPool1d", "AvgPool2d") };
                            let (kind, (channels, height, width)) = spatial(axes, dims, names.0, names.1)
                                .ok_or_else(|| unsupported(name, "pooling", "has an input of an unexpected rank"))?;
                            let at = |v: [usize; 2], one| if axes == 1 { [one, v[0]] } else { v };
                            let (size, stride, padding) = (at(size, 1), at(stride, 1), at(padding, 0));
                            let out = |axis: usize, n: usize| {
                                (n + 2 * padding[axis]).checked_sub(size[axis]).map(|d| d / stride[axis] + 1)
                            };
                            let (Some(out_height), Some(out_width)) = (out(0, height), out(1, width)) else {
                                return Err(unsupported(name, kind, "has a window larger than its padded input"));
                            };
                            let geometry = PoolGeometry { height, width, size, stride, padding, out_height, out_width };
                            let shape = if max {
                                OwnedShape::MaxPool { geometry, channels }
                            } else {
                                OwnedShape::AvgPool { geometry, channels }
                            };
                            let layer = OwnedLayer {
                                shape,
                                weight: Vec::new(),
                                bias: Vec::new(),
                                activation: FusedActivation::None,
                            };
                            steps.push(FloatStep::Layer { name, layer, input: source, output });
                        }
                        LayerKind::Activation(_) => {
                            return Err(unsupported(name, "activation", "has no int8 kernel (only Relu and Relu6 do)"))
                        }
                        LayerKind::Other { kind: "FakeQuant" } => {
                            // The identity in int8: it sets the quantization of what it reads.
                            canonical[output] = source;
                            let value = |tensor| tensors.get(name, tensor).map(|v| v.first().copied());
                            if let (Some(min), Some(max)) = (value("min_val")?, value("max_val")?) {
                                if min < max {
                                    observed[source] = Some(MinMax { min, max });
                                }
                            }
                        }
                        LayerKind::Other { kind } => return Err(unsupported(name, kind, "has no int8 kernel")),
                    }
                }
                Statement::Add { inputs, output } => {
                    let [a, b] = inputs else {
                        return Err(unsupported(value, "add", "adds more than two values (int8 add takes two)"));
                    };
                    steps.push(FloatStep::Add {
                        inputs: [canonical[*a], canonical[*b]],
                        activation: FusedActivation::None,
                        output,
                    });
                }
                Statement::Concat { inputs, blocks, output } => {
                    if inputs.iter().zip(blocks).any(|(&i, &block)| lens[i] != block) {
                        return Err(unsupported(value, "concat", "concatenates along an axis other than the first"));
                    }
                    steps.push(FloatStep::Concat {
                        name: value,
                        inputs: inputs.iter().map(|&i| canonical[i]).collect(),
                        output,
                    });
                }
                Statement::Subtract { .. } => return Err(unsupported(value, "subtract", "has no int8 kernel")),
                Statement::Multiply { .. } => return Err(unsupported(value, "multiply", "has no int8 kernel")),
            }
        }
        // Every layer's geometry and constants, and what it reads, checked once.
        for step in &steps {
            if let FloatStep::Layer { layer, input, output, .. } = step {
                let (inputs, outputs) = checked_sizes(&layer.float())?;
                super::check_len("quantize_graph", "layer input", lens[*input], inputs)?;
                super::check_len("quantize_graph", "layer output", lens[*output], outputs)?;
            }
        }
        let output = canonical[*output];
        Ok(Plan { observed, network: d.name, steps, canonical, lens, input: *input, output })
    }

    /// Whether the steps form one chain from the input, each reading the last's value.
    fn is_sequence(&self) -> bool {
        let mut at = self.input;
        self.steps.iter().all(|step| match step {
            FloatStep::Layer { input, output, .. } if *input == at => {
                at = *output;
                true
            }
            _ => false,
        })
    }

    /// Runs the calibration set through the f32 steps; returns every value's range,
    /// the one a `FakeQuant` layer observed where there is one.
    fn ranges(&self, calibration: &[f32], estimator: RangeEstimator) -> Result<Vec<MinMax>, NetworkQuantizeError> {
        let input_len = self.lens[self.input];
        if input_len == 0 || calibration.is_empty() || !calibration.len().is_multiple_of(input_len) {
            return Err(QuantError::Geometry {
                op: "quantize_graph",
                reason: "the calibration set is not whole samples",
            }
            .into());
        }
        let n = self.lens.len();
        let mut ranges = vec![MinMax::default(); n];
        let keep = matches!(estimator, RangeEstimator::Percentile(_));
        let mut seen: Vec<Vec<f32>> = vec![Vec::new(); if keep { n } else { 0 }];
        let mut values: Vec<Vec<f32>> = vec![Vec::new(); n];
        for sample in calibration.chunks_exact(input_len) {
            values[self.input] = sample.to_vec();
            for step in &self.steps {
                let y = match step {
                    FloatStep::Layer { layer, input, .. } => float_forward(&layer.float(), &values[*input]),
                    FloatStep::Add { inputs: [a, b], activation, .. } => values[*a]
                        .iter()
                        .zip(&values[*b])
                        .map(|(x, y)| {
                            let s = x + y;
                            match activation {
                                FusedActivation::None => s,
                                FusedActivation::Relu => s.max(0.0),
                                FusedActivation::Relu6 => s.clamp(0.0, 6.0),
                            }
                        })
                        .collect(),
                    FloatStep::Concat { inputs, .. } => {
                        inputs.iter().flat_map(|&i| values[i].iter().copied()).collect()
                    }
                };
                values[step.output()] = y;
            }
            for v in core::iter::once(self.input).chain(self.steps.iter().map(FloatStep::output)) {
                ranges[v].update(&values[v]);
                if keep {
                    seen[v].extend_from_slice(&values[v]);
                }
            }
        }
        if let RangeEstimator::Percentile(percentile) = estimator {
            for (range, values) in ranges.iter_mut().zip(&mut seen) {
                if !values.is_empty() {
                    *range = percentile_range(values, percentile);
                }
            }
        }
        for (range, observed) in ranges.iter_mut().zip(&self.observed) {
            if let Some(observed) = observed {
                *range = *observed;
            }
        }
        Ok(ranges)
    }

    /// The int8 graph whose values have the quantizations `of_range` gives (pooling
    /// and concat operands excepted, as the module explains).
    fn quantize(
        &self,
        of_range: &dyn Fn(usize) -> TensorQuantization,
        options: &QuantizeOptions,
    ) -> Result<QuantizedGraph, NetworkQuantizeError> {
        let reads = |v: usize| self.steps.iter().flat_map(FloatStep::inputs).filter(|&&i| i == v).count();
        // A concat's operands take its quantization: the Dense layers and convolutions
        // computing them requantize to it directly.
        let mut forced: Vec<Option<TensorQuantization>> = vec![None; self.lens.len()];
        for step in &self.steps {
            if let FloatStep::Concat { inputs, output, .. } = step {
                for &i in inputs {
                    let computed_by_weights = self.steps.iter().any(|s| {
                        matches!(s, FloatStep::Layer { layer, output: o, .. }
                            if *o == i && matches!(layer.shape, OwnedShape::Dense { .. } | OwnedShape::Conv { .. }))
                    });
                    if computed_by_weights && reads(i) == 1 && i != self.output {
                        forced[i] = Some(of_range(*output));
                    }
                }
            }
        }
        let mut quantization: Vec<Option<TensorQuantization>> = vec![None; self.lens.len()];
        quantization[self.input] = Some(of_range(self.input));
        let known = |q: &[Option<TensorQuantization>], v: usize| {
            q[v].ok_or(QuantError::Geometry { op: "quantize_graph", reason: "a value is read before it is computed" })
        };
        let mut steps = Vec::with_capacity(self.steps.len());
        for step in &self.steps {
            match step {
                FloatStep::Layer { name, layer, input, output } => {
                    let input_q = known(&quantization, *input)?;
                    let output_q = match layer.shape {
                        OwnedShape::MaxPool { .. } | OwnedShape::AvgPool { .. } => input_q,
                        _ => forced[*output].unwrap_or_else(|| of_range(*output)),
                    };
                    quantization[*output] = Some(output_q);
                    let layer = quantize_layer(&layer.float(), input_q, output_q, options)?;
                    steps.push(QuantizedStep::Layer { name, layer: Box::new(layer), input: *input, output: *output });
                }
                FloatStep::Add { inputs: [a, b], activation, output } => {
                    let (qa, qb, qo) = (known(&quantization, *a)?, known(&quantization, *b)?, of_range(*output));
                    quantization[*output] = Some(qo);
                    let params = add_params(
                        (qa.scale, qa.zero_point),
                        (qb.scale, qb.zero_point),
                        (qo.scale, qo.zero_point),
                        *activation,
                        options.rounding,
                    );
                    steps.push(QuantizedStep::Add { params, inputs: [*a, *b], output: *output });
                }
                FloatStep::Concat { name, inputs, output } => {
                    let qo = of_range(*output);
                    for &i in inputs {
                        if known(&quantization, i)? != qo {
                            return Err(NetworkQuantizeError::Unsupported {
                                network: self.network,
                                layer: name,
                                kind: "concat",
                                reason: "has an operand that is not a Dense layer's or a convolution's own \
                                         value (an input, a pooling, an add, or a value read twice): TensorFlow \
                                         Lite's int8 concat needs its operands in its output's quantization",
                            });
                        }
                    }
                    quantization[*output] = Some(qo);
                    steps.push(QuantizedStep::Concat { inputs: inputs.clone(), output: *output });
                }
            }
        }
        let quantization: Vec<TensorQuantization> = (0..self.lens.len())
            .map(|v| quantization[self.canonical[v]].unwrap_or(TensorQuantization { scale: 1.0, zero_point: 0 }))
            .collect();
        let lens = (0..self.lens.len()).map(|v| self.lens[self.canonical[v]]).collect();
        Ok(QuantizedGraph { input: self.input, output: self.output, quantization, lens, steps })
    }
}

/// `Relu`, `Relu6` and `Identity` as fused activations.
fn fused(activation: Activation) -> Option<FusedActivation> {
    match activation {
        Activation::Identity => Some(FusedActivation::None),
        Activation::Relu => Some(FusedActivation::Relu),
        Activation::Relu6 => Some(FusedActivation::Relu6),
        _ => None,
    }
}

/// A 1-D (`[channels, length]`) or 2-D (`[channels, height, width]`) layer's kind name
/// and its input as `(channels, height, width)`, a signal of height 1.
fn spatial(
    axes: usize,
    dims: &[usize],
    one: &'static str,
    two: &'static str,
) -> Option<(&'static str, (usize, usize, usize))> {
    match (axes, dims) {
        (1, &[c, l]) => Some((one, (c, 1, l))),
        (2, &[c, h, w]) => Some((two, (c, h, w))),
        _ => None,
    }
}
