//! `Model`: an architecture with its parameters and buffers, and every method of a
//! model: construction, inference (batch, batch-1, streaming, several inputs), the
//! step API of training, evaluation and the summary.
//!
//! The state is one flat `f32` array: all trainable parameters in `state_dict` order,
//! then all buffers (running statistics). With `alloc` it is an [`AlignedState`], an
//! array allocated zeroed on the heap (a 784x512 weight never passes through the
//! stack) that starts on a cache line; without a heap it is a `&'static [f32]`, so the
//! weights of firmware sit in flash.
use core::fmt;

#[cfg(feature = "alloc")]
use crate::layer::{BackwardCtx, TrainCtx};
use crate::layer::{Layer, Network, SummaryRow, TensorInfo, Weights};
use crate::multi::{LossTuple, Losses, MultiIo};
use crate::shape::{Shape, Tensor};
#[cfg(feature = "alloc")]
use crate::{
    layer::Frozen,
    loss::Loss,
    multi::{interleave, samples_of, InputsError, ShapeTuple, MAX_PARTS},
    rng::Rng,
    train::fit::{evaluate_with, validate},
    train::{Dataset, Evaluation, Metric, TrainError, Workspace},
};
#[cfg(feature = "alloc")]
use alloc::{vec, vec::Vec};

#[cfg(feature = "alloc")]
mod aligned;
#[cfg(feature = "alloc")]
pub use aligned::AlignedState;

/// The default state storage: [`AlignedState`] with `alloc`, `&'static [f32]` without.
#[cfg(feature = "alloc")]
pub type DefaultState = AlignedState;
/// The default state storage: `AlignedState` with `alloc`, `&'static [f32]` without.
#[cfg(not(feature = "alloc"))]
pub type DefaultState = &'static [f32];

/// What [`Model::from_state`] takes to make a state storage `P`: a `Vec<f32>` becomes an
/// [`AlignedState`] (copied to a cache line, the default storage), and every other
/// storage is kept as given: [`AlignedState`], `&[f32]`, `&mut [f32]`, `[f32; N]`,
/// `&Vec<f32>`, `Box<[f32]>`, `Rc<[f32]>`, `Arc<[f32]>`. A storage type of one's own
/// (anything `AsRef<[f32]>`) implements `IntoState<Self>` by returning itself.
///
/// ```
/// # use nn_core::prelude::*;
/// # use nn_core::model::AlignedState;
/// network! { pub struct Net: [2] -> [1] { out: Dense { units: 1 } } }
/// // A `Vec` gives the default model type, its state on a cache line.
/// let model: Model<Net> = Model::from_state(Net, vec![0.5, -1.0, 0.25]).unwrap();
/// assert_eq!(model.state().as_ptr() as usize % AlignedState::ALIGN, 0);
/// // A borrowed slice stays borrowed.
/// let weights = [0.5, -1.0, 0.25];
/// let borrowed: Model<Net, &[f32]> = Model::from_state(Net, &weights[..]).unwrap();
/// assert_eq!(borrowed.predict_one(&[1.0, 1.0].into()), model.predict_one(&[1.0, 1.0].into()));
/// ```
pub trait IntoState<P> {
    /// The storage.
    fn into_storage(self) -> P;
}

/// Storages that [`Model::from_state`] keeps as given.
macro_rules! state_as_given {
    ($({$($gen:tt)*})? $ty:ty) => {
        impl$(<$($gen)*>)? IntoState<$ty> for $ty {
            fn into_storage(self) -> $ty {
                self
            }
        }
    };
}

