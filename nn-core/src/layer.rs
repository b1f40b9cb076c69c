//! The layer contract.
//!
//! A [`Layer`] is a small configuration value (often zero-sized) whose type fixes the
//! input and output [`Shape`]s. It owns no parameters: every method receives its slice
//! of the model's flat parameter array, so a network is a composition of layers over
//! one array, laid out in `state_dict` order, and parameters can live on the heap or in
//! a `static`.
//!
//! The data of a call (`x`, `y` and their gradients) are its arguments; the state it
//! reads and writes comes in a small named context, borrowed slices that cost nothing
//! to build: [`Weights`] (parameters and buffers) for inference, [`TrainCtx`]
//! (parameters, buffers, cache, scratch, random source) for the training forward and
//! [`BackwardCtx`] (parameters, cache, gradients, the [`Frozen`] set, scratch) for the
//! backward. A composition builds its layers' contexts from its own by re-slicing
//! (`Chain` below, and the code `network!` generates).
//!
//! Every method works on a whole batch: `x` holds `batch * Input::LEN` floats and
//! `y` holds `batch * Output::LEN`, each sample contiguous. The batch size is
//! `x.len() / Input::LEN`. Workspaces are per sample, so the caller sizes `cache` as
//! `batch * CACHE` and `scratch` as `batch * SCRATCH` floats and reuses them.
//!
//! A custom layer implements this trait in one screen: see `layers/activation.rs`.
use core::fmt;
use core::ops::Range;

use crate::rng::Rng;
use crate::shape::Shape;
use crate::weights::{TensorTree, Text};

mod cycle;

