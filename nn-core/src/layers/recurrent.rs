//! Recurrent layers: `SimpleRnn`, `Lstm`, `Gru`, stacked and bidirectional.
//!
//! Shapes: a sequence `[T, F]` (time, features) in; out, with `return_sequences`, the
//! hidden state of every step `[T, O]`, otherwise the final hidden state `[O]`, where
//! `O = H` (one direction, or two merged by sum, mean or product) or `2 H` (two
//! directions concatenated, PyTorch's `bidirectional=True`).
//!
//! Equations, gate order (`i, f, g, o` for LSTM; `r, z, n` for GRU, the reset gate
//! applied after the hidden matmul) and parameters are PyTorch's `nn.RNN`, `nn.LSTM`
//! and `nn.GRU`: `weight_ih_l{k}` `[G H, in]`, `weight_hh_l{k}` `[G H, H]`,
//! `bias_ih_l{k}`, `bias_hh_l{k}` `[G H]`, with the suffix `_reverse` for the backward
//! direction, so a `state_dict` loads by copy. The formulas are in
//! [`crate::kernels::recurrent`].
//!
//! * **Stacking** (`LAYERS > 1`): layer `k + 1` reads the outputs of layer `k` (both
//!   directions concatenated, as PyTorch).
//! * **Last output** (`SEQ = false`): the final hidden state of the top layer; for
//!   two directions, the forward direction after the last step and the backward
//!   direction after the first (PyTorch's `h_n`), merged.
//! * **Initial state**: the [`Layer`] methods start from zeros. In a `network!` graph,
//!   a call `gru(x, h0)` or `lstm(x, h0, c0)` starts from the values `h0` (and `c0`),
//!   each `[LAYERS * DIRS, H]` per sample, with their gradients in the backward pass.
//!   To start from given
//!   `h_0` / `c_0` (and read `h_n` / `c_n`), in inference and in training, call
//!   [`Recurrent::forward_with_state`], [`Recurrent::forward_train_with_state`] and
//!   [`Recurrent::backward_with_state`] (which also returns `dL/dh_0`, `dL/dc_0`, as
//!   PyTorch's autograd does); with `None` states they are the [`Layer`] methods, bit
//!   for bit. States ([`States`], [`StatesMut`]) are `[batch, LAYERS * DIRS, H]`,
//!   PyTorch's `h_0` with the batch outermost; [`Recurrent::state_from_pytorch`] and
//!   [`Recurrent::state_to_pytorch`] convert from and to PyTorch's
//!   `[LAYERS * DIRS, batch, H]`. A streaming model carries its state from step to
//!   step instead (see [`crate::stream`]).
//! * **Final state**: in a `network!` graph, `(y, h) = gru(x)` and
//!   `(y, h, c) = lstm(x)` also give `h_n` (and `c_n`) as values, in the layout of an
//!   initial state (`[H]` for one layer in one direction), Keras's
//!   `return_state=True`; [`Recurrent::backward_with_states`] takes the gradients
//!   flowing into them. A sequence-to-sequence model whose decoder starts from the
//!   encoder's state:
//!
//!   ```
//!   use nn_core::prelude::*;
//!   network! {
//!       pub struct Seq2Seq: ([6, 2], [4, 3]) -> ([4, 2], [5], [5]) graph {
//!           input src, tgt;
//!           (_, h, c) = enc(src): Lstm { units: 5 };
//!           d = dec(tgt, h, c): Lstm { units: 5, return_sequences: true };
//!           out = head(d): SequenceDense { units: 2 };
//!           output out, h, c; // the state is a value like any other
//!       }
//!   }
//!   let model = Model::<Seq2Seq>::new(0);
//!   let (out, h, c) = model.predict_multi((&[0.5; 12], &[0.1; 12])).unwrap();
//!   assert_eq!((out.len(), h.len(), c.len()), (8, 5, 5));
//!   // h_n = o * tanh(c_n) with the output gate o in (0, 1).
//!   assert!(h.iter().zip(&c).all(|(h, c)| h.abs() <= c.tanh().abs()));
//!   ```
//! * **Truncated backpropagation through time** (`truncate: k`): see
//!   [`crate::kernels::recurrent::backward`].
//!
//! `forward` (inference) computes each projection as a fixed-order dot product so that
//! streaming ([`crate::stream`]) reproduces it bit for bit; `forward_train` uses GEMM
//! (one for the input projections of all steps, one per step for the recurrence), so
//! the two agree to rounding, not bit for bit.
//!
//! ```
//! use nn_core::layers::{Lstm, LstmCell};
//! use nn_core::{Layer, Rng};
//!
//! // 5 steps of 3 features -> 5 steps of 4 hidden units.
//! type Encoder = Lstm<5, 3, 4>;
//! let lstm = Encoder::new(LstmCell);
//! let mut params = vec![0.0; Encoder::PARAMS];
//! lstm.init(&mut params, &mut [], &mut Rng::new(0));
//! assert_eq!(Encoder::PARAMS, 4 * 4 * (3 + 4 + 2));
//!
//! let x = [0.5f32; 5 * 3];
//! let mut y = [0.0f32; 5 * 4];
//! let mut scratch = vec![0.0; Encoder::SCRATCH];
//! lstm.forward(nn_core::Weights::new(&params, &[]), &x, &mut y, &mut scratch);
//! assert!(y.iter().all(|v| v.abs() < 1.0));
//! ```