state_as_given!({'a} &'a [f32]);
state_as_given!({'a} &'a mut [f32]);
state_as_given!({const N: usize} [f32; N]);
state_as_given!({'a, const N: usize} &'a [f32; N]);
state_as_given!({'a, const N: usize} &'a mut [f32; N]);

/// The storages of `alloc` that [`Model::from_state`] keeps as given.
#[cfg(feature = "alloc")]
mod alloc_storages {
    use super::{AlignedState, IntoState};
    use alloc::{boxed::Box, rc::Rc, vec::Vec};

    state_as_given!(AlignedState);
    state_as_given!({'a} &'a AlignedState);
    state_as_given!({'a} &'a mut AlignedState);
    state_as_given!({'a} &'a Vec<f32>);
    state_as_given!({'a} &'a mut Vec<f32>);
    state_as_given!(Box<[f32]>);
    state_as_given!(Rc<[f32]>);
    #[cfg(target_has_atomic = "ptr")]
    state_as_given!(alloc::sync::Arc<[f32]>);
}

#[cfg(feature = "alloc")]
impl IntoState<AlignedState> for Vec<f32> {
    fn into_storage(self) -> AlignedState {
        AlignedState::from(self)
    }
}

/// A layer (usually a network) together with its parameters and buffers.
#[derive(Clone, Debug)]
///
/// A model is in training mode when made; [`Model::eval`] and [`Model::train`] switch
/// the mode of its training forwards at run time, as PyTorch's `module.eval()` and
/// `module.train()` (see [`Model::forward_train`]). Inference (`predict`, `forward_slices`, ...)
/// is always in evaluation mode.
pub struct Model<L, P = DefaultState> {
    pub(crate) layer: L,
    pub(crate) state: P,
    pub(crate) training: bool,
}

/// The state array given to [`Model::from_state`] has the wrong length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateLenError {
    /// Parameters plus buffers the model needs.
    pub expected: usize,
    /// Floats given.
    pub found: usize,
}

impl fmt::Display for StateLenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "model state has {} values, expected {}", self.found, self.expected)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for StateLenError {}

/// A batch of inputs whose length is not a whole number of samples (see
/// [`Model::predict`](crate::model::Model::predict)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchLenError {
    /// Values per sample: the network's input size.
    pub sample: usize,
    /// Values given.
    pub found: usize,
}

impl BatchLenError {
    /// The number of samples in `len` values of `sample` values each, or the error.
    pub fn samples(sample: usize, len: usize) -> Result<usize, BatchLenError> {
        match len.checked_rem(sample) {
            Some(0) => Ok(len / sample),
            // A network without inputs takes no values.
            None if len == 0 => Ok(0),
            _ => Err(BatchLenError { sample, found: len }),
        }
    }
}

impl fmt::Display for BatchLenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the batch holds {} values, not a whole number of samples of {} values", self.found, self.sample)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for BatchLenError {}

#[cfg(feature = "alloc")]
impl<L: Layer + Default> Model<L, AlignedState> {
    /// A model initialised from `seed` (Glorot or He per layer, as Keras).
    pub fn new(seed: u64) -> Self {
        let mut model = Self::zeros();
        model.init(seed);
        model
    }

    /// A model whose parameters and buffers are all zero.
    pub fn zeros() -> Self {
        Model { layer: L::default(), state: AlignedState::zeros(L::PARAMS + L::BUFFERS), training: true }
    }
}

impl<L: Layer> Model<L, &'static [f32]> {
    /// A model over a `static` state array (firmware: the weights stay in flash).
    /// Evaluated in a `static` or `const` initialiser, a wrong length is a compile
    /// error.
    pub const fn from_static(layer: L, state: &'static [f32]) -> Self {
        assert!(state.len() == L::PARAMS + L::BUFFERS, "static state array has the wrong length");
        Model { layer, state, training: true }
    }
}

impl<L: Layer, P: AsRef<[f32]>> Model<L, P> {
    /// A model over the given state (parameters, then buffers): a `Vec<f32>` is copied
    /// into an [`AlignedState`] (the default storage), any other storage is kept as
    /// given (see [`IntoState`]).
    pub fn from_state(layer: L, state: impl IntoState<P>) -> Result<Self, StateLenError> {
        let state = state.into_storage();
        let found = state.as_ref().len();
        let expected = L::PARAMS + L::BUFFERS;
        if found != expected {
            return Err(StateLenError { expected, found });
        }
        Ok(Model { layer, state, training: true })
    }

    /// Whether the training forwards run in training mode (the default) rather than in
    /// evaluation mode.
    pub fn is_training(&self) -> bool {
        self.training
    }

    /// Training mode for the training forwards ([`Model::forward_train`], and so
    /// [`Fit`](crate::train::Fit)): dropout active, batch norm normalising with the
    /// batch's statistics and updating its running statistics. This is the mode of a
    /// new model; PyTorch's `module.train()`.
    pub fn train(&mut self) -> &mut Self {
        self.training = true;
        self
    }

    /// Evaluation mode for the training forwards, PyTorch's `module.eval()`: dropout
    /// is the identity and batch norm normalises with its running statistics, which it
    /// leaves unchanged, so a training step computes the output inference computes,
    /// and its backward the gradients of that function (the running statistics
    /// constants). Used to fine-tune a network whose batch norms stay frozen, or to take
    /// gradients of the deterministic network. A batch norm declared `inference: true`
    /// is in evaluation mode whatever the model's mode.
    pub fn eval(&mut self) -> &mut Self {
        self.training = false;
        self
    }

    /// The architecture.
    pub fn layer(&self) -> &L {
        &self.layer
    }

    /// The whole state: parameters, then buffers.
    pub fn state(&self) -> &[f32] {
        self.state.as_ref()
    }

    /// The trainable parameters, in `state_dict` order.
    pub fn params(&self) -> &[f32] {
        &self.state.as_ref()[..L::PARAMS]
    }

    /// The buffers (running statistics).
    pub fn buffers(&self) -> &[f32] {
        &self.state.as_ref()[L::PARAMS..]
    }

    /// Consumes the model, returning its state storage.
    pub fn into_state(self) -> P {
        self.state
    }

    /// Calls `f` for every parameter and buffer tensor with its dotted name.
    pub fn visit_tensors(&self, f: &mut dyn FnMut(&TensorInfo<'_>)) {
        self.layer.visit_tensors(None, 0, 0, f)
    }

    /// Batch inference over raw floats: `x` holds `batch * Input::LEN` values, `y`
    /// receives `batch * Output::LEN`; `scratch` must hold `batch * L::SCRATCH`.
    pub fn forward_slices(&self, x: &[f32], y: &mut [f32], scratch: &mut [f32]) {
        let (params, buffers) = self.state.as_ref().split_at(L::PARAMS);
        self.layer.forward(Weights::new(params, buffers), x, y, scratch)
    }

    /// A Keras-style table of layers, output shapes and parameter counts.
    pub fn summary(&self) -> Summary<'_, L> {
        Summary { layer: &self.layer }
    }
}

impl<L: Network, P: AsRef<[f32]>> Model<L, P> {
    /// Batch-1 inference. Every intermediate value is on the stack
    /// (`L::PEAK_ACTIVATION_BYTES`), no heap, when the network's `STACK_BOUND_BYTES` is
    /// at most [`crate::layer::STACK_LIMIT_BYTES`]; a larger network's are in a
    /// workspace allocated for the call (with `alloc`; without it such a network does
    /// not compile, and [`Model::forward_slices`] takes a scratch of the caller's).
    pub fn predict_one(&self, x: &Tensor<L::Input>) -> Tensor<L::Output> {
        let (params, buffers) = self.state.as_ref().split_at(L::PARAMS);
        self.layer.forward_one(params, buffers, x)
    }
}

impl<L: Layer, P: AsMut<[f32]>> Model<L, P> {
    /// The whole state, mutable.
    pub fn state_mut(&mut self) -> &mut [f32] {
        self.state.as_mut()
    }

    /// The trainable parameters, mutable.
    pub fn params_mut(&mut self) -> &mut [f32] {
        &mut self.state.as_mut()[..L::PARAMS]
    }

    /// Parameters (shared) and buffers (mutable) at once, as training forward needs.
    pub fn split_state_mut(&mut self) -> (&mut [f32], &mut [f32]) {
        self.state.as_mut().split_at_mut(L::PARAMS)
    }

    /// Re-initialises every parameter from `seed`.
    pub fn init(&mut self, seed: u64) {
        let mut rng = crate::rng::Rng::new(seed);
        let (params, buffers) = self.state.as_mut().split_at_mut(L::PARAMS);
        self.layer.init(params, buffers, &mut rng);
    }
}

/// Streaming: one time step per call, over this model's parameters.
impl<L: crate::stream::Step + Clone, P: AsRef<[f32]>> Model<L, P> {
    /// A stream over this model's parameters (see [`crate::stream`]).
    pub fn stream(&self) -> crate::stream::Stream<'_, L> {
        let (params, buffers) = self.state.as_ref().split_at(L::PARAMS);
        crate::stream::Stream::new(self.layer.clone(), params, buffers)
    }
}

/// The step API of training (see [`crate::train`]) and batch inference.
#[cfg(feature = "alloc")]
impl<L: Layer, P: AsRef<[f32]> + AsMut<[f32]>> Model<L, P> {
    /// Training forward of a batch (`x.len() / Input::LEN` samples), keeping what
    /// `backward` needs in `ws`. Returns the outputs. In training mode (the default,
    /// [`Model::train`]) dropout is active and batch norm uses the batch's statistics
    /// and updates its running statistics; in evaluation mode ([`Model::eval`]) both
    /// compute what inference computes and `backward` differentiates that.
    pub fn forward_train<'w>(&mut self, ws: &'w mut Workspace<L>, x: &[f32], rng: &mut Rng) -> &'w [f32] {
        let batch = x.len() / <L::Input as Shape>::LEN;
        ws.reserve(batch);
        let n_out = batch * <L::Output as Shape>::LEN;
        let (params, buffers) = self.state.as_mut().split_at_mut(L::PARAMS);
        let cx = TrainCtx {
            params,
            buffers,
            cache: &mut ws.cache[..batch * L::CACHE],
            scratch: &mut ws.scratch[..batch * L::SCRATCH],
            rng,
            training: self.training,
        };
        self.layer.forward_train(x, &mut ws.output[..n_out], cx);
        &ws.output[..n_out]
    }

    /// Backward of the last `forward_train` (same `x`): adds the parameter gradients
    /// into `ws.grads()` and, when `dx` is given, writes the input gradient (which is
    /// how a generator learns through a discriminator).
    pub fn backward(&self, ws: &mut Workspace<L>, x: &[f32], dx: Option<&mut [f32]>) {
        self.backward_frozen(ws, x, dx, Frozen::NONE)
    }

    /// As [`Model::backward`] with the parameters in `frozen` frozen: their gradients
    /// are not computed (their entries in `ws.grads()` keep their values; whole frozen
    /// layers skip their parameter-gradient products) and no layer below the last one
    /// with a trainable parameter runs backward, unless `dx` is wanted.
    pub fn backward_frozen(&self, ws: &mut Workspace<L>, x: &[f32], dx: Option<&mut [f32]>, frozen: Frozen<'_>) {
        let batch = ws.batch;
        let n_out = batch * <L::Output as Shape>::LEN;
        let cx = BackwardCtx {
            params: self.params(),
            cache: &ws.cache[..batch * L::CACHE],
            grads: &mut ws.grads,
            frozen,
            scratch: &mut ws.scratch[..batch * L::SCRATCH],
        };
        self.layer().backward(x, &ws.output[..n_out], &mut ws.output_grad[..n_out], dx, cx);
    }

    /// The gradient with respect to the input: backward of the last `forward_train`
    /// (same `x`) from the output gradient in `ws`, writing d loss / d `x` into `dx`
    /// (as long as `x`) with every parameter frozen, so `ws.grads()` keeps its values.
    /// This is the gradient a discriminator passes to its generator; the same values
    /// as [`Model::backward`] with `Some(dx)`.
    ///
    /// ```
    /// # use nn_core::prelude::*;
    /// network! { pub struct Scale: [2] -> [1] { out: Dense { units: 1, bias: false } } }
    /// let mut model = Model::<Scale>::new(1);
    /// model.params_mut().copy_from_slice(&[3.0, -2.0]);
    /// let (mut ws, x) = (Workspace::<Scale>::new(), [1.0, 1.0]);
    /// model.forward_train(&mut ws, &x, &mut Rng::new(0));
    /// ws.output_grad_mut()[0] = 0.5;
    /// let mut dx = [0.0; 2];
    /// model.input_grad(&mut ws, &x, &mut dx);
    /// assert_eq!((dx, ws.grads()), ([1.5, -1.0], &[0.0, 0.0][..]));
    /// ```
    pub fn input_grad(&self, ws: &mut Workspace<L>, x: &[f32], dx: &mut [f32]) {
        let all = 0..L::PARAMS;
        self.backward_frozen(ws, x, Some(dx), Frozen::new(core::slice::from_ref(&all)))
    }

    /// Batch inference: the outputs of the samples in `x`, which holds a whole number
    /// of samples (`k * Input::LEN` values; any other length is an error rather than
    /// a batch with its last values dropped).
    ///
    /// ```
    /// # use nn_core::prelude::*;
    /// # use nn_core::model::BatchLenError;
    /// # network! { pub struct Net: [2] -> [1] { out: Dense { units: 1 } } }
    /// let model = Model::<Net>::new(1);
    /// assert_eq!(model.predict(&[0.5, 1.0, 2.0, 3.0]).unwrap().len(), 2);
    /// assert_eq!(model.predict(&[0.5, 1.0, 2.0]), Err(BatchLenError { sample: 2, found: 3 }));
    /// ```
    pub fn predict(&self, x: &[f32]) -> Result<Vec<f32>, BatchLenError> {
        let batch = BatchLenError::samples(<L::Input as Shape>::LEN, x.len())?;
        let mut y = vec![0.0; batch * <L::Output as Shape>::LEN];
        let mut scratch = vec![0.0; batch * L::SCRATCH];
        self.forward_slices(x, &mut y, &mut scratch);
        Ok(y)
    }
}

/// Evaluation on a data set.
#[cfg(feature = "alloc")]
impl<L: Layer, P: AsRef<[f32]>> Model<L, P> {
    /// The mean loss and the metrics of the model on `data`, in inference mode.
    pub fn evaluate<Lo: Loss>(&self, data: &Dataset, loss: &Lo, metrics: &[Metric]) -> Result<Evaluation, TrainError> {
        validate::<L, Lo>(loss, data)?;
        let mut ws = Workspace::<L>::new();
        Ok(evaluate_with(self, data, loss, metrics, 256, &mut ws))
    }
}

/// Networks with several inputs or outputs (see [`crate::multi`]).
#[cfg(feature = "alloc")]
impl<L: MultiIo, P: AsRef<[f32]>> Model<L, P> {
    /// Batch inference of a network with several inputs or outputs: one batch per
    /// input (each a whole number of samples, all with the same number), one batch per
    /// output, in declared order.
    ///
    /// ```
    /// # use nn_core::prelude::*;
    /// # use nn_core::multi::InputsError;
    /// # use nn_core::model::BatchLenError;
    /// network! {
    ///     pub struct Sum: ([2], [2]) -> ([2], [1]) graph {
    ///         input a, b;
    ///         s = add(a, b);
    ///         d = head(s): Dense { units: 1 };
    ///         output s, d;
    ///     }
    /// }
    /// let model = Model::<Sum>::new(1);
    /// let (s, d) = model.predict_multi((&[1.0, 2.0, 3.0, 4.0], &[10.0, 20.0, 30.0, 40.0])).unwrap();
    /// assert_eq!((s, d.len()), (vec![11.0, 22.0, 33.0, 44.0], 2));
    /// let err = model.predict_multi((&[1.0, 2.0], &[1.0, 2.0, 3.0])).unwrap_err();
    /// assert_eq!(err, InputsError::Length { input: 1, error: BatchLenError { sample: 2, found: 3 } });
    /// ```
    pub fn predict_multi(
        &self,
        inputs: <L::Inputs as ShapeTuple>::Slices<'_>,
    ) -> Result<<L::Outputs as ShapeTuple>::Vecs, InputsError> {
        let mut parts: [&[f32]; MAX_PARTS] = [&[]; MAX_PARTS];
        let in_lens = <L::Inputs as ShapeTuple>::LENS;
        let parts = &mut parts[..in_lens.len()];
        <L::Inputs as ShapeTuple>::slices(inputs, parts);
        let batch = samples_of(parts, in_lens)?;
        let mut x = alloc::vec![0.0; batch * <L::Inputs as ShapeTuple>::LEN];
        interleave(parts, in_lens, &mut x);
        let mut y = alloc::vec![0.0; batch * <L::Output as Shape>::LEN];
        let mut scratch = alloc::vec![0.0; batch * L::SCRATCH];
        self.forward_slices(&x, &mut y, &mut scratch);
        Ok(<L::Outputs as ShapeTuple>::vecs(crate::multi::split(&y, <L::Outputs as ShapeTuple>::LENS)))
    }

    /// Inference of one sample of a network with several inputs or outputs: one
    /// tensor per input, one per output, each of its declared shape.
    ///
    /// ```
    /// # use nn_core::prelude::*;
    /// network! {
    ///     pub struct Sum: ([2], [2]) -> ([2], [1]) graph {
    ///         input a, b;
    ///         s = add(a, b);
    ///         d = head(s): Dense { units: 1 };
    ///         output s, d;
    ///     }
    /// }
    /// let model = Model::<Sum>::new(1);
    /// let (s, d): (Tensor<Shape1<2>>, Tensor<Shape1<1>>) =
    ///     model.predict_one_multi((&Tensor::from([1.0, 2.0]), &Tensor::from([10.0, 20.0])));
    /// assert_eq!((s, d.len()), (Tensor::from([11.0, 22.0]), 1));
    /// ```
    pub fn predict_one_multi(
        &self,
        inputs: <L::Inputs as ShapeTuple>::TensorRefs<'_>,
    ) -> <L::Outputs as ShapeTuple>::Tensors {
        let mut parts: [&[f32]; MAX_PARTS] = [&[]; MAX_PARTS];
        let in_lens = <L::Inputs as ShapeTuple>::LENS;
        let parts = &mut parts[..in_lens.len()];
        <L::Inputs as ShapeTuple>::tensor_slices(inputs, parts);
        let mut x = vec![0.0; <L::Inputs as ShapeTuple>::LEN];
        interleave(parts, in_lens, &mut x);
        let mut y = vec![0.0; <L::Output as Shape>::LEN];
        let mut scratch = vec![0.0; L::SCRATCH];
        self.forward_slices(&x, &mut y, &mut scratch);
        <L::Outputs as ShapeTuple>::tensors(&y)
    }
}

impl<L: MultiIo, P> Model<L, P> {
    /// A loss per output of this model's network, in declared order, each of weight 1
    /// (set them with [`Losses::weights`]): Keras's `compile(loss=[...])`, for
    /// `Fit::new`. The same as `Losses::<L, _>::new(losses)`.
    pub fn loss_per_output<T: LossTuple>(&self, losses: T) -> Losses<L, T> {
        Losses::new(losses)
    }
}

/// The printable summary of a model (see [`Model::summary`]).
pub struct Summary<'a, L> {
    layer: &'a L,
}