/// A differentiable layer with compile-time input and output shapes.
pub trait Layer: 'static {
    /// The shape of one input sample.
    type Input: Shape;
    /// The shape of one output sample.
    type Output: Shape;
    /// The number of trainable parameters.
    const PARAMS: usize;
    /// The number of non-trainable state values (batch-norm running statistics).
    const BUFFERS: usize = 0;
    /// Floats per sample that `forward_train` keeps for `backward`.
    const CACHE: usize = 0;
    /// Floats per sample of temporary space `forward`, `forward_train` and `backward`
    /// may use.
    const SCRATCH: usize = 0;
    /// Floats per sample of temporary space `forward` alone needs, at most `SCRATCH`:
    /// a sequence of layers keeps every intermediate value for `backward`, but its
    /// inference needs only two buffers, used in turn ([`Layer::forward_pipe`]).
    const FORWARD_SCRATCH: usize = Self::SCRATCH;
    /// For a sequence run by [`Layer::forward_pipe`]: the floats per sample of the
    /// largest value it writes into `io` (its second, fourth, ... layer's output; 0
    /// for a single layer, which writes `y` only).
    const PIPE_IO: usize = 0;
    /// For a sequence run by [`Layer::forward_pipe`]: the floats per sample of the
    /// largest value it writes into `spare` (its first, third, ... layer's output).
    const PIPE_SPARE: usize = 0;
    /// For a sequence run by [`Layer::forward_pipe`]: the floats per sample of
    /// temporary space it needs besides its two buffers.
    const PIPE_SCRATCH: usize = Self::FORWARD_SCRATCH;
    /// Floats of temporary space [`Layer::forward_value`] needs for one sample:
    /// [`Layer::FORWARD_SCRATCH`], but for a sequence that keeps its values on the
    /// stack, each in a tensor of its own (then the largest of its layers').
    const VALUE_SCRATCH: usize = Self::FORWARD_SCRATCH;
    /// Floats of values that [`Layer::forward_value`] of one sample keeps on the stack
    /// besides its input, its output and [`Layer::VALUE_SCRATCH`]: 0 for a single
    /// layer; for a sequence that keeps its values on the stack, each value it passes
    /// on (a bound: the compiler may place some in the same memory).
    const VALUE_STACK: usize = 0;
    /// Floats of the values a sequence passes from layer to layer, one sample's,
    /// wherever it keeps them: 0 for a single layer.
    const VALUE_LEN: usize = 0;
    /// Whether inference returns the input's values unchanged, in the same order
    /// (dropout, flattening, reshaping): batch-1 inference of a sequence then gives
    /// the next layer this layer's input instead of a copy of it.
    const INFERENCE_IDENTITY: bool = false;
    /// Whether [`Layer::relu_in_place`] applies: the layer's inference is elementwise
    /// (its output the same length as its input) and it can compute `relu(f(x))` over
    /// its input in place, sparing a following ReLU its own pass and buffer.
    #[doc(hidden)]
    const RELU_IN_PLACE: bool = false;
    /// Whether [`Layer::leads_with_relu`] may be `true`: the layer, or a sequence's first
    /// layer, may be a ReLU (an activation layer, whose function is chosen at run time).
    #[doc(hidden)]
    const MAY_LEAD_WITH_RELU: bool = false;
    /// Whether [`Layer::forward_relu_input`] applies: the layer can compute `f(relu(x))`
    /// in one pass, sparing a ReLU layer before it its own pass and buffer.
    #[doc(hidden)]
    const RELU_INPUT: bool = false;
    /// Whether [`Layer::pipe_after_relu`] may run: the layer, or a sequence's first
    /// layer, has [`Layer::RELU_INPUT`].
    #[doc(hidden)]
    const FIRST_RELU_INPUT: bool = Self::RELU_INPUT;
    /// The layer kind shown by summaries (`"Dense"`, `"Relu"`, a network's name).
    const KIND: &'static str;
    /// The compile-time description of the tensors `visit_tensors` visits (same
    /// names, shapes and order), which lets weights be baked in at compile time
    /// ([`crate::weights`]). The default describes no tensors for a layer without
    /// parameters or buffers and is [`TensorTree::Unknown`] otherwise.
    const TENSORS: &'static TensorTree =
        if Self::PARAMS + Self::BUFFERS == 0 { &TensorTree::Empty } else { &TensorTree::Unknown { kind: Self::KIND } };
    /// For a network written by `network!` that nests networks, its node in the graph
    /// of networks that contain each other, which the macro walks to report a network
    /// that contains itself through networks of other invocations as one error in the
    /// user's terms; `None` for any other layer.
    #[doc(hidden)]
    const NODE: Option<private::NodeRef> = None;

    /// Initialises the parameters (and buffers) of this layer.
    fn init(&self, params: &mut [f32], buffers: &mut [f32], rng: &mut Rng);

    /// Inference: `y = f(x)`. Dropout is the identity and batch norm uses its running
    /// statistics.
    fn forward(&self, w: Weights<'_>, x: &[f32], y: &mut [f32], scratch: &mut [f32]);

    /// Inference of one sample, its output returned by value: [`Layer::forward`] into a
    /// zeroed tensor, unless the layer writes its result straight into the returned
    /// value (a dense layer's Dense 8 -> 8 kernels), sparing the zeroing and a copy.
    /// Batch-1 inference ([`Network::forward_one`]) calls it; `scratch` holds at least
    /// [`Layer::VALUE_SCRATCH`] floats. A sequence of small values keeps each of them
    /// in a tensor of its own, which its layer's [`Layer::forward`] writes and the next
    /// layer reads, its last layer's `forward_value` giving the output, and skips the
    /// layers that are the identity in inference ([`Layer::INFERENCE_IDENTITY`]): no
    /// scratch to zero, no copies.
    #[inline]
    fn forward_value(&self, w: Weights<'_>, x: &[f32], scratch: &mut [f32]) -> crate::Tensor<Self::Output> {
        let mut y = crate::Tensor::zeros();
        self.forward(w, x, &mut y, scratch);
        y
    }

    /// Inference of `batch` samples whose input is the start of `io`, which this call
    /// may overwrite: a sequence writes its layers' outputs into `spare` and `io` in
    /// turn, so that it needs two buffers rather than one per intermediate value.
    /// `io` holds at least `batch * PIPE_IO` floats and the input, `spare` at least
    /// `batch * PIPE_SPARE`, `scratch` at least `batch * PIPE_SCRATCH`. A single layer reads `io` and calls
    /// [`Layer::forward`].
    #[inline]
    fn forward_pipe(
        &self,
        w: Weights<'_>,
        batch: usize,
        io: &mut [f32],
        spare: &mut [f32],
        y: &mut [f32],
        scratch: &mut [f32],
    ) {
        let _ = spare;
        self.forward(w, &io[..batch * <Self::Input as Shape>::LEN], y, scratch)
    }

    /// Whether this layer (a sequence: its first layer) is a ReLU in inference,
    /// `v > 0 ? v : 0` of every element (NaN to 0), which the layer before it may apply
    /// ([`Layer::RELU_IN_PLACE`]). Only read where [`Layer::MAY_LEAD_WITH_RELU`].
    #[doc(hidden)]
    #[inline]
    fn leads_with_relu(&self) -> bool {
        false
    }

    /// With [`Layer::RELU_IN_PLACE`]: `buf = relu(f(buf))` for whole samples of inference,
    /// each element's value that of [`Layer::forward`] followed by a ReLU layer.
    #[doc(hidden)]
    #[inline]
    fn relu_in_place(&self, w: Weights<'_>, buf: &mut [f32]) {
        let _ = (w, buf);
        unreachable!("relu_in_place of a layer without `RELU_IN_PLACE`")
    }

    /// [`Layer::forward_pipe`] of this sequence without its first layer, whose output is
    /// already in `io` (the first layer a ReLU that the layer before it applied in
    /// place, [`Layer::leads_with_relu`]): the rest of the sequence reads `io`, or, for
    /// a single layer, its output `y` is that value.
    #[doc(hidden)]
    #[inline]
    fn forward_pipe_after_first(&self, w: Weights<'_>, pipe: private::Pipe<'_>) {
        let _ = w;
        let n = pipe.batch * <Self::Output as Shape>::LEN;
        pipe.y[..n].copy_from_slice(&pipe.io[..n]);
    }

    /// With [`Layer::RELU_INPUT`]: `y = f(relu(x))` for whole samples of inference, each
    /// element's value that of a ReLU layer followed by [`Layer::forward`].
    #[doc(hidden)]
    #[inline]
    fn forward_relu_input(&self, w: Weights<'_>, x: &[f32], y: &mut [f32], scratch: &mut [f32]) {
        let _ = (w, x, y, scratch);
        unreachable!("forward_relu_input of a layer without `RELU_INPUT`")
    }

    /// [`Layer::forward_pipe`] of this layer or sequence after a ReLU layer, whose input
    /// is in `io`, with the ReLU in the first layer's pass ([`Layer::RELU_INPUT`]): the
    /// first layer reads `io` and writes `spare` (where the ReLU would have written
    /// `io`), so the rest runs over the two buffers swapped. Whether it ran: not when
    /// the first layer has no such pass, or the buffers swapped are too short for the
    /// rest (then nothing is written).
    #[doc(hidden)]
    #[inline]
    fn pipe_after_relu(&self, w: Weights<'_>, pipe: &mut private::Pipe<'_>) -> bool {
        if !Self::RELU_INPUT {
            return false;
        }
        self.forward_relu_input(w, &pipe.io[..pipe.batch * <Self::Input as Shape>::LEN], pipe.y, pipe.scratch);
        true
    }

    /// Training forward: like `forward`, keeping in `cx.cache` what `backward` needs.
    /// In training mode (`cx.training`) dropout is active and batch norm uses the
    /// batch's statistics; in evaluation mode the layer computes what `forward` does
    /// (PyTorch's `model.eval()` with gradients enabled).
    fn forward_train(&self, x: &[f32], y: &mut [f32], cx: TrainCtx<'_>);

    /// Backward: given `dy = dL/dy` (which it may overwrite), adds `dL/dparams` into
    /// `cx.grads` and, when `dx` is given, writes `dL/dx` into it. `x`, `y` and
    /// `cx.cache` are those of the matching `forward_train`.
    ///
    /// The gradients of the parameters in `cx.frozen` need not be computed (their
    /// entries in `cx.grads` may be left as they are): compositions (`Chain`,
    /// networks) skip the backward of a layer whose parameters are all frozen when its
    /// `dx` is not wanted, and dense and convolution layers skip their weight-gradient
    /// products when frozen. With nothing frozen ([`Frozen::NONE`]) every gradient is
    /// computed.
    fn backward(&self, x: &[f32], y: &[f32], dy: &mut [f32], dx: Option<&mut [f32]>, cx: BackwardCtx<'_>);

    /// Calls `f` for every parameter and buffer tensor, in `state_dict` order.
    /// `params_at` and `buffers_at` are this layer's offsets in the model's arrays.
    ///
    /// The default walks [`Layer::TENSORS`]; a layer with parameters that does not
    /// describe them there ([`TensorTree::Unknown`]) must implement this method (using
    /// the default is then a compile error), and compositions delegate to their
    /// layers so that such a layer inside them is visited too.
    fn visit_tensors(
        &self,
        path: Option<&TensorPath<'_>>,
        params_at: usize,
        buffers_at: usize,
        f: &mut dyn FnMut(&TensorInfo<'_>),
    ) {
        const {
            assert!(
                Self::TENSORS.unknown().is_none(),
                "a layer with parameters or buffers describes them in `Layer::TENSORS` or implements \
                 `Layer::visit_tensors`"
            )
        };
        visit_tree(Self::TENSORS, path, &mut (params_at, buffers_at), f);
    }

    /// Calls `f` for every row of a summary table (one per layer; networks list their
    /// layers, indented by `depth`).
    fn visit_summary(&self, name: &str, depth: usize, f: &mut dyn FnMut(&SummaryRow<'_>)) {
        f(&SummaryRow { name, kind: Self::KIND, depth, output: Self::Output::DIMS, params: Self::PARAMS });
    }
}

/// A network generated by `network!`: a [`Layer`] built from named layers, with
/// compile-time facts and batch-1 inference on the stack.
pub trait Network: Layer + Default + Copy {
    /// The network's name.
    const NAME: &'static str;
    /// Floats of parameters and buffers: the length of the model's state array.
    const STATE_LEN: usize = Self::PARAMS + Self::BUFFERS;
    /// Bytes of parameters and buffers (`f32`).
    const PARAM_BYTES: usize = (Self::PARAMS + Self::BUFFERS) * 4;
    /// Bytes of activations and scratch that batch-1 inference keeps on the stack,
    /// input and output included: its scratch ([`Layer::VALUE_SCRATCH`], the two
    /// buffers of [`Layer::FORWARD_SCRATCH`] unless the values are each in a tensor of
    /// their own) and those tensors ([`Layer::VALUE_STACK`]).
    const PEAK_ACTIVATION_BYTES: usize =
        (Self::VALUE_SCRATCH + Self::VALUE_STACK + <Self::Input as Shape>::LEN + <Self::Output as Shape>::LEN) * 4;
    /// Bytes of stack that batch-1 inference ([`Network::forward_one`],
    /// `Model::predict_one`) uses at most on the target compiled for, when its
    /// activations are on the stack: [`Network::PEAK_ACTIVATION_BYTES`] plus the frames
    /// of the layers and kernels themselves ([`stack_bound`]). `tests/layers/stack_bound.rs`
    /// measures the real use on the host by painting a thread's stack, the firmware of
    /// `firmware/` on each microcontroller target.
    const STACK_BOUND_BYTES: usize = stack_bound(Self::PEAK_ACTIVATION_BYTES);

    /// Batch-1 inference. Its intermediate values are on the stack when
    /// [`Network::STACK_BOUND_BYTES`] is at most [`STACK_LIMIT_BYTES`]; above it they
    /// are in a workspace allocated for the call with `alloc`, and without `alloc` such a
    /// network does not compile (its error names `Model::forward_slices`, which takes a
    /// scratch buffer of the caller's, a `static` for instance). The input and the
    /// returned output are the caller's values.
    fn forward_one(
        &self,
        params: &[f32],
        buffers: &[f32],
        x: &crate::Tensor<Self::Input>,
    ) -> crate::Tensor<Self::Output>;
}

/// Frozen parameters seen from one layer: ranges of the model's parameter array, and
/// the offset of this layer's parameters in it. Part of a [`BackwardCtx`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Frozen<'a> {
    ranges: &'a [Range<usize>],
    offset: usize,
}

impl<'a> Frozen<'a> {
    /// Nothing frozen.
    pub const NONE: Frozen<'static> = Frozen { ranges: &[], offset: 0 };

    /// The parameters in `ranges` (of the model's parameter array, in any order,
    /// possibly overlapping) frozen, seen from the model.
    pub const fn new(ranges: &'a [Range<usize>]) -> Self {
        Frozen { ranges, offset: 0 }
    }

    /// Seen from this layer's parameter `at` on (the next layer of a sequence).
    pub const fn shifted(self, at: usize) -> Self {
        Frozen { ranges: self.ranges, offset: self.offset + at }
    }

    /// Whether the first `len` parameters of this layer are all frozen (always for
    /// `len = 0`).
    #[inline]
    pub fn all(&self, len: usize) -> bool {
        let (mut at, end) = (self.offset, self.offset + len);
        while at < end {
            match self.ranges.iter().filter(|r| r.start <= at && at < r.end).map(|r| r.end).max() {
                Some(next) => at = next,
                None => return false,
            }
        }
        true
    }
}

/// What inference reads besides its input: a layer's parameters and buffers.
#[derive(Clone, Copy, Debug)]
pub struct Weights<'a> {
    /// The trainable parameters.
    pub params: &'a [f32],
    /// The non-trainable state (batch-norm running statistics).
    pub buffers: &'a [f32],
}

impl<'a> Weights<'a> {
    /// The parameters `params` and buffers `buffers`.
    #[inline(always)]
    pub const fn new(params: &'a [f32], buffers: &'a [f32]) -> Self {
        Weights { params, buffers }
    }

    /// The weights of the layer `L` whose parameters start at `params_at` and buffers
    /// at `buffers_at`: `L::PARAMS` and `L::BUFFERS` floats.
    #[inline(always)]
    pub fn of<L: Layer>(self, params_at: usize, buffers_at: usize) -> Self {
        Weights {
            params: &self.params[params_at..params_at + L::PARAMS],
            buffers: &self.buffers[buffers_at..buffers_at + L::BUFFERS],
        }
    }

    /// The weights of a first layer `A` and those of the layers after it.
    #[inline(always)]
    pub fn split<A: Layer>(self) -> (Self, Self) {
        let (pa, pb) = self.params.split_at(A::PARAMS);
        let (ba, bb) = self.buffers.split_at(A::BUFFERS);
        (Weights::new(pa, ba), Weights::new(pb, bb))
    }
}

/// What a training forward ([`Layer::forward_train`]) reads and writes besides its
/// input and output.
#[derive(Debug)]
pub struct TrainCtx<'a> {
    /// The trainable parameters.
    pub params: &'a [f32],
    /// The non-trainable state, which training updates (batch-norm running statistics).
    pub buffers: &'a mut [f32],
    /// `batch * CACHE` floats kept for [`Layer::backward`].
    pub cache: &'a mut [f32],
    /// `batch * SCRATCH` floats of temporary space.
    pub scratch: &'a mut [f32],
    /// The random source (dropout).
    pub rng: &'a mut Rng,
    /// Training mode (`true`) or evaluation mode (`false`), as PyTorch's
    /// `module.training`: in evaluation mode dropout is the identity and batch norm
    /// normalises with its running statistics and leaves them unchanged, while the
    /// forward still keeps what [`Layer::backward`] needs to differentiate it (the
    /// gradients of a model in `eval()` mode with `requires_grad`). A composition
    /// passes it on to its layers unchanged. `Model` sets it from
    /// [`Model::train`](crate::Model::train) and [`Model::eval`](crate::Model::eval).
    pub training: bool,
}

/// What a backward ([`Layer::backward`]) reads and writes besides the values and
/// their gradients: the parameters and cache it reads, the gradient sink (`grads` and
/// the `frozen` parameters whose gradients need not be computed) and its scratch.
#[derive(Debug)]
pub struct BackwardCtx<'a> {
    /// The trainable parameters.
    pub params: &'a [f32],
    /// The cache of the matching [`Layer::forward_train`].
    pub cache: &'a [f32],
    /// The gradients of the parameters, which the backward adds into.
    pub grads: &'a mut [f32],
    /// The frozen parameters ([`Frozen::NONE`] when training all of them).
    pub frozen: Frozen<'a>,
    /// `batch * SCRATCH` floats of temporary space.
    pub scratch: &'a mut [f32],
}

