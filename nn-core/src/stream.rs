//! Streaming inference: one time step in, one time step out.
//!
//! A sequence model `[T, F] -> [T, U]` (recurrent layers returning sequences, one
//! direction, followed by per-step layers) can run step by step: a [`Stream`] keeps the
//! recurrent state between calls, in fixed-size arrays sized by const generics, so a
//! step allocates nothing and needs neither `std` nor `alloc` (firmware reading a
//! sensor). [`Stream::reset`] starts a new sequence.
//!
//! Feeding the `T` steps of a sequence one by one gives exactly, bit for bit, the
//! output of the whole-sequence inference `forward`: both run the same operations in
//! the same order (fixed-order dot products, the same cell arithmetic). A stream can
//! also run past `T` steps; `T` only fixes the whole-sequence shape.
//!
//! Layers that can stream implement [`Step`]: the unidirectional [`Recurrent`] layers
//! with `return_sequences` ([`crate::layers::SimpleRnn`], [`crate::layers::Lstm`],
//! [`crate::layers::Gru`]), [`SequenceDense`], [`Embedding`], activations and dropout
//! on sequences, and their compositions. A bidirectional layer cannot stream: its
//! backward direction reads the future.
//!
//! ```
//! use nn_core::layers::{Gru, GruCell};
//! use nn_core::stream::Stream;
//! use nn_core::{Layer, Rng};
//!
//! type Net = Gru<4, 2, 3>;
//! let gru = Net::new(GruCell);
//! let mut params = vec![0.0; Net::PARAMS];
//! gru.init(&mut params, &mut [], &mut Rng::new(5));
//!
//! let x = [0.1, -0.2, 0.3, 0.4, -0.5, 0.6, 0.7, 0.8];
//! let mut whole = [0.0f32; 4 * 3];
//! gru.forward(nn_core::Weights::new(&params, &[]), &x, &mut whole, &mut vec![0.0; Net::SCRATCH]);
//!
//! let mut stream = Stream::new(gru, &params, &[]);
//! for t in 0..4 {
//!     let y = stream.step(&[x[2 * t], x[2 * t + 1]].into());
//!     assert_eq!(&y[..], &whole[3 * t..3 * t + 3]); // bit for bit
//! }
//! stream.reset(); // a new sequence
//! ```
use crate::kernels::recurrent;
use crate::layer::private::{Chain, Named};
use crate::layer::Layer;
use crate::layers::{Act, Cell, Dropout, Embedding, Recurrent, SequenceDense};
use crate::shape::{Shape, Shape1, Shape2, Tensor};

/// A layer that can run one time step at a time.
pub trait Step: Layer {
    /// One step of the input (`[F]` for an input `[T, F]`).
    type StepInput: Shape;
    /// One step of the output.
    type StepOutput: Shape;
    /// What is carried from one step to the next, and the step's working space:
    /// fixed-size arrays.
    type State: Clone;

    /// The state before the first step (zeros).
    fn initial_state(&self) -> Self::State;

    /// One step: `x` holds `StepInput::LEN` floats, `y` receives `StepOutput::LEN`.
    fn step(&self, params: &[f32], buffers: &[f32], state: &mut Self::State, x: &[f32], y: &mut [f32]);
}

/// A layer (usually a network) running step by step over borrowed parameters.
pub struct Stream<'m, L: Step> {
    layer: L,
    params: &'m [f32],
    buffers: &'m [f32],
    state: L::State,
}

impl<'m, L: Step> Stream<'m, L> {
    /// A stream of `layer` over its parameters and buffers, starting from zero state.
    pub fn new(layer: L, params: &'m [f32], buffers: &'m [f32]) -> Self {
        let state = layer.initial_state();
        Stream { layer, params, buffers, state }
    }

    /// Feeds one step and returns its output.
    pub fn step(&mut self, x: &Tensor<L::StepInput>) -> Tensor<L::StepOutput> {
        let mut y = Tensor::zeros();
        self.layer.step(self.params, self.buffers, &mut self.state, x, &mut y);
        y
    }

    /// Feeds one step from a slice of `StepInput::LEN` floats into `y`.
    pub fn step_slice(&mut self, x: &[f32], y: &mut [f32]) {
        assert!(
            x.len() == <L::StepInput as Shape>::LEN && y.len() >= <L::StepOutput as Shape>::LEN,
            "stream step: expected {} inputs and room for {} outputs",
            <L::StepInput as Shape>::LEN,
            <L::StepOutput as Shape>::LEN
        );
        self.layer.step(self.params, self.buffers, &mut self.state, x, y);
    }

    /// Forgets the state: the next step starts a new sequence.
    pub fn reset(&mut self) {
        self.state = self.layer.initial_state();
    }

    /// The current state.
    pub fn state(&self) -> &L::State {
        &self.state
    }

    /// The current state, mutable: to start from a given initial state.
    pub fn state_mut(&mut self) -> &mut L::State {
        &mut self.state
    }
}