use core::fmt;

use crate::activation::Activation;
use crate::kernels::recurrent::{self as kernel, CellKind, Config};
use crate::layer::{BackwardCtx, Layer, TrainCtx, Weights};
use crate::rng::Rng;
use crate::shape::{Shape1, Shape2};

pub use crate::kernels::recurrent::{Merge, States, StatesMut};

/// A recurrent state whose length does not fit the layer (see
/// [`Recurrent::state_from_pytorch`]): it must be a whole number of samples of
/// `per_sample` floats, and the destination as long as the source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateShapeError {
    /// Floats per sample: `LAYERS * DIRS * H`.
    pub per_sample: usize,
    /// Floats given.
    pub source: usize,
    /// Floats of the destination.
    pub destination: usize,
}

impl fmt::Display for StateShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "recurrent state of {} values into {}: both must be the same whole number of samples of \
             LAYERS * DIRS * H = {} values",
            self.source, self.destination, self.per_sample
        )
    }
}

#[cfg(feature = "std")]
impl std::error::Error for StateShapeError {}

/// Copies `[outer, middle, inner]` to `[middle, outer, inner]`.
fn swap_outer(src: &[f32], dst: &mut [f32], outer: usize, middle: usize, inner: usize) {
    for a in 0..outer {
        for b in 0..middle {
            let from = (a * middle + b) * inner;
            let to = (b * outer + a) * inner;
            dst[to..to + inner].copy_from_slice(&src[from..from + inner]);
        }
    }
}

/// The batch size of a state of `source` floats of `rows * hidden` per sample copied
/// into `destination` floats.
fn state_batch(rows: usize, hidden: usize, source: usize, destination: usize) -> Result<usize, StateShapeError> {
    let per_sample = rows.saturating_mul(hidden);
    match source.checked_rem(per_sample) {
        Some(0) if destination == source => Ok(source / per_sample),
        _ => Err(StateShapeError { per_sample, source, destination }),
    }
}