/// Calls `f` for the tensors of `tree` under `path`, trainable ones at the parameter
/// offset `at.0` and the others at the buffer offset `at.1`, advancing them.
fn visit_tree(
    tree: &TensorTree,
    path: Option<&TensorPath<'_>>,
    at: &mut (usize, usize),
    f: &mut dyn FnMut(&TensorInfo<'_>),
) {
    let mut leaf = |name: &str, shape: &[usize], trainable: bool, at: &mut (usize, usize)| {
        let len = shape.iter().product();
        let offset = if trainable { &mut at.0 } else { &mut at.1 };
        let here = TensorPath::new(path, name);
        f(&TensorInfo { path: &here, shape, offset: *offset, len, trainable });
        *offset += len;
    };
    match *tree {
        TensorTree::Empty | TensorTree::Unknown { .. } => {}
        TensorTree::Leaf { name, shape, trainable } => leaf(name, shape, trainable, at),
        TensorTree::Scope { name, inner } => visit_tree(inner, Some(&TensorPath::new(path, name)), at, f),
        TensorTree::Pair { first, rest } => {
            visit_tree(first, path, at, f);
            visit_tree(rest, path, at, f);
        }
        TensorTree::Repeat { name, count, inner } => {
            let scope = TensorPath::new(path, name);
            for k in 0..count {
                let mut index = Text::new();
                index.push_usize(k);
                visit_tree(inner, Some(&TensorPath::new(Some(&scope), index.as_str())), at, f);
            }
        }
        TensorTree::Recurrent { gate_width, features, hidden, layers, directions } => {
            for layer in 0..layers {
                let input = if layer == 0 { features } else { directions * hidden };
                for direction in 0..directions {
                    let suffix = if direction == 1 { "_reverse" } else { "" };
                    let tensors: [(&str, &[usize]); 4] = [
                        ("weight_ih_l", &[gate_width, input]),
                        ("weight_hh_l", &[gate_width, hidden]),
                        ("bias_ih_l", &[gate_width]),
                        ("bias_hh_l", &[gate_width]),
                    ];
                    for (prefix, shape) in tensors {
                        let mut name = Text::new();
                        name.push_str(prefix);
                        name.push_usize(layer);
                        name.push_str(suffix);
                        leaf(name.as_str(), shape, true, at);
                    }
                }
            }
        }
    }
}

/// The stack that batch-1 inference needs besides its activations on this target: the
/// call frames of the layers and kernels.
///
/// On x86-64 the largest is the GEMM's packed panel of `B` (`KC x NR` floats: 16 KiB
/// for the AVX2 kernel; a convolution's product at batch 1 is a GEMM), plus loop
/// state, spilled registers and the small fixed arrays of the dot-product kernels;
/// measured at most 21 783 bytes across dense, convolutional, recurrent and attention
/// networks (`std` with AVX2, `tests/layers/stack_bound.rs`): 32 KiB.
///
/// Elsewhere the portable kernels pack nothing and keep no array on the stack: the
/// frames of the chain of calls (network, layer, GEMM or dot product, register tile)
/// are a few hundred bytes, the Cortex-M4F's kernels saving the 32 floating-point
/// registers (128 bytes) on top. Measured by painting in the firmware
/// (`tools/firmware-run`; release builds at `opt-level` 3 and `"s"`), the digits MLP,
/// the digits CNN and the sine model used at most 336, 752 and 220 bytes above their
/// activations on the rv32imc, 456, 832 and 340 on the Cortex-M0 and 536, 920 and 384
/// on the Cortex-M4F: with the eighth of the activations that [`stack_bound`] adds,
/// 496 bytes on 32-bit Arm and 320 on 32-bit RISC-V cover them (1 KiB on targets not
/// measured). The firmware fails if a bound is exceeded or is more than 1.5 times the
/// use.
pub const STACK_MARGIN_BYTES: usize = if cfg!(target_arch = "x86_64") {
    32 * 1024
} else if cfg!(target_arch = "arm") {
    496
} else if cfg!(target_arch = "riscv32") {
    320
} else {
    1024
};

/// The stack bound of batch-1 inference for `activations` bytes of activations and
/// scratch ([`Network::STACK_BOUND_BYTES`]): the activations plus
/// [`STACK_MARGIN_BYTES`], and on targets other than x86-64 an eighth of the
/// activations more (the larger layers' kernels keep more loop state and slices in
/// their frames).
pub const fn stack_bound(activations: usize) -> usize {
    if cfg!(target_arch = "x86_64") {
        activations + STACK_MARGIN_BYTES
    } else {
        activations + activations / 8 + STACK_MARGIN_BYTES
    }
}

/// The most stack batch-1 inference may take for a network's activations and the
/// kernels' frames ([`Network::STACK_BOUND_BYTES`]): 256 KiB, an eighth of a spawned
/// thread's default stack (2 MiB), leaving the rest to the caller. A network that needs
/// more runs [`Network::forward_one`] on a heap workspace with `alloc`, and is a
/// compile error without it.
pub const STACK_LIMIT_BYTES: usize = 256 * 1024;

/// A dotted tensor name built on the stack: `encoder.fc1.weight`.
#[derive(Clone, Copy)]
pub struct TensorPath<'a> {
    /// The enclosing path, if any.
    pub parent: Option<&'a TensorPath<'a>>,
    /// The last component.
    pub name: &'a str,
}

