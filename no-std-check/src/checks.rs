//! The work of the firmware checks, shared (through `#[path]`) by `no-std-check` (the
//! host, without `std`), the microcontroller firmware of `firmware/` and
//! `tests/firmware_digest.rs` (the host with `std` and its AVX2 kernels): the digits
//! classifiers of `nets.rs` on the images of `samples.rs` with their weights baked in
//! by the including crate (`include_weights!` of `weights/*.safetensors`), a
//! GRU and an LSTM streamed step by step against whole-sequence inference, and the MLP
//! trained on the images as one batch in stack arrays.
//!
//! Every output is folded, bit for bit, into a digest per part ([`Digest`]); the parts'
//! digests on every target must equal [`EXPECTED`], those of the host build.
use nn_core::prelude::*;

use crate::nets::{argmax, DigitsCnn, DigitsMlp, Sine};
use crate::samples::SAMPLES;

/// FNV-1a (64 bits) over the bits of a sequence of floats, four little-endian bytes
/// each: equal digests mean equal outputs, bit for bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Digest(pub u64);

impl Digest {
    /// The digest of nothing.
    pub const EMPTY: Digest = Digest(0xcbf2_9ce4_8422_2325);

    /// The digest extended by `values`.
    pub fn add(self, values: &[f32]) -> Digest {
        let mut h = self.0;
        for v in values {
            for byte in v.to_bits().to_le_bytes() {
                h = (h ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
            }
        }
        Digest(h)
    }
}

/// A part of the checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The MLP's logits of every image.
    Mlp,
    /// The CNN's logits of every image.
    Cnn,
    /// The GRU tagger's outputs, whole sequence.
    Gru,
    /// The LSTM tagger's outputs, whole sequence.
    Lstm,
    /// The training losses of every step and the trained parameters.
    Training,
    /// The sine model's outputs at [`SINE_POINTS`] points.
    Sine,
}

impl Part {
    /// Every part, in the order they run.
    pub const ALL: [Part; 6] = [Part::Mlp, Part::Cnn, Part::Gru, Part::Lstm, Part::Training, Part::Sine];

    /// The part's name in reports.
    pub const fn name(self) -> &'static str {
        match self {
            Part::Mlp => "mlp",
            Part::Cnn => "cnn",
            Part::Gru => "gru",
            Part::Lstm => "lstm",
            Part::Training => "training",
            Part::Sine => "sine",
        }
    }
}

/// The digests of the host build (x86-64 with the AVX2 kernels), in the order of
/// [`Part::ALL`]. Every target must reproduce them.
pub const EXPECTED: [Digest; 6] = [
    Digest(0x52eb_bb7b_22dd_87d3),
    Digest(0x0ae0_70b5_f3f2_aff1),
    Digest(0x6ae7_f2f1_92f8_d750),
    Digest(0x1b0b_f456_66ea_f1e6),
    Digest(0x9189_4327_aefc_18f3),
    Digest(0x0711_0cca_0e38_5be4),
];

/// The unit of work a [`Probe`] is told about: one inference or one step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Work {
    /// One batch-1 inference of the MLP.
    MlpInference,
    /// One batch-1 inference of the CNN.
    CnnInference,
    /// One streaming step of the GRU tagger.
    GruStep,
    /// One streaming step of the LSTM tagger.
    LstmStep,
    /// One training step of the MLP (batch of 16: forward, loss, backward, Adam).
    TrainingStep,
    /// One inference of the sine model.
    SineInference,
}

/// Measures units of work: `begin` just before one, `end` just after. The firmware
/// counts instructions and stack here; the host checks do nothing.
pub trait Probe {
    /// A unit of `work` starts.
    fn begin(&mut self, work: Work);
    /// The unit of `work` begun last has ended.
    fn end(&mut self, work: Work);
}

/// A [`Probe`] that measures nothing.
pub struct NoProbe;

impl Probe for NoProbe {
    fn begin(&mut self, _: Work) {}
    fn end(&mut self, _: Work) {}
}

/// `model.predict_one(x)` in a frame of its own, with its own copy of the input, so
/// that a [`Probe`] that measures the stack below its caller's frame sees all that
/// `PEAK_ACTIVATION_BYTES` counts (inlined, its arrays would be in the caller's frame).
#[inline(never)]
fn infer<N: Network>(model: &Model<N, &[f32]>, x: &Tensor<N::Input>) -> Tensor<N::Output> {
    let x = core::hint::black_box(*x);
    model.predict_one(&x)
}