/// Copies a recurrent state in PyTorch's layout `[rows, batch, hidden]` (`h_0`, `c_0`
/// of `nn.LSTM`, `nn.GRU`, `nn.RNN`, with `rows = layers * directions`) into `state`,
/// `[batch, rows, hidden]`: the layout of a `network!` state input `[rows, hidden]`
/// (`lstm(x, h0, c0)`) batched, and of [`Recurrent`]'s states. Returns the batch size.
///
/// ```
/// use nn_core::layers::{state_from_pytorch, state_to_pytorch};
/// // PyTorch's h0 of a 2-layer GRU of 2 units, batch of 3: [2, 3, 2].
/// let torch: Vec<f32> = (0..12).map(|v| v as f32).collect();
/// let mut h0 = [0.0; 12]; // the network input `h0: [2, 2]`, batch of 3
/// assert_eq!(state_from_pytorch(2, 2, &torch, &mut h0), Ok(3));
/// assert_eq!(h0[..4], [0.0, 1.0, 6.0, 7.0]); // sample 0: layer 0, then layer 1
/// let mut back = [0.0; 12];
/// assert_eq!(state_to_pytorch(2, 2, &h0, &mut back), Ok(3));
/// assert_eq!(back[..], torch[..]);
/// assert!(state_from_pytorch(2, 2, &torch[..5], &mut h0[..5]).is_err());
/// ```
pub fn state_from_pytorch(
    rows: usize,
    hidden: usize,
    torch: &[f32],
    state: &mut [f32],
) -> Result<usize, StateShapeError> {
    let batch = state_batch(rows, hidden, torch.len(), state.len())?;
    swap_outer(torch, state, rows, batch, hidden);
    Ok(batch)
}

/// Copies `state`, `[batch, rows, hidden]` (a network's state input, the gradient
/// of one, or a [`Recurrent`] final state), into `torch`, PyTorch's layout
/// `[rows, batch, hidden]`; returns the batch size. The inverse of
/// [`state_from_pytorch`].
pub fn state_to_pytorch(
    rows: usize,
    hidden: usize,
    state: &[f32],
    torch: &mut [f32],
) -> Result<usize, StateShapeError> {
    let batch = state_batch(rows, hidden, state.len(), torch.len())?;
    swap_outer(state, torch, batch, rows, hidden);
    Ok(batch)
}

/// A recurrent cell: the kind of step a [`Recurrent`] layer repeats.
pub trait Cell: Copy + fmt::Debug + 'static {
    /// Gates per hidden unit (rows of `weight_ih` per unit).
    const GATES: usize;
    /// The layer kind shown in summaries.
    const NAME: &'static str;
    /// The runtime cell description used by the kernels.
    fn kind(&self) -> CellKind;
}

/// The Elman cell `h = act(W_ih x + b_ih + W_hh h + b_hh)`, `act` tanh or ReLU
/// (PyTorch's `nn.RNN(nonlinearity=...)`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RnnCell {
    /// [`Activation::Tanh`] or [`Activation::Relu`].
    pub activation: Activation,
}

impl RnnCell {
    /// The cell with `activation`, which must be `Tanh` or `Relu`.
    pub const fn new(activation: Activation) -> Self {
        assert!(
            matches!(activation, Activation::Tanh | Activation::Relu),
            "SimpleRnn: the activation must be Tanh or Relu"
        );
        RnnCell { activation }
    }
}

impl Default for RnnCell {
    fn default() -> Self {
        RnnCell::new(Activation::Tanh)
    }
}

impl Cell for RnnCell {
    const GATES: usize = 1;
    const NAME: &'static str = "SimpleRnn";
    fn kind(&self) -> CellKind {
        match self.activation {
            Activation::Relu => CellKind::RnnRelu,
            _ => CellKind::RnnTanh,
        }
    }
}

/// The LSTM cell (gates `i, f, g, o`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LstmCell;

impl Cell for LstmCell {
    const GATES: usize = 4;
    const NAME: &'static str = "Lstm";
    fn kind(&self) -> CellKind {
        CellKind::Lstm
    }
}

/// The GRU cell (gates `r, z, n`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GruCell;

impl Cell for GruCell {
    const GATES: usize = 3;
    const NAME: &'static str = "Gru";
    fn kind(&self) -> CellKind {
        CellKind::Gru
    }
}