impl<'a> TensorPath<'a> {
    /// `parent.name`, or `name` at the root.
    pub fn new(parent: Option<&'a TensorPath<'a>>, name: &'a str) -> Self {
        TensorPath { parent, name }
    }

    /// Whether the dotted name equals `other`, without allocating.
    pub fn matches(&self, other: &str) -> bool {
        self.strip_from(other) == Some("")
    }

    /// If `other` starts with this dotted name, the rest of it.
    fn strip_from<'b>(&self, other: &'b str) -> Option<&'b str> {
        let rest = match self.parent {
            Some(p) => p.strip_from(other)?.strip_prefix('.')?,
            None => other,
        };
        rest.strip_prefix(self.name)
    }
}

impl fmt::Display for TensorPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = self.parent {
            write!(f, "{p}.")?;
        }
        f.write_str(self.name)
    }
}

impl fmt::Debug for TensorPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// One parameter or buffer tensor of a model.
#[derive(Debug)]
pub struct TensorInfo<'a> {
    /// Its full dotted name (`fc1.weight`).
    pub path: &'a TensorPath<'a>,
    /// Its shape in PyTorch's layout (`[out, in]` for a dense weight).
    pub shape: &'a [usize],
    /// Its offset in the parameter array (trainable) or the buffer array (not).
    pub offset: usize,
    /// Its number of elements.
    pub len: usize,
    /// `true` for parameters, `false` for buffers such as running statistics.
    pub trainable: bool,
}

