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

    /// Readies `state` for steps over `params` and `buffers`, once, when a stream starts:
    /// a layer whose step reads its weights faster in another order than `state_dict`'s
    /// keeps a copy in that order in its state (the first layer of a recurrent stack on
    /// x86-64, see [`RecurrentState`]). After it, [`Step::step`] must be given the same
    /// parameters: it may read the copy instead. The default does nothing.
    fn bind(&self, params: &[f32], buffers: &[f32], state: &mut Self::State) {
        let _ = (params, buffers, state);
    }

    /// Starts a new sequence: the state of [`Step::initial_state`], keeping what
    /// [`Step::bind`] prepared. The default replaces the state by `initial_state()`.
    fn reset(&self, state: &mut Self::State) {
        *state = self.initial_state();
    }

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
    /// A stream of `layer` over its parameters and buffers, starting from zero state
    /// (with the weights the step reads in another order copied into it, [`Step::bind`]).
    pub fn new(layer: L, params: &'m [f32], buffers: &'m [f32]) -> Self {
        let mut state = layer.initial_state();
        layer.bind(params, buffers, &mut state);
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
        self.layer.reset(&mut self.state);
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

/// The state of a streaming recurrent stack of `F` inputs, `H` units and `LAYERS`
/// layers: hidden and cell states per layer, the gate projections of the current step,
/// and on x86-64 the first layer's weights in step order.
///
/// On x86-64 with AVX2, when `F` and `H` are multiples of 8, [`Stream::new`]
/// ([`Step::bind`]) copies the first layer's `weight_ih` and `weight_hh` into the state in
/// the order the step's kernels read them (`kernels::recurrent::to_step_order`: panels
/// of 16 rows, column after column): sixteen rows lie across the lanes of a register
/// with AVX-512 (eight with AVX2, which reads panels for projections of up to 16
/// inputs, and from more inputs the rows, copied unchanged so that they start on a
/// cache line whatever the alignment of `params`), and each row's sum is the same fixed
/// tree of eight lanes as over the rows of `params`, added as whole vectors, with the
/// same bits. The copy takes room for
/// four gates, `4 H (F + H)` floats; other targets (NEON, microcontrollers) read the
/// rows of `params` and hold no copy. The parameters on disk and in the model keep
/// PyTorch's layout.
#[derive(Clone, Copy, PartialEq)]
pub struct RecurrentState<const F: usize, const H: usize, const LAYERS: usize> {
    /// Hidden state of each layer (`h`).
    pub h: [[f32; H]; LAYERS],
    /// Cell state of each layer (`c`, LSTM only).
    pub c: [[f32; H]; LAYERS],
    p: [[f32; H]; 4],
    q: [[f32; H]; 4],
    /// Whether the next step reads the weight rows last to first (alternating; a stack
    /// whose rows all stay in L1 reads them in one order and ignores it).
    reverse: bool,
    #[cfg(target_arch = "x86_64")]
    panels: Panels<F, H>,
}

/// The first layer's weights in step order, for [`RecurrentState`]: aligned to a cache
/// line, so that no panel load (16 floats with AVX-512) spans two (unaligned, an LSTM
/// 16->16 step took 103 ns or 91 ns from one process to the next, as the stack fell).
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, PartialEq)]
#[repr(C, align(64))]
struct Panels<const F: usize, const H: usize> {
    /// `weight_ih` (`G H F` floats of `4 H F`).
    ih: [[[f32; H]; 4]; F],
    /// `weight_hh` (`G H H` floats of `4 H H`).
    hh: [[[f32; H]; 4]; H],
    /// Whether `ih` and `hh` hold the weights ([`Step::bind`] ran, and the kernels read them).
    bound: bool,
}

impl<const F: usize, const H: usize, const LAYERS: usize> core::fmt::Debug for RecurrentState<F, H, LAYERS> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        #[cfg(target_arch = "x86_64")]
        let panels = self.panels.bound;
        #[cfg(not(target_arch = "x86_64"))]
        let panels = false;
        f.debug_struct("RecurrentState")
            .field("h", &self.h)
            .field("c", &self.c)
            .field("weights_in_step_order", &panels)
            .finish_non_exhaustive()
    }
}

impl<const F: usize, const H: usize, const LAYERS: usize> RecurrentState<F, H, LAYERS> {
    /// All zeros, no weights in step order.
    pub const ZERO: Self = RecurrentState {
        h: [[0.0; H]; LAYERS],
        c: [[0.0; H]; LAYERS],
        p: [[0.0; H]; 4],
        q: [[0.0; H]; 4],
        reverse: false,
        #[cfg(target_arch = "x86_64")]
        panels: Panels { ih: [[[0.0; H]; 4]; F], hh: [[[0.0; H]; 4]; H], bound: false },
    };