/// What one part of the checks gave.
#[derive(Clone, Copy, Debug)]
pub struct Outcome {
    /// The part.
    pub part: Part,
    /// Whether its own check held (labels, streaming equality, falling loss).
    pub ok: bool,
    /// The digest of its outputs.
    pub digest: Digest,
}

impl Outcome {
    /// Whether the check held and the digest is the host's.
    pub fn passed(&self) -> bool {
        let expected = Part::ALL.iter().position(|&p| p == self.part).map(|i| EXPECTED[i]);
        self.ok && expected == Some(self.digest)
    }
}

/// The MLP with `weights` on every image: whether each is labelled right, and the
/// digest of the logits.
pub fn mlp(weights: &'static [f32; DigitsMlp::STATE_LEN], probe: &mut dyn Probe) -> Outcome {
    let model = Model::from_static(DigitsMlp, weights);
    let (mut ok, mut digest) = (true, Digest::EMPTY);
    for (pixels, label) in &SAMPLES {
        let x = (*pixels).into();
        probe.begin(Work::MlpInference);
        let y = infer(&model, &x);
        probe.end(Work::MlpInference);
        ok &= argmax(&y) == *label;
        digest = digest.add(&y);
    }
    Outcome { part: Part::Mlp, ok, digest }
}

/// The CNN with `weights` on every image, as [`mlp`].
pub fn cnn(weights: &'static [f32; DigitsCnn::STATE_LEN], probe: &mut dyn Probe) -> Outcome {
    let model = Model::from_static(DigitsCnn, weights);
    let (mut ok, mut digest) = (true, Digest::EMPTY);
    for (pixels, label) in &SAMPLES {
        let Some(x) = Tensor::from_slice(pixels) else { return Outcome { part: Part::Cnn, ok: false, digest } };
        probe.begin(Work::CnnInference);
        let y = infer(&model, &x);
        probe.end(Work::CnnInference);
        ok &= argmax(&y) == *label;
        digest = digest.add(&y);
    }
    Outcome { part: Part::Cnn, ok, digest }
}

network! {
    /// A GRU sequence model, streamable.
    pub struct GruTagger: [6, 3] -> [6, 2] {
        gru: Gru { units: 5, return_sequences: true },
        out: SequenceDense { units: 2, activation: Tanh },
    }

    /// An LSTM sequence model, streamable.
    pub struct LstmTagger: [6, 3] -> [6, 2] {
        lstm: Lstm { units: 4, return_sequences: true },
        out: SequenceDense { units: 2 },
    }
}

/// The sequence both taggers read.
const SEQUENCE: [[f32; 3]; 6] =
    [[0.5, -0.25, 1.0], [0.0, 0.75, -0.5], [1.0, 1.0, 0.25], [-1.0, 0.5, 0.0], [0.25, 0.0, -0.75], [0.5, 0.5, 0.5]];

/// Streams [`SEQUENCE`] through `L` (initialised with seed 11) step by step, twice
/// (with a `reset` between), comparing every step's output with the whole-sequence
/// inference bit for bit; the digest is that of the whole-sequence outputs.
fn stream<L, const P: usize>(layer: L, part: Part, work: Work, probe: &mut dyn Probe) -> Outcome
where
    L: Network<Input = Shape2<6, 3>, Output = Shape2<6, 2>> + nn_core::stream::Step<StepInput = Shape1<3>>,
{
    let mut state = [0.0f32; P];
    let Ok(mut model) = Model::from_state(layer, &mut state[..]) else {
        return Outcome { part, ok: false, digest: Digest::EMPTY };
    };
    model.init(11);
    let whole = model.predict_one(&SEQUENCE.into());
    let mut stream = model.stream();
    let mut ok = true;
    for _ in 0..2 {
        for (t, step) in SEQUENCE.iter().enumerate() {
            let x = (*step).into();
            probe.begin(work);
            let y = stream.step(&x);
            probe.end(work);
            ok &= y.iter().zip(&whole[2 * t..2 * t + 2]).all(|(a, b)| a.to_bits() == b.to_bits());
        }
        stream.reset();
    }
    Outcome { part, ok, digest: Digest::EMPTY.add(&whole) }
}

/// The GRU tagger streamed ([`stream`]).
pub fn gru(probe: &mut dyn Probe) -> Outcome {
    stream::<_, { GruTagger::STATE_LEN }>(GruTagger, Part::Gru, Work::GruStep, probe)
}

/// The LSTM tagger streamed ([`stream`]).
pub fn lstm(probe: &mut dyn Probe) -> Outcome {
    stream::<_, { LstmTagger::STATE_LEN }>(LstmTagger, Part::Lstm, Work::LstmStep, probe)
}