/// One row of a model summary.
#[derive(Debug)]
pub struct SummaryRow<'a> {
    /// The layer's name in its network.
    pub name: &'a str,
    /// The layer kind.
    pub kind: &'a str,
    /// Nesting depth (0 for the top network's layers).
    pub depth: usize,
    /// The output shape of one sample.
    pub output: &'a [usize],
    /// Its number of trainable parameters.
    pub params: usize,
}

pub(crate) mod private {
    //! Composition used by the code `network!` generates.
    pub use super::cycle::{contains_itself, sizes, Cycle, Edge, Node, NodeRef, Sizes, Totals};
    use super::*;

    /// Floats of scratch that `forward_one` keeps on the stack for a network whose
    /// batch-1 inference needs `forward_scratch` floats of scratch and
    /// `stack_bound` bytes of stack: all of it within [`STACK_LIMIT_BYTES`], else none
    /// (the scratch goes on the heap) with `alloc`. Without `alloc`, a network above the
    /// limit is a compile error, where the generated code evaluates this in a `const`.
    pub const fn stack_scratch_len(forward_scratch: usize, stack_bound: usize) -> usize {
        stack_scratch_len_for(cfg!(feature = "alloc"), forward_scratch, stack_bound)
    }

    /// [`stack_scratch_len`] with or without a heap (`heap`).
    pub const fn stack_scratch_len_for(heap: bool, forward_scratch: usize, stack_bound: usize) -> usize {
        if stack_bound <= STACK_LIMIT_BYTES {
            forward_scratch
        } else if heap {
            0
        } else {
            panic!(
                "batch-1 inference of this network needs more than `nn_core::layer::STACK_LIMIT_BYTES` (256 KiB) of \
                 stack (`Network::STACK_BOUND_BYTES`): call `Model::forward_slices` with a scratch buffer of \
                 `Layer::SCRATCH` floats of your own (a `static`), or enable nn-core's `alloc` feature, with which \
                 `predict_one` puts its activations on the heap"
            )
        }
    }

    /// Calls `forward` with a zeroed scratch of `len` floats: the front of `stack` when
    /// it is long enough, else (with `alloc`) a heap allocation for the call.
    ///
    /// # Panics
    /// Without `alloc`, if `stack` is shorter than `len` (never from the generated
    /// code, whose `stack` has [`stack_scratch_len`] floats).
    #[inline(always)]
    pub fn with_forward_scratch<R>(stack: &mut [f32], len: usize, forward: impl FnOnce(&mut [f32]) -> R) -> R {
        if let Some(scratch) = stack.get_mut(..len) {
            return forward(scratch);
        }
        #[cfg(feature = "alloc")]
        {
            forward(&mut alloc::vec![0.0f32; len])
        }
        #[cfg(not(feature = "alloc"))]
        {
            panic!("forward_one: the scratch is not on the stack and there is no heap")
        }
    }

    /// `layer`'s [`Layer::forward_value`] as the tensor of `S`, the output the network
    /// declares: the same tensor when `S` is the layer's output shape (every network that
    /// compiles), otherwise (a declared output that does not match, already a compile
    /// error of its own) its first floats copied into a zeroed tensor, so that the
    /// generated `forward_one` adds no error of its own.
    #[inline(always)]
    pub fn forward_value<L: Layer, S: Shape>(
        layer: &L,
        w: Weights<'_>,
        x: &[f32],
        scratch: &mut [f32],
    ) -> crate::Tensor<S> {
        let y = layer.forward_value(w, x, scratch);
        let mut slot = Some(y);
        if let Some(same) = (&mut slot as &mut dyn core::any::Any).downcast_mut::<Option<crate::Tensor<S>>>() {
            if let Some(y) = same.take() {
                return y;
            }
        }
        let mut out = crate::Tensor::<S>::zeros();
        if let Some(y) = slot {
            let n = y.len().min(out.len());
            out[..n].copy_from_slice(&y[..n]);
        }
        out
    }

    /// A layer with its name in the enclosing network.
    #[derive(Clone, Copy, Debug)]
    pub struct Named<L> {
        /// The name (`fc1`).
        pub name: &'static str,
        /// The layer.
        pub layer: L,
    }

    /// Two layers in sequence: `B` consumes `A`'s output.
    ///
    /// Per sample, `CACHE` holds `A`'s output, then `A`'s cache, then `B`'s cache;
    /// `SCRATCH` holds the intermediate value or its gradient, then the larger of the
    /// two layers' scratch. Inference needs less (`FORWARD_SCRATCH`): two buffers that
    /// the layers write their outputs into in turn, one as large as the largest of the
    /// first, third, ... intermediate values, the other as the largest of the second,
    /// fourth, ..., then the largest scratch of any layer.
    #[derive(Clone, Copy, Debug)]
    pub struct Chain<A, B> {
        /// The first layer.
        pub first: A,
        /// The rest.
        pub rest: B,
    }

    /// The smaller of `a` and `b`, in constants.
    const fn min(a: usize, b: usize) -> usize {
        if a < b {
            a
        } else {
            b
        }
    }

    /// The larger of `a` and `b`, in constants.
    const fn max(a: usize, b: usize) -> usize {
        if a > b {
            a
        } else {
            b
        }
    }

    /// Split `buf` into the first `n` floats and the rest.
    #[inline(always)]
    fn split(buf: &mut [f32], n: usize) -> (&mut [f32], &mut [f32]) {
        buf.split_at_mut(n)
    }