impl<L: Layer> fmt::Display for Summary<'_, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Dims<'a>(&'a [usize]);
        impl fmt::Display for Dims<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("[")?;
                for (i, d) in self.0.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{d}")?;
                }
                f.write_str("]")
            }
        }
        // Pad through a fixed-size buffer so the table works without `alloc`.
        struct Cell<T>(T, usize);
        impl<T: fmt::Display> fmt::Display for Cell<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut buf = [0u8; 64];
                let mut w = SliceWriter { buf: &mut buf, len: 0 };
                let _ = fmt::write(&mut w, format_args!("{}", self.0));
                let len = w.len;
                let s = core::str::from_utf8(&buf[..len]).unwrap_or("?");
                write!(f, "{s:<width$}", width = self.1)
            }
        }
        let rule = RULE;
        writeln!(f, "{}: {} -> {}", L::KIND, Dims(<L::Input as Shape>::DIMS), Dims(<L::Output as Shape>::DIMS))?;
        writeln!(f, "{rule}")?;
        writeln!(f, "{:<24}{:<14}{:<18}{:>10}", "layer", "kind", "output shape", "params")?;
        writeln!(f, "{rule}")?;
        let mut result = Ok(());
        self.layer.visit_summary("", 0, &mut |row: &SummaryRow<'_>| {
            if result.is_ok() {
                let indent = row.depth * 2;
                result = writeln!(
                    f,
                    "{:indent$}{}{}{}{:>10}",
                    "",
                    Cell(row.name, 24 - indent.min(20)),
                    Cell(row.kind, 14),
                    Cell(Dims(row.output), 18),
                    row.params,
                );
            }
        });
        result?;
        writeln!(f, "{rule}")?;
        writeln!(f, "total parameters: {}", L::PARAMS)?;
        if L::BUFFERS > 0 {
            writeln!(f, "buffers: {}", L::BUFFERS)?;
        }
        write!(f, "parameter bytes: {}", (L::PARAMS + L::BUFFERS) * 4)
    }
}