/// A stack of `LAYERS` recurrent layers of `H` units over `[T, F]` sequences, in
/// `DIRS` directions (1, or 2 for bidirectional), with output steps of width `OUT`
/// (`H`, or `2 H` for concatenated directions), returning every step when `SEQ`.
///
/// The aliases [`SimpleRnn`], [`Lstm`], [`Gru`] and [`Bidirectional`] fill in the
/// usual parameters.
#[derive(Clone, Copy, Debug)]
pub struct Recurrent<
    C,
    const T: usize,
    const F: usize,
    const H: usize,
    const LAYERS: usize,
    const DIRS: usize,
    const OUT: usize,
    const SEQ: bool,
> {
    /// The cell.
    pub cell: C,
    /// How two directions are combined (ignored with one direction).
    pub merge: Merge,
    /// Backpropagate through at most this many steps (0: the whole sequence).
    pub truncate: usize,
}

/// A simple (Elman) RNN: `[T, F] -> [T, H]` (or `[H]` when `SEQ` is false).
pub type SimpleRnn<const T: usize, const F: usize, const H: usize, const LAYERS: usize = 1, const SEQ: bool = true> =
    Recurrent<RnnCell, T, F, H, LAYERS, 1, H, SEQ>;
/// An LSTM: `[T, F] -> [T, H]` (or `[H]` when `SEQ` is false).
pub type Lstm<const T: usize, const F: usize, const H: usize, const LAYERS: usize = 1, const SEQ: bool = true> =
    Recurrent<LstmCell, T, F, H, LAYERS, 1, H, SEQ>;
/// A GRU: `[T, F] -> [T, H]` (or `[H]` when `SEQ` is false).
pub type Gru<const T: usize, const F: usize, const H: usize, const LAYERS: usize = 1, const SEQ: bool = true> =
    Recurrent<GruCell, T, F, H, LAYERS, 1, H, SEQ>;
/// A bidirectional recurrent layer (PyTorch's `bidirectional=True`): `[T, F] -> [T, OUT]`
/// with `OUT = 2 H` for [`Merge::Concat`] and `H` for the other merge modes.
pub type Bidirectional<
    C,
    const T: usize,
    const F: usize,
    const H: usize,
    const OUT: usize,
    const LAYERS: usize = 1,
    const SEQ: bool = true,
> = Recurrent<C, T, F, H, LAYERS, 2, OUT, SEQ>;