/// Samples in the training batch.
const BATCH: usize = 16;

/// Trains a freshly initialised MLP on the images as one batch for 20 Adam steps, with
/// every buffer a stack array (about 60 KiB): whether the loss halves, and the digest
/// of every step's loss and of the trained parameters.
pub fn training(probe: &mut dyn Probe) -> Outcome {
    use nn_core::optim::Optimizer;
    const PARAMS: usize = DigitsMlp::PARAMS;
    let net = DigitsMlp;
    let mut params = [0.0f32; PARAMS];
    net.init(&mut params, &mut [], &mut Rng::new(5));
    let mut x = [0.0f32; BATCH * 64];
    let mut labels = [0.0f32; BATCH];
    for (i, (pixels, label)) in SAMPLES.iter().enumerate() {
        x[64 * i..64 * i + 64].copy_from_slice(pixels);
        labels[i] = *label as f32;
    }
    let mut y = [0.0f32; BATCH * 10];
    let mut dy = [0.0f32; BATCH * 10];
    let mut cache = [0.0f32; BATCH * DigitsMlp::CACHE];
    let mut scratch = [0.0f32; BATCH * DigitsMlp::SCRATCH];
    let mut grads = [0.0f32; PARAMS];
    let mut moments = [0.0f32; 2 * PARAMS];
    let loss = SparseCategoricalCrossEntropy::from_logits();
    let adam = Adam::new(1e-2);
    let mut rng = Rng::new(9);
    let (mut first, mut last) = (0.0, 0.0);
    let mut digest = Digest::EMPTY;
    for step in 1..=20 {
        probe.begin(Work::TrainingStep);
        net.forward_train(
            &x,
            &mut y,
            nn_core::TrainCtx {
                params: &params,
                buffers: &mut [],
                cache: &mut cache,
                scratch: &mut scratch,
                rng: &mut rng,
                training: true,
            },
        );
        last = loss.compute(&y, &labels, 10, Some(&mut dy));
        grads.fill(0.0);
        net.backward(
            &x,
            &y,
            &mut dy,
            None,
            nn_core::BackwardCtx {
                params: &params,
                cache: &cache,
                grads: &mut grads,
                frozen: nn_core::layer::Frozen::NONE,
                scratch: &mut scratch,
            },
        );
        adam.update(step, &mut params, &grads, &mut moments);
        probe.end(Work::TrainingStep);
        if step == 1 {
            first = last;
        }
        digest = digest.add(&[last]);
    }
    let ok = last.is_finite() && last < 0.5 * first;
    Outcome { part: Part::Training, ok, digest: digest.add(&params) }
}

/// Points at which the sine model is evaluated, evenly spaced over `[0, 2 pi)`.
pub const SINE_POINTS: usize = 16;

/// The largest error of the sine model allowed against `sin(x)` at any point.
pub const SINE_TOLERANCE: f32 = 0.05;

/// `sin(2 pi i / 16)` for `i < 16`, from `sin(pi / 8) = sqrt(2 - sqrt 2) / 2`,
/// `sin(pi / 4) = sqrt 2 / 2` and `sin(3 pi / 8) = sqrt(2 + sqrt 2) / 2`.
const SINE_REFERENCE: [f32; SINE_POINTS] = {
    const A: f32 = 0.382_683_43;
    const B: f32 = core::f32::consts::FRAC_1_SQRT_2;
    const C: f32 = 0.923_879_5;
    [0.0, A, B, C, 1.0, C, B, A, 0.0, -A, -B, -C, -1.0, -C, -B, -A]
};

/// The sine model with `weights` at [`SINE_POINTS`] points: whether every output is
/// within [`SINE_TOLERANCE`] of the sine, and the digest of the outputs.
pub fn sine(weights: &'static [f32; Sine::STATE_LEN], probe: &mut dyn Probe) -> Outcome {
    let model = Model::from_static(Sine, weights);
    let (mut ok, mut digest) = (true, Digest::EMPTY);
    for (i, &reference) in SINE_REFERENCE.iter().enumerate() {
        let x = i as f32 * (core::f32::consts::TAU / SINE_POINTS as f32);
        let input = [x].into();
        probe.begin(Work::SineInference);
        let y = infer(&model, &input);
        probe.end(Work::SineInference);
        ok &= (y[0] - reference).abs() <= SINE_TOLERANCE;
        digest = digest.add(&y);
    }
    Outcome { part: Part::Sine, ok, digest }
}