const RULE: &str = "------------------------------------------------------------------";

struct SliceWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl fmt::Write for SliceWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let bytes = s.as_bytes();
        let n = bytes.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
        self.len += n;
        Ok(())
    }
}

#[cfg(all(test, feature = "alloc"))]
mod tests {
    use super::*;
    use crate::io::{from_safetensors_bytes, to_safetensors_bytes, LoadOptions};

    crate::network! {
        struct Net: [3] -> [2] {
            hidden: Dense { units: 5, activation: Relu },
            norm: BatchNorm1d,
            out: Dense { units: 2 },
        }
    }

    fn on_a_line(state: &[f32]) -> bool {
        (state.as_ptr() as usize).is_multiple_of(64)
    }

    /// Every model that owns its state holds it on a cache line: made, zeroed, cloned,
    /// loaded, built from a `Vec` (whatever the `Vec`'s own alignment).
    #[test]
    fn an_owned_state_starts_on_a_cache_line() {
        let mut keep = Vec::new();
        for seed in 0..8u64 {
            // Allocations of several sizes in between, so that the heap is not fresh.
            keep.push(vec![0u8; 8 + 24 * seed as usize]);
            let model = Model::<Net>::new(seed);
            let zeros = Model::<Net>::zeros();
            let copy = model.clone();
            assert!(on_a_line(model.state()) && on_a_line(zeros.state()) && on_a_line(copy.state()));
            assert_eq!(copy.state(), model.state());
            let mut loaded = Model::<Net>::zeros();
            from_safetensors_bytes(&mut loaded, &to_safetensors_bytes(&model), &LoadOptions::default()).unwrap();
            assert!(on_a_line(loaded.state()));
            assert_eq!(loaded.state(), model.state());
            let mut wide = vec![0.0f32; Net::PARAMS + Net::BUFFERS + 1];
            wide[1..].copy_from_slice(model.state());
            let unaligned: Vec<f32> = wide[1..].to_vec();
            let from_vec = Model::from_state(Net, unaligned).unwrap();
            assert!(on_a_line(from_vec.state()));
            assert_eq!(from_vec.state(), model.state());
            let x = [0.5, -1.0, 2.0].into();
            assert_eq!(from_vec.predict_one(&x), model.predict_one(&x));
        }
    }

    /// `from_state` keeps a borrowed or boxed state where it is, and gives a `Vec` the
    /// default storage (both with and without naming the model's type).
    #[test]
    fn from_state_keeps_other_storages_as_given() {
        let model = Model::<Net>::new(1);
        let n = Net::PARAMS + Net::BUFFERS;
        let mut wide = vec![0.0f32; n + 1];
        wide[1..].copy_from_slice(model.state());
        let borrowed = Model::from_state(Net, &wide[1..]).unwrap();
        assert_eq!(borrowed.state().as_ptr(), wide[1..].as_ptr());
        let named = Model::<Net>::from_state(Net, wide[1..].to_vec()).unwrap();
        assert!(on_a_line(named.state()));
        let boxed: alloc::boxed::Box<[f32]> = model.state().into();
        let boxed = Model::from_state(Net, boxed).unwrap();
        assert_eq!(boxed.state(), model.state());
        let err = Model::<Net>::from_state(Net, vec![0.0; n - 1]).unwrap_err();
        assert_eq!(err, StateLenError { expected: n, found: n - 1 });
        let state: Vec<f32> = model.clone().into_state().into();
        assert_eq!(state, model.state());
    }
}