impl<
        C: Cell,
        const T: usize,
        const F: usize,
        const H: usize,
        const LAYERS: usize,
        const DIRS: usize,
        const OUT: usize,
        const SEQ: bool,
    > Recurrent<C, T, F, H, LAYERS, DIRS, OUT, SEQ>
{
    /// Floats per sample of an initial or final state (`h` or `c`): `LAYERS DIRS H`.
    pub const STATE_LEN: usize = LAYERS * DIRS * H;

    /// The layer with `cell`, full backpropagation through time, and the merge mode
    /// its output width implies (concatenation for `2 H`, sum for `H`).
    pub const fn new(cell: C) -> Self {
        assert!(T > 0 && F > 0 && H > 0 && LAYERS > 0, "recurrent layer: empty dimension");
        assert!(DIRS == 1 || DIRS == 2, "recurrent layer: DIRS must be 1 or 2");
        let merge = if DIRS == 2 && OUT == 2 * H { Merge::Concat } else { Merge::Sum };
        let layer = Recurrent { cell, merge, truncate: 0 };
        layer.check();
        layer
    }

    /// The same layer combining two directions by `merge`. Evaluated in a `const`, a
    /// merge mode that disagrees with `OUT` is a compile error.
    pub const fn with_merge(mut self, merge: Merge) -> Self {
        self.merge = merge;
        self.check();
        self
    }

    /// The same layer with backpropagation through time truncated to chunks of
    /// `steps` steps (0: the whole sequence).
    pub const fn with_truncate(mut self, steps: usize) -> Self {
        self.truncate = steps;
        self
    }

    const fn check(&self) {
        let width = if DIRS == 1 { H } else { self.merge.width(H) };
        assert!(OUT == width, "recurrent layer: OUT must be H, or 2 H for two concatenated directions");
    }

    /// The runtime description the kernels take.
    pub fn config(&self) -> Config {
        self.check();
        Config {
            cell: self.cell.kind(),
            steps: T,
            features: F,
            hidden: H,
            layers: LAYERS,
            directions: DIRS,
            merge: self.merge,
            return_sequences: SEQ,
            truncate: self.truncate,
        }
    }

    /// Inference from a given initial state. `initial.h` (and `initial.c` for LSTM)
    /// hold `batch * STATE_LEN` floats, `[batch, LAYERS * DIRS, H]`; `None` means
    /// zeros. When given, `final_state` receives `h_n` (and `c_n`) in the same layout.
    /// With `None` and `None` this is [`Layer::forward`].
    pub fn forward_with_state(
        &self,
        w: Weights<'_>,
        x: &[f32],
        initial: Option<States<'_>>,
        y: &mut [f32],
        final_state: Option<StatesMut<'_>>,
        scratch: &mut [f32],
    ) {
        kernel::forward(&self.config(), w.params, x, initial, y, final_state, scratch)
    }

    /// Training forward from a given initial state (see [`Self::forward_with_state`]);
    /// the initial state is kept in `cx.cache` for [`Self::backward_with_state`]. With
    /// `None` and `None` this is [`Layer::forward_train`].
    pub fn forward_train_with_state(
        &self,
        x: &[f32],
        initial: Option<States<'_>>,
        y: &mut [f32],
        cx: TrainCtx<'_>,
        final_state: Option<StatesMut<'_>>,
    ) {
        let TrainCtx { params, cache, scratch, .. } = cx;
        kernel::forward_train(&self.config(), params, x, initial, y, cache, scratch, final_state)
    }

    /// Backward of [`Self::forward_train_with_state`]: as [`Layer::backward`] (parameter
    /// gradients are added to `cx.grads`), and when `d_initial` is given it receives
    /// `dL/dh_0` (and `dL/dc_0`), `[batch, LAYERS * DIRS, H]`, overwritten.
    pub fn backward_with_state(
        &self,
        x: &[f32],
        dy: &[f32],
        dx: Option<&mut [f32]>,
        cx: BackwardCtx<'_>,
        d_initial: Option<StatesMut<'_>>,
    ) {
        self.backward_with_states(x, dy, dx, cx, d_initial, None)
    }

    /// [`Self::backward_with_state`] when the final state is used too (Keras's
    /// `return_state=True`, PyTorch's `h_n`, `c_n`; `(y, h, c) = lstm(x)` in a
    /// `network!` graph): `d_final` holds `dL/dh_n` (and `dL/dc_n` for an LSTM),
    /// `[batch, LAYERS * DIRS, H]` as the `final_state` of
    /// [`Self::forward_train_with_state`], which backpropagation through time starts
    /// from besides `dy`. With `None` this is [`Self::backward_with_state`].
    pub fn backward_with_states(
        &self,
        x: &[f32],
        dy: &[f32],
        dx: Option<&mut [f32]>,
        cx: BackwardCtx<'_>,
        d_initial: Option<StatesMut<'_>>,
        d_final: Option<States<'_>>,
    ) {
        let BackwardCtx { params, cache, grads, scratch, .. } = cx;
        kernel::backward(&self.config(), params, x, cache, dy, dx, grads, scratch, d_initial, d_final)
    }

    /// Copies a state in PyTorch's layout `[LAYERS * DIRS, batch, H]` (its `h_0`,
    /// `c_0`, `h_n`, `c_n` or their gradients) into `state`, this layer's layout
    /// `[batch, LAYERS * DIRS, H]`; returns the batch size. Layer `l`, direction `d`
    /// is row `l * DIRS + d` in both. [`state_from_pytorch`] does the same given the
    /// sizes, for a network's state input.
    ///
    /// ```
    /// use nn_core::layers::{Lstm, LstmCell};
    /// type L = Lstm<5, 3, 2, 2>; // 2 layers of 2 units
    /// // PyTorch's h0 for a batch of 3: [2 layers, 3 samples, 2 units].
    /// let torch: Vec<f32> = (0..12).map(|v| v as f32).collect();
    /// let mut h0 = [0.0; 12];
    /// assert_eq!(L::state_from_pytorch(&torch, &mut h0), Ok(3));
    /// assert_eq!(h0[..4], [0.0, 1.0, 6.0, 7.0]); // sample 0: layer 0, then layer 1
    /// assert!(L::state_from_pytorch(&torch[..5], &mut h0[..5]).is_err());
    /// ```
    pub fn state_from_pytorch(torch: &[f32], state: &mut [f32]) -> Result<usize, StateShapeError> {
        state_from_pytorch(LAYERS * DIRS, H, torch, state)
    }

    /// Copies `state`, this layer's layout `[batch, LAYERS * DIRS, H]` (a final state
    /// or the gradient of an initial one), into `torch`, PyTorch's layout
    /// `[LAYERS * DIRS, batch, H]`; returns the batch size. The inverse of
    /// [`Self::state_from_pytorch`].
    pub fn state_to_pytorch(state: &[f32], torch: &mut [f32]) -> Result<usize, StateShapeError> {
        state_to_pytorch(LAYERS * DIRS, H, state, torch)
    }

    /// PyTorch's initialisation: every weight and bias uniform in `[-1/sqrt(H), 1/sqrt(H)]`.
    fn init_params(&self, params: &mut [f32], rng: &mut Rng) {
        let k = 1.0 / libm::sqrtf(H as f32);
        params[..Self::PARAM_COUNT].iter_mut().for_each(|v| *v = rng.uniform_in(-k, k));
    }

    const PARAM_COUNT: usize = kernel::params_len(C::GATES, F, H, LAYERS, DIRS);
}