/// The state of a streaming recurrent stack: hidden and cell states per layer, and the
/// gate projections of the current step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RecurrentState<const H: usize, const LAYERS: usize> {
    /// Hidden state of each layer (`h`).
    pub h: [[f32; H]; LAYERS],
    /// Cell state of each layer (`c`, LSTM only).
    pub c: [[f32; H]; LAYERS],
    p: [[f32; H]; 4],
    q: [[f32; H]; 4],
    /// Whether the next step reads the weight rows last to first (alternating; a stack
    /// whose rows all stay in L1 reads them in one order and ignores it).
    reverse: bool,
}

impl<const H: usize, const LAYERS: usize> RecurrentState<H, LAYERS> {
    /// All zeros.
    pub const ZERO: Self = RecurrentState {
        h: [[0.0; H]; LAYERS],
        c: [[0.0; H]; LAYERS],
        p: [[0.0; H]; 4],
        q: [[0.0; H]; 4],
        reverse: false,
    };
}

impl<C: Cell, const T: usize, const F: usize, const H: usize, const LAYERS: usize> Step
    for Recurrent<C, T, F, H, LAYERS, 1, H, true>
{
    type StepInput = Shape1<F>;
    type StepOutput = Shape1<H>;
    type State = RecurrentState<H, LAYERS>;

    fn initial_state(&self) -> Self::State {
        RecurrentState::ZERO
    }

    #[inline]
    fn step(&self, params: &[f32], _buffers: &[f32], state: &mut Self::State, x: &[f32], y: &mut [f32]) {
        let s = state;
        recurrent::step::<F, H>(
            &self.config(),
            params,
            &x[..F],
            s.h.as_flattened_mut(),
            s.c.as_flattened_mut(),
            s.p.as_flattened_mut(),
            s.q.as_flattened_mut(),
            s.reverse,
        );
        s.reverse = !s.reverse;
        y[..H].copy_from_slice(&s.h[LAYERS - 1]);
    }
}

impl<const T: usize, const F: usize, const U: usize, const BIAS: bool> Step for SequenceDense<T, F, U, BIAS> {
    type StepInput = Shape1<F>;
    type StepOutput = Shape1<U>;
    type State = ();

    fn initial_state(&self) {}

    #[inline]
    fn step(&self, params: &[f32], _buffers: &[f32], _state: &mut (), x: &[f32], y: &mut [f32]) {
        SequenceDense::step(self, params, &x[..F], y);
    }
}

impl<const T: usize, const V: usize, const D: usize> Step for Embedding<T, V, D> {
    type StepInput = Shape1<1>;
    type StepOutput = Shape1<D>;
    type State = ();

    fn initial_state(&self) {}

    #[inline]
    fn step(&self, params: &[f32], buffers: &[f32], _state: &mut (), x: &[f32], y: &mut [f32]) {
        let mut scratch = [];
        Embedding::<1, V, D>::new().forward(
            crate::layer::Weights::new(params, buffers),
            &x[..1],
            &mut y[..D],
            &mut scratch,
        );
    }
}

impl<const T: usize, const F: usize> Step for Act<Shape2<T, F>> {
    type StepInput = Shape1<F>;
    type StepOutput = Shape1<F>;
    type State = ();

    fn initial_state(&self) {}

    #[inline]
    fn step(&self, _params: &[f32], _buffers: &[f32], _state: &mut (), x: &[f32], y: &mut [f32]) {
        let y = &mut y[..F];
        y.copy_from_slice(&x[..F]);
        // Softmax over the features of the step, as over the last dimension of [T, F].
        self.activation.apply(y, F);
    }
}

impl<const T: usize, const F: usize> Step for Dropout<Shape2<T, F>> {
    type StepInput = Shape1<F>;
    type StepOutput = Shape1<F>;
    type State = ();

    fn initial_state(&self) {}

    /// Inference: the identity.
    #[inline]
    fn step(&self, _params: &[f32], _buffers: &[f32], _state: &mut (), x: &[f32], y: &mut [f32]) {
        y[..F].copy_from_slice(&x[..F]);
    }
}

impl<L: Step> Step for Named<L> {
    type StepInput = L::StepInput;
    type StepOutput = L::StepOutput;
    type State = L::State;

    fn initial_state(&self) -> Self::State {
        self.layer.initial_state()
    }

    #[inline]
    fn step(&self, params: &[f32], buffers: &[f32], state: &mut Self::State, x: &[f32], y: &mut [f32]) {
        self.layer.step(params, buffers, state, x, y)
    }
}

impl<A: Step, B: Step<Input = A::Output, StepInput = A::StepOutput>> Step for Chain<A, B> {
    type StepInput = A::StepInput;
    type StepOutput = B::StepOutput;
    /// The first layer's state, the step between the layers, the second layer's state.
    type State = (A::State, Tensor<A::StepOutput>, B::State);

    fn initial_state(&self) -> Self::State {
        (self.first.initial_state(), Tensor::zeros(), self.rest.initial_state())
    }

    #[inline]
    fn step(&self, params: &[f32], buffers: &[f32], state: &mut Self::State, x: &[f32], y: &mut [f32]) {
        let (pa, pb) = params.split_at(A::PARAMS);
        let (ba, bb) = buffers.split_at(A::BUFFERS);
        let (sa, mid, sb) = state;
        self.first.step(pa, ba, sa, x, mid);
        self.rest.step(pb, bb, sb, mid, y);
    }
}