    /// Zero states, keeping the weights in step order.
    fn clear(&mut self) {
        self.h = [[0.0; H]; LAYERS];
        self.c = [[0.0; H]; LAYERS];
        self.reverse = false;
    }
}

#[cfg(target_arch = "x86_64")]
impl<const F: usize, const H: usize> Panels<F, H> {
    /// The weights, when bound.
    #[inline(always)]
    fn view(&self) -> Option<recurrent::StepPanels<'_>> {
        self.bound.then_some(recurrent::StepPanels {
            ih: self.ih.as_flattened().as_flattened(),
            hh: self.hh.as_flattened().as_flattened(),
        })
    }
}

impl<C: Cell, const T: usize, const F: usize, const H: usize, const LAYERS: usize> Step
    for Recurrent<C, T, F, H, LAYERS, 1, H, true>
{
    type StepInput = Shape1<F>;
    type StepOutput = Shape1<H>;
    type State = RecurrentState<F, H, LAYERS>;

    fn initial_state(&self) -> Self::State {
        RecurrentState::ZERO
    }

    /// On x86-64 with AVX2 and `F`, `H` multiples of 8: copies the first layer's weights
    /// into `state` in step order (see [`RecurrentState`]).
    fn bind(&self, params: &[f32], _buffers: &[f32], state: &mut Self::State) {
        #[cfg(target_arch = "x86_64")]
        if F.is_multiple_of(8) && H.is_multiple_of(8) && crate::kernels::isa::isa().avx2() {
            let cfg = self.config();
            let gh = cfg.gate_width();
            let (ih, rest) = params[..cfg.direction_params(0)].split_at(gh * F);
            let hh = &rest[..gh * H];
            let p = &mut state.panels;
            recurrent::to_step_order(ih, gh, F, H, p.ih.as_flattened_mut().as_flattened_mut());
            recurrent::to_step_order(hh, gh, H, H, p.hh.as_flattened_mut().as_flattened_mut());
            p.bound = true;
        }
        let _ = (params, state);
    }

    fn reset(&self, state: &mut Self::State) {
        state.clear();
    }

    #[inline]
    fn step(&self, params: &[f32], _buffers: &[f32], state: &mut Self::State, x: &[f32], y: &mut [f32]) {
        let s = state;
        #[cfg(target_arch = "x86_64")]
        let panels = s.panels.view();
        #[cfg(not(target_arch = "x86_64"))]
        let panels = None;
        recurrent::step::<F, H>(
            &self.config(),
            params,
            panels,
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

    fn bind(&self, params: &[f32], buffers: &[f32], state: &mut Self::State) {
        self.layer.bind(params, buffers, state)
    }

    fn reset(&self, state: &mut Self::State) {
        self.layer.reset(state)
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

    fn bind(&self, params: &[f32], buffers: &[f32], state: &mut Self::State) {
        let (pa, pb) = params.split_at(A::PARAMS);
        let (ba, bb) = buffers.split_at(A::BUFFERS);
        self.first.bind(pa, ba, &mut state.0);
        self.rest.bind(pb, bb, &mut state.2);
    }

    fn reset(&self, state: &mut Self::State) {
        self.first.reset(&mut state.0);
        state.1 = Tensor::zeros();
        self.rest.reset(&mut state.2);
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

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use crate::activation::Activation;
    use crate::layer::Weights;
    use crate::layers::{Gru, GruCell, Lstm, LstmCell, RnnCell, SimpleRnn};
    use crate::rng::Rng;

    /// Streams `x` (`T` steps) and asserts every step equals whole-sequence inference
    /// bit for bit, twice (after a reset).
    fn equals_forward<L: Step<StepInput = Shape1<F>> + Copy, const F: usize>(name: &str, layer: L, seed: u64) {
        let mut rng = Rng::new(seed);
        let mut params = vec![0.0; L::PARAMS];
        layer.init(&mut params, &mut [], &mut rng);
        let x: Vec<f32> = (0..<L::Input as Shape>::LEN).map(|_| rng.uniform_in(-2.0, 2.0)).collect();
        let mut whole = vec![0.0; <L::Output as Shape>::LEN];
        layer.forward(Weights::new(&params, &[]), &x, &mut whole, &mut vec![0.0; L::SCRATCH]);
        let out = <L::StepOutput as Shape>::LEN;
        let mut stream = Stream::new(layer, &params, &[]);
        let mut y = vec![0.0; out];
        for _ in 0..2 {
            for (t, xt) in x.chunks_exact(F).enumerate() {
                stream.step_slice(xt, &mut y);
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&y), bits(&whole[t * out..][..out]), "{name}: step {t}");
            }
            stream.reset();
        }
    }

    /// The stacks whose first layer the x86-64 step reads in step order (widths
    /// multiples of 8) equal whole-sequence inference bit for bit, in every cell,
    /// through a reset, with stacked layers above reading rows; from 32 units the
    /// first layer's projections and cell of an LSTM or RNN run 16 units at a time.
    #[test]
    fn steps_over_weights_in_step_order_equal_whole_sequences() {
        equals_forward("gru 8 -> 8", Gru::<5, 8, 8>::new(GruCell), 1);
        equals_forward("gru 8 -> 64", Gru::<5, 8, 64>::new(GruCell), 2);
        equals_forward("lstm 16 -> 16", Lstm::<5, 16, 16>::new(LstmCell), 3);
        equals_forward("lstm 8 -> 64", Lstm::<5, 8, 64>::new(LstmCell), 4);
        equals_forward("lstm 24 -> 8, 2 layers", Lstm::<5, 24, 8, 2>::new(LstmCell), 5);
        equals_forward("rnn 8 -> 16", SimpleRnn::<5, 8, 16>::new(RnnCell::new(Activation::Tanh)), 6);
        equals_forward("rnn 16 -> 8", SimpleRnn::<5, 16, 8>::new(RnnCell::new(Activation::Relu)), 7);
        equals_forward("rnn 8 -> 32", SimpleRnn::<5, 8, 32>::new(RnnCell::new(Activation::Tanh)), 8);
        equals_forward("rnn 24 -> 48", SimpleRnn::<5, 24, 48>::new(RnnCell::new(Activation::Relu)), 9);
        equals_forward("gru 16 -> 32, 2 layers", Gru::<5, 16, 32, 2>::new(GruCell), 10);
        equals_forward("lstm 16 -> 32, 2 layers", Lstm::<5, 16, 32, 2>::new(LstmCell), 12);
        equals_forward("lstm 24 -> 48", Lstm::<5, 24, 48>::new(LstmCell), 11);
        equals_forward("gru 16 -> 16", Gru::<5, 16, 16>::new(GruCell), 13);
        equals_forward("gru 8 -> 16", Gru::<5, 8, 16>::new(GruCell), 14);
        equals_forward("gru 16 -> 8", Gru::<5, 16, 8>::new(GruCell), 15);
        equals_forward("gru 24 -> 48", Gru::<5, 24, 48>::new(GruCell), 16);
        equals_forward("gru 8 -> 8, 2 layers", Gru::<5, 8, 8, 2>::new(GruCell), 17);
    }

    /// The weights in step order start on a cache line, on the stack and on the heap,
    /// whatever the alignment of the parameters they are copied from.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_weights_in_step_order_start_on_a_cache_line() {
        fn check<L: Step<State = RecurrentState<F, H, 1>> + Copy, const F: usize, const H: usize>(layer: L) {
            let mut params = vec![0.0; L::PARAMS + 4];
            layer.init(&mut params[..L::PARAMS], &mut [], &mut Rng::new(3));
            for skip in 0..4 {
                let p = &params[skip..skip + L::PARAMS];
                let stream = Stream::new(layer, p, &[]);
                let boxed = std::boxed::Box::new(Stream::new(layer, p, &[]));
                for state in [stream.state(), boxed.state()] {
                    assert_eq!(state.panels.ih.as_ptr() as usize % 64, 0);
                    assert_eq!(state.panels.hh.as_ptr() as usize % 64, 0);
                }
            }
        }
        check(Gru::<1, 8, 64>::new(GruCell));
        check(Lstm::<1, 8, 64>::new(LstmCell));
        check(Lstm::<1, 16, 16>::new(LstmCell));
    }

    #[test]
    fn the_state_reports_whether_it_holds_weights_in_step_order() {
        let layer = Gru::<2, 8, 8>::new(GruCell);
        let params = vec![0.1; <Gru<2, 8, 8> as Layer>::PARAMS];
        let stream = Stream::new(layer, &params, &[]);
        let bound = cfg!(target_arch = "x86_64") && crate::kernels::isa::isa().avx2();
        assert!(format!("{:?}", stream.state()).contains(&format!("weights_in_step_order: {bound}")));
    }
}