/// The two `Layer` impls differ only in the output shape.
macro_rules! recurrent_layer {
    ($seq:literal, $output:ty) => {
        impl<
                C: Cell,
                const T: usize,
                const F: usize,
                const H: usize,
                const LAYERS: usize,
                const DIRS: usize,
                const OUT: usize,
            > Layer for Recurrent<C, T, F, H, LAYERS, DIRS, OUT, $seq>
        {
            type Input = Shape2<T, F>;
            type Output = $output;
            const PARAMS: usize = kernel::params_len(C::GATES, F, H, LAYERS, DIRS);
            const CACHE: usize = kernel::cache_len(C::GATES, T, H, LAYERS, DIRS);
            const SCRATCH: usize = kernel::scratch_len(C::GATES, T, H, DIRS);
            const KIND: &'static str = C::NAME;
            const TENSORS: &'static crate::weights::TensorTree = &crate::weights::TensorTree::Recurrent {
                gate_width: C::GATES * H,
                features: F,
                hidden: H,
                layers: LAYERS,
                directions: DIRS,
            };

            fn init(&self, params: &mut [f32], _buffers: &mut [f32], rng: &mut Rng) {
                self.init_params(params, rng)
            }

            #[inline]
            fn forward(&self, w: Weights<'_>, x: &[f32], y: &mut [f32], scratch: &mut [f32]) {
                self.forward_with_state(w, x, None, y, None, scratch)
            }

            #[inline]
            fn forward_train(&self, x: &[f32], y: &mut [f32], cx: TrainCtx<'_>) {
                self.forward_train_with_state(x, None, y, cx, None)
            }

            #[inline]
            fn backward(&self, x: &[f32], _y: &[f32], dy: &mut [f32], dx: Option<&mut [f32]>, cx: BackwardCtx<'_>) {
                self.backward_with_state(x, dy, dx, cx, None)
            }
        }
    };
}

recurrent_layer!(true, Shape2<T, OUT>);
recurrent_layer!(false, Shape1<OUT>);