    /// The buffers of a sequence's inference over `batch` samples, the arguments of
    /// [`Layer::forward_pipe`] after the weights, as a sequence hands them to the rest
    /// of it where the layer before that rest applies a ReLU
    /// ([`Layer::forward_pipe_after_first`], [`Layer::pipe_after_relu`]).
    pub struct Pipe<'a> {
        /// Samples.
        pub batch: usize,
        /// The input, which the pipe may overwrite.
        pub io: &'a mut [f32],
        /// The second buffer.
        pub spare: &'a mut [f32],
        /// The output.
        pub y: &'a mut [f32],
        /// Temporary space.
        pub scratch: &'a mut [f32],
    }

    impl<L: Layer> Layer for Named<L> {
        type Input = L::Input;
        type Output = L::Output;
        const PARAMS: usize = L::PARAMS;
        const BUFFERS: usize = L::BUFFERS;
        const CACHE: usize = L::CACHE;
        const SCRATCH: usize = L::SCRATCH;
        const FORWARD_SCRATCH: usize = L::FORWARD_SCRATCH;
        const VALUE_SCRATCH: usize = L::VALUE_SCRATCH;
        const VALUE_STACK: usize = L::VALUE_STACK;
        const VALUE_LEN: usize = L::VALUE_LEN;
        const INFERENCE_IDENTITY: bool = L::INFERENCE_IDENTITY;
        const RELU_IN_PLACE: bool = L::RELU_IN_PLACE;
        const MAY_LEAD_WITH_RELU: bool = L::MAY_LEAD_WITH_RELU;
        const RELU_INPUT: bool = L::RELU_INPUT;
        const KIND: &'static str = L::KIND;

        #[inline]
        fn init(&self, params: &mut [f32], buffers: &mut [f32], rng: &mut Rng) {
            self.layer.init(params, buffers, rng)
        }
        #[inline]
        fn forward(&self, w: Weights<'_>, x: &[f32], y: &mut [f32], scratch: &mut [f32]) {
            self.layer.forward(w, x, y, scratch)
        }
        #[inline]
        fn forward_value(&self, w: Weights<'_>, x: &[f32], scratch: &mut [f32]) -> crate::Tensor<Self::Output> {
            self.layer.forward_value(w, x, scratch)
        }
        #[inline]
        fn leads_with_relu(&self) -> bool {
            self.layer.leads_with_relu()
        }
        #[inline]
        fn relu_in_place(&self, w: Weights<'_>, buf: &mut [f32]) {
            self.layer.relu_in_place(w, buf)
        }
        #[inline]
        fn forward_relu_input(&self, w: Weights<'_>, x: &[f32], y: &mut [f32], scratch: &mut [f32]) {
            self.layer.forward_relu_input(w, x, y, scratch)
        }
        #[inline]
        fn forward_pipe_after_first(&self, w: Weights<'_>, pipe: Pipe<'_>) {
            self.layer.forward_pipe_after_first(w, pipe)
        }
        #[inline]
        fn forward_train(&self, x: &[f32], y: &mut [f32], cx: TrainCtx<'_>) {
            self.layer.forward_train(x, y, cx)
        }
        /// Skips the layer when its parameters are all frozen and `dx` is not wanted:
        /// every layer of a network is `Named`.
        #[inline]
        fn backward(&self, x: &[f32], y: &[f32], dy: &mut [f32], dx: Option<&mut [f32]>, cx: BackwardCtx<'_>) {
            if dx.is_none() && cx.frozen.all(L::PARAMS) {
                return;
            }
            self.layer.backward(x, y, dy, dx, cx)
        }
        fn visit_tensors(
            &self,
            path: Option<&TensorPath<'_>>,
            params_at: usize,
            buffers_at: usize,
            f: &mut dyn FnMut(&TensorInfo<'_>),
        ) {
            let here = TensorPath::new(path, self.name);
            self.layer.visit_tensors(Some(&here), params_at, buffers_at, f)
        }
        fn visit_summary(&self, _name: &str, depth: usize, f: &mut dyn FnMut(&SummaryRow<'_>)) {
            self.layer.visit_summary(self.name, depth, f)
        }
    }

    impl<A: Layer, B: Layer<Input = A::Output>> Chain<A, B> {
        /// Floats per sample of the buffer that `forward` writes `A`'s output into and
        /// the rest then runs as a pipe over, as its `io`.
        const ENTRY_IO: usize = max(<A::Output as Shape>::LEN, B::PIPE_IO);
        /// Scratch of `forward` with the rest run as a pipe: `A`'s output, then `A`'s
        /// scratch or, once `A` is done, the rest's second buffer and scratch.
        const FORWARD_PIPED: usize = Self::ENTRY_IO + max(A::FORWARD_SCRATCH, B::PIPE_SPARE + B::PIPE_SCRATCH);
        /// Scratch of `forward` with the rest run by its own `forward`: `A`'s output,
        /// then the larger of the two scratch spaces (less than the pipe when `A`'s
        /// scratch is large and the rest's values small).
        const FORWARD_IN_TURN: usize = <A::Output as Shape>::LEN + max(A::FORWARD_SCRATCH, B::FORWARD_SCRATCH);
        /// Whether batch-1 inference ([`Layer::forward_value`]) keeps each value of
        /// this sequence in a tensor of its own on the stack: on x86-64 (whose stack
        /// bound leaves room for values the compiler does not overlap), when they are at
        /// most [`VALUE_STACK_MAX`] floats together ([`Layer::VALUE_LEN`]; then so are
        /// those of the rest). Otherwise the sequence runs [`Layer::forward`] over its
        /// two buffers of scratch.
        const ON_STACK: bool = cfg!(target_arch = "x86_64") && <Self as Layer>::VALUE_LEN <= VALUE_STACK_MAX;
    }

    /// The most floats of values a sequence keeps on the stack, each in a tensor of its
    /// own, at batch 1 (`Layer::VALUE_STACK`): 4 KiB, the values of small dense
    /// networks (the digits MLP's 128 and 64), not a convolutional network's feature maps.
    pub const VALUE_STACK_MAX: usize = 1024;

    impl<A: Layer, B: Layer<Input = A::Output>> Layer for Chain<A, B> {
        type Input = A::Input;
        type Output = B::Output;
        const PARAMS: usize = A::PARAMS + B::PARAMS;
        const BUFFERS: usize = A::BUFFERS + B::BUFFERS;
        const CACHE: usize = <A::Output as Shape>::LEN + A::CACHE + B::CACHE;
        const SCRATCH: usize = <A::Output as Shape>::LEN + max(A::SCRATCH, B::SCRATCH);
        /// Inference skips a first layer that is the identity: the rest's.
        const FORWARD_SCRATCH: usize =
            if A::INFERENCE_IDENTITY { B::FORWARD_SCRATCH } else { min(Self::FORWARD_PIPED, Self::FORWARD_IN_TURN) };
        /// A pipe skips a first layer that is the identity: the rest's buffers, in the
        /// same roles; otherwise `A` writes `spare` and the rest swaps them.
        const PIPE_IO: usize = if A::INFERENCE_IDENTITY { B::PIPE_IO } else { B::PIPE_SPARE };
        const PIPE_SPARE: usize = if A::INFERENCE_IDENTITY { B::PIPE_SPARE } else { Self::ENTRY_IO };
        const PIPE_SCRATCH: usize = max(A::FORWARD_SCRATCH, B::PIPE_SCRATCH);
        const VALUE_SCRATCH: usize =
            if Self::ON_STACK { max(A::VALUE_SCRATCH, B::VALUE_SCRATCH) } else { Self::FORWARD_SCRATCH };
        const VALUE_STACK: usize = if !Self::ON_STACK {
            0
        } else if A::INFERENCE_IDENTITY {
            B::VALUE_STACK
        } else {
            <A::Output as Shape>::LEN + B::VALUE_STACK
        };
        const VALUE_LEN: usize = <A::Output as Shape>::LEN + B::VALUE_LEN;
        const INFERENCE_IDENTITY: bool = A::INFERENCE_IDENTITY && B::INFERENCE_IDENTITY;
        const MAY_LEAD_WITH_RELU: bool = A::MAY_LEAD_WITH_RELU;
        const FIRST_RELU_INPUT: bool = A::RELU_INPUT;
        const KIND: &'static str = "Sequential";

        fn init(&self, params: &mut [f32], buffers: &mut [f32], rng: &mut Rng) {
            let (pa, pb) = params.split_at_mut(A::PARAMS);
            let (ba, bb) = buffers.split_at_mut(A::BUFFERS);
            self.first.init(pa, ba, rng);
            self.rest.init(pb, bb, rng);
        }

        #[inline]
        fn forward(&self, w: Weights<'_>, x: &[f32], y: &mut [f32], scratch: &mut [f32]) {
            let batch = x.len() / <A::Input as Shape>::LEN;
            let mid = batch * <A::Output as Shape>::LEN;
            let (wa, wb) = w.split::<A>();
            if A::INFERENCE_IDENTITY {
                // The rest reads the input (`A`'s output, the same values).
                return self.rest.forward(wb, x, y, scratch);
            }
            if Self::FORWARD_PIPED <= Self::FORWARD_IN_TURN {
                // `A` writes into `io`, then the rest runs as a pipe over `io` and
                // `spare`, which `A`'s scratch space becomes.
                let (io, scratch) = split(scratch, batch * Self::ENTRY_IO);
                self.first.forward(wa, x, &mut io[..mid], scratch);
                let (spare, scratch) = split(scratch, batch * B::PIPE_SPARE);
                self.rest.forward_pipe(wb, batch, io, spare, y, scratch);
            } else {
                let (io, scratch) = split(scratch, mid);
                self.first.forward(wa, x, io, scratch);
                self.rest.forward(wb, io, y, scratch);
            }
        }

        /// With [`Chain::ON_STACK`], the first layer's output in a tensor of its own on
        /// the stack (nothing when it is the identity in inference: the rest reads the
        /// input), then the rest's [`Layer::forward_value`]; else [`Layer::forward`]
        /// into a zeroed tensor.
        #[inline]
        fn forward_value(&self, w: Weights<'_>, x: &[f32], scratch: &mut [f32]) -> crate::Tensor<Self::Output> {
            if !Self::ON_STACK {
                let mut y = crate::Tensor::zeros();
                self.forward(w, x, &mut y, scratch);
                return y;
            }
            let (wa, wb) = w.split::<A>();
            if A::INFERENCE_IDENTITY {
                return self.rest.forward_value(wb, x, scratch);
            }
            let mut mid = crate::Tensor::<A::Output>::zeros();
            self.first.forward(wa, x, &mut mid, scratch);
            self.rest.forward_value(wb, &mid, scratch)
        }

        #[inline]
        fn forward_pipe(
            &self,
            w: Weights<'_>,
            batch: usize,
            io: &mut [f32],
            spare: &mut [f32],
            y: &mut [f32],
            scratch: &mut [f32],
        ) {
            let (wa, wb) = w.split::<A>();
            if A::INFERENCE_IDENTITY {
                // The rest reads `A`'s input, its output's values, where it is.
                return self.rest.forward_pipe(wb, batch, io, spare, y, scratch);
            }
            let mut pipe = Pipe { batch, io, spare, y, scratch };
            if A::RELU_IN_PLACE && B::MAY_LEAD_WITH_RELU && self.rest.leads_with_relu() {
                // `A` and the ReLU after it in one pass over `io`, where the ReLU would
                // have written them; the rest after the ReLU reads them there.
                self.first.relu_in_place(wa, &mut pipe.io[..batch * <A::Input as Shape>::LEN]);
                return self.rest.forward_pipe_after_first(wb, pipe);
            }
            if A::MAY_LEAD_WITH_RELU
                && B::FIRST_RELU_INPUT
                && self.first.leads_with_relu()
                && self.rest.pipe_after_relu(wb, &mut pipe)
            {
                // The ReLU in the next layer's pass.
                return;
            }
            // `A` reads `io` and writes `spare`; the rest reads `spare` and may
            // overwrite `io`, whose value is no longer needed.
            let Pipe { io, spare, y, scratch, .. } = pipe;
            let (x, mid) = (&io[..batch * <A::Input as Shape>::LEN], &mut spare[..batch * <A::Output as Shape>::LEN]);
            self.first.forward(wa, x, mid, scratch);
            self.rest.forward_pipe(wb, batch, spare, io, y, scratch);
        }

        #[inline]
        fn leads_with_relu(&self) -> bool {
            self.first.leads_with_relu()
        }

        #[inline]
        fn pipe_after_relu(&self, w: Weights<'_>, pipe: &mut Pipe<'_>) -> bool {
            let Pipe { batch, io, spare, y, scratch } = pipe;
            let batch = *batch;
            let (mid, rest_io, rest_spare) = (
                batch * <A::Output as Shape>::LEN,
                batch * max(<A::Output as Shape>::LEN, B::PIPE_IO),
                batch * B::PIPE_SPARE,
            );
            if !A::RELU_INPUT || spare.len() < rest_io || io.len() < rest_spare {
                return false;
            }
            let (wa, wb) = w.split::<A>();
            self.first.forward_relu_input(wa, &io[..batch * <A::Input as Shape>::LEN], &mut spare[..mid], scratch);
            self.rest.forward_pipe(wb, batch, spare, io, y, scratch);
            true
        }

        /// The rest of the sequence over `io`, which holds the first layer's output.
        #[inline]
        fn forward_pipe_after_first(&self, w: Weights<'_>, pipe: Pipe<'_>) {
            let (_, wb) = w.split::<A>();
            let Pipe { batch, io, spare, y, scratch } = pipe;
            self.rest.forward_pipe(wb, batch, io, spare, y, scratch);
        }

        #[inline]
        fn forward_train(&self, x: &[f32], y: &mut [f32], cx: TrainCtx<'_>) {
            let TrainCtx { params, buffers, cache, scratch, rng, training } = cx;
            let batch = x.len() / <A::Input as Shape>::LEN;
            let (mid, cache) = split(cache, batch * <A::Output as Shape>::LEN);
            let (ca, cb) = split(cache, batch * A::CACHE);
            let cb = &mut cb[..batch * B::CACHE];
            let scratch = &mut scratch[batch * <A::Output as Shape>::LEN..];
            let (pa, pb) = params.split_at(A::PARAMS);
            let (ba, bb) = buffers.split_at_mut(A::BUFFERS);
            self.first.forward_train(
                x,
                mid,
                TrainCtx { params: pa, buffers: ba, cache: ca, scratch: &mut *scratch, rng: &mut *rng, training },
            );
            self.rest.forward_train(mid, y, TrainCtx { params: pb, buffers: bb, cache: cb, scratch, rng, training });
        }

        #[inline]
        fn backward(&self, x: &[f32], y: &[f32], dy: &mut [f32], dx: Option<&mut [f32]>, cx: BackwardCtx<'_>) {
            let BackwardCtx { params, cache, grads, frozen, scratch } = cx;
            let batch = x.len() / <A::Input as Shape>::LEN;
            let n_mid = batch * <A::Output as Shape>::LEN;
            let (mid, cache) = cache.split_at(n_mid);
            let (ca, cb) = cache.split_at(batch * A::CACHE);
            let cb = &cb[..batch * B::CACHE];
            let (dmid, scratch) = split(scratch, n_mid);
            let (pa, pb) = params.split_at(A::PARAMS);
            let (ga, gb) = grads.split_at_mut(A::PARAMS);
            // The first layer needs the gradient of its output only if it passes one on
            // or has a trainable parameter.
            let first = dx.is_some() || !frozen.all(A::PARAMS);
            let wanted = if first { Some(&mut *dmid) } else { None };
            let rest = BackwardCtx {
                params: pb,
                cache: cb,
                grads: gb,
                frozen: frozen.shifted(A::PARAMS),
                scratch: &mut *scratch,
            };
            self.rest.backward(mid, y, dy, wanted, rest);
            if first {
                self.first.backward(
                    x,
                    mid,
                    dmid,
                    dx,
                    BackwardCtx { params: pa, cache: ca, grads: ga, frozen, scratch },
                );
            }
        }

        fn visit_tensors(
            &self,
            path: Option<&TensorPath<'_>>,
            params_at: usize,
            buffers_at: usize,
            f: &mut dyn FnMut(&TensorInfo<'_>),
        ) {
            self.first.visit_tensors(path, params_at, buffers_at, f);
            self.rest.visit_tensors(path, params_at + A::PARAMS, buffers_at + A::BUFFERS, f);
        }

        fn visit_summary(&self, name: &str, depth: usize, f: &mut dyn FnMut(&SummaryRow<'_>)) {
            self.first.visit_summary(name, depth, f);
            self.rest.visit_summary(name, depth, f);
        }
    }

    /// A layer whose input shape is declared as `P` by the enclosing network.
    ///
    /// `network!` wraps a network used as a layer in `Fit`, so that a shape mismatch
    /// is reported once, by its own spanned check, instead of again by `Chain`'s
    /// bound. Layers exchange flat slices, so the adapter only delegates.
    pub struct Fit<P, L> {
        /// The wrapped layer.
        pub layer: L,
        _shape: core::marker::PhantomData<P>,
    }

    impl<P, L: Copy> Clone for Fit<P, L> {
        fn clone(&self) -> Self {
            *self
        }
    }
    impl<P, L: Copy> Copy for Fit<P, L> {}

    impl<P, L> Fit<P, L> {
        /// Wraps `layer`, declaring its input shape as `P`.
        pub const fn new(layer: L) -> Self {
            Fit { layer, _shape: core::marker::PhantomData }
        }
    }

    impl<P: Shape, L: Layer> Layer for Fit<P, L> {
        type Input = P;
        type Output = L::Output;
        const PARAMS: usize = L::PARAMS;
        const BUFFERS: usize = L::BUFFERS;
        const CACHE: usize = L::CACHE;
        const SCRATCH: usize = L::SCRATCH;
        const FORWARD_SCRATCH: usize = L::FORWARD_SCRATCH;
        const VALUE_SCRATCH: usize = L::VALUE_SCRATCH;
        const VALUE_STACK: usize = L::VALUE_STACK;
        const VALUE_LEN: usize = L::VALUE_LEN;
        const INFERENCE_IDENTITY: bool = L::INFERENCE_IDENTITY;
        const KIND: &'static str = L::KIND;
        const TENSORS: &'static TensorTree = L::TENSORS;

        #[inline]
        fn init(&self, params: &mut [f32], buffers: &mut [f32], rng: &mut Rng) {
            self.layer.init(params, buffers, rng)
        }
        #[inline]
        fn forward(&self, w: Weights<'_>, x: &[f32], y: &mut [f32], scratch: &mut [f32]) {
            self.layer.forward(w, x, y, scratch)
        }
        #[inline]
        fn forward_value(&self, w: Weights<'_>, x: &[f32], scratch: &mut [f32]) -> crate::Tensor<Self::Output> {
            self.layer.forward_value(w, x, scratch)
        }
        #[inline]
        fn forward_train(&self, x: &[f32], y: &mut [f32], cx: TrainCtx<'_>) {
            self.layer.forward_train(x, y, cx)
        }
        #[inline]
        fn backward(&self, x: &[f32], y: &[f32], dy: &mut [f32], dx: Option<&mut [f32]>, cx: BackwardCtx<'_>) {
            self.layer.backward(x, y, dy, dx, cx)
        }
        fn visit_tensors(
            &self,
            path: Option<&TensorPath<'_>>,
            params_at: usize,
            buffers_at: usize,
            f: &mut dyn FnMut(&TensorInfo<'_>),
        ) {
            self.layer.visit_tensors(path, params_at, buffers_at, f)
        }
        fn visit_summary(&self, name: &str, depth: usize, f: &mut dyn FnMut(&SummaryRow<'_>)) {
            self.layer.visit_summary(name, depth, f)
        }
    }

    /// Compile-time shape equality used by `network!` where it cannot see the shapes
    /// itself (a network used as a layer).
    #[diagnostic::on_unimplemented(
        message = "shape mismatch: `{Self}` does not fit `{Expected}`",
        label = "this layer's input shape differs from the previous layer's output shape",
        note = "a layer's `Input` shape must be the same type as the previous layer's `Output` shape"
    )]
    pub trait SameShape<Expected> {}
    impl<S: Shape> SameShape<S> for S {}

    /// Asserts at compile time that `A` and `B` are the same shape.
    pub const fn assert_same_shape<A: SameShape<B>, B>() {}
}
