//! A `#![no_std]`, `#![no_main]` program with its own panic handler, linked for the
//! host: if anything in `nn-core` (without default features) needed `std` or `alloc`,
//! this would not link. It runs the digits classifiers of `nets.rs` with their
//! weights baked in at compile time from `weights/*.safetensors` (statics in flash),
//! and returns 0 when both classify every image of `samples.rs` as labelled, 1
//! otherwise.
//!
//! It also streams a GRU and an LSTM sequence model step by step (equal, bit for bit,
//! to whole-sequence inference, again after `reset`), and trains the MLP on the
//! samples as one const-size batch (forward, cross-entropy, backward, Adam) in stack
//! arrays, checking that the loss falls.
//!
//! It runs the int8 kernels (`nn_core::quant`) too, a Dense layer and a softmax.
//!
//! With `--features mlp-only` or `--features cnn-only` it holds one of the two, for
//! `tools/size-report`.
#![no_std]
#![no_main]

use core::panic::PanicInfo;

use nn_core::prelude::*;

#[cfg(not(any(feature = "mlp-only", feature = "cnn-only")))]
mod int8;
mod nets;
mod samples;

#[cfg(not(feature = "mlp-only"))]
use nets::DigitsCnn;
use nets::{argmax, DigitsMlp};
use samples::SAMPLES;

#[cfg(not(feature = "cnn-only"))]
static MLP_WEIGHTS: [f32; DigitsMlp::STATE_LEN] =
    nn_core::include_weights!(DigitsMlp, "weights/digits_mlp.safetensors");
#[cfg(not(feature = "mlp-only"))]
static CNN_WEIGHTS: [f32; DigitsCnn::STATE_LEN] =
    nn_core::include_weights!(DigitsCnn, "weights/digits_cnn.safetensors");

/// Whether every sample is classified as labelled.
fn run() -> bool {
    let mut ok = true;
    #[cfg(not(feature = "cnn-only"))]
    {
        let mlp = Model::from_static(DigitsMlp, &MLP_WEIGHTS);
        for (pixels, label) in &SAMPLES {
            ok &= argmax(&mlp.predict_one(&(*pixels).into())) == *label;
        }
    }
    #[cfg(not(feature = "mlp-only"))]
    {
        let cnn = Model::from_static(DigitsCnn, &CNN_WEIGHTS);
        for (pixels, label) in &SAMPLES {
            let Some(x) = Tensor::from_slice(pixels) else { return false };
            ok &= argmax(&cnn.predict_one(&x)) == *label;
        }
    }
    ok
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

/// Streams `x` through `L` step by step, twice (with a `reset` between), and compares
/// every step's output with the whole-sequence inference, bit for bit.
fn streams_like_whole_sequence<L, const P: usize>(layer: L, x: &[[f32; 3]; 6]) -> bool
where
    L: Network<Input = Shape2<6, 3>, Output = Shape2<6, 2>> + nn_core::stream::Step<StepInput = Shape1<3>>,
{
    let mut state = [0.0f32; P];
    let Ok(mut model) = Model::from_state(layer, &mut state[..]) else { return false };
    model.init(11);
    let whole = model.predict_one(&(*x).into());
    let mut stream = model.stream();
    let mut ok = true;
    for _ in 0..2 {
        for (t, step) in x.iter().enumerate() {
            let y = stream.step(&(*step).into());
            ok &= y.iter().zip(&whole[2 * t..2 * t + 2]).all(|(a, b)| a.to_bits() == b.to_bits());
        }
        stream.reset();
    }
    ok
}

/// Samples in the training batch.
const BATCH: usize = 16;

/// Trains a freshly initialised MLP on the samples as one batch for a few Adam steps,
/// with every buffer a stack array; returns the loss before and after.
fn train_mlp() -> (f32, f32) {
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
    let mut first = 0.0;
    let mut last = 0.0;
    for step in 1..=20 {
        net.forward_train(&params, &mut [], &x, &mut y, &mut cache, &mut scratch, &mut rng);
        last = loss.compute(&y, &labels, 10, Some(&mut dy));
        if step == 1 {
            first = last;
        }
        grads.fill(0.0);
        net.backward(&params, &x, &y, &cache, &mut dy, None, &mut grads, &mut scratch);
        adam.update(step, &mut params, &grads, &mut moments);
    }
    (first, last)
}

/// Streaming and training, independent of the classifiers.
fn run_streams_and_training() -> bool {
    let x =
        [[0.5, -0.25, 1.0], [0.0, 0.75, -0.5], [1.0, 1.0, 0.25], [-1.0, 0.5, 0.0], [0.25, 0.0, -0.75], [0.5, 0.5, 0.5]];
    let gru = streams_like_whole_sequence::<_, { GruTagger::STATE_LEN }>(GruTagger, &x);
    let lstm = streams_like_whole_sequence::<_, { LstmTagger::STATE_LEN }>(LstmTagger, &x);
    let (before, after) = train_mlp();
    #[cfg(not(any(feature = "mlp-only", feature = "cnn-only")))]
    let int8 = int8::int8_dense_softmax();
    #[cfg(any(feature = "mlp-only", feature = "cnn-only"))]
    let int8 = true;
    gru && lstm && int8 && after.is_finite() && after < 0.5 * before
}

/// The C entry point (no `std` runtime).
#[no_mangle]
pub extern "C" fn main(_argc: i32, _argv: *const *const u8) -> i32 {
    if run() && run_streams_and_training() {
        0
    } else {
        1
    }
}

// The C runtime (`_start`, `memcpy`, `_exit`): the only library linked besides `core`.
#[link(name = "c")]
extern "C" {
    fn _exit(status: i32) -> !;
}

/// A panic ends the process with status 101, so that CI sees it.
#[panic_handler]
fn panic(_info: &PanicInfo) -> ! {
    // SAFETY: `_exit` takes any status and does not return.
    unsafe { _exit(101) }
}
