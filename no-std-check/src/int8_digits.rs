//! The int8 digits classifiers, shared (through `#[path]`) by `no-std-check` (the host
//! without `std`), the firmware's `int8` binary and `tests/firmware_digest.rs` (the host
//! with `std`): the MLP and CNN of `nets.rs` quantized by the example `firmware_int8`,
//! their constants baked in as `static`s from `weights/digits_{mlp,cnn}_int8.rs`
//! (checked at compile time, there and below against the f32 networks' shapes), run in
//! integers only on the images of `samples.rs`.
//!
//! Every int8 output is folded into a digest per network; on every target it must
//! equal [`EXPECTED`], the host build's: the integer kernels give the same bits
//! everywhere.
use nn_core::quant::sequential::Int8Sequential;
use nn_core::{Network, Shape};

use crate::nets::{DigitsCnn, DigitsMlp};
use crate::samples::SAMPLES;

/// The int8 MLP (`weights/digits_mlp_int8.rs`, generated: not formatted).
#[rustfmt::skip]
#[path = "../weights/digits_mlp_int8.rs"]
pub mod mlp;

/// The int8 CNN, its batch norm folded into its convolution (`weights/digits_cnn_int8.rs`,
/// generated: not formatted).
#[rustfmt::skip]
#[path = "../weights/digits_cnn_int8.rs"]
pub mod cnn;

// The int8 networks read and write what the f32 ones do, and the MLP and CNN buffers
// below fit: checked when this file compiles.
const _: () = assert!(mlp::INPUT_LEN == <<DigitsMlp as nn_core::Layer>::Input as Shape>::LEN);
const _: () = assert!(mlp::OUTPUT_LEN == <<DigitsMlp as nn_core::Layer>::Output as Shape>::LEN);
const _: () = assert!(cnn::INPUT_LEN == <<DigitsCnn as nn_core::Layer>::Input as Shape>::LEN);
const _: () = assert!(cnn::OUTPUT_LEN == <<DigitsCnn as nn_core::Layer>::Output as Shape>::LEN);
// The int8 constants take under a third of the f32 state's bytes.
const _: () = assert!(10 * mlp::PARAM_BYTES < 3 * DigitsMlp::PARAM_BYTES);
const _: () = assert!(10 * cnn::PARAM_BYTES < 3 * DigitsCnn::PARAM_BYTES);

/// The larger of the two networks' activation buffers.
pub const ACTIVATION_LEN: usize =
    if mlp::ACTIVATION_LEN > cnn::ACTIVATION_LEN { mlp::ACTIVATION_LEN } else { cnn::ACTIVATION_LEN };

/// The digests of the host build, MLP then CNN.
pub const EXPECTED: [u64; 2] = [0xeca6_7c74_7b45_e903, 0xa85f_f7c9_0d7c_6548];

/// A network's part of the check.
#[derive(Clone, Copy, Debug)]
pub struct Int8Outcome {
    /// `"int8-mlp"` or `"int8-cnn"`.
    pub name: &'static str,
    /// FNV-1a (64 bits) of every image's int8 logits.
    pub digest: u64,
    /// Images whose largest int8 logit is their label.
    pub correct: usize,
    /// Whether every inference ran (no kernel refused its operands).
    pub ran: bool,
}

impl Int8Outcome {
    /// The host build's digest of this part.
    pub fn expected(&self) -> u64 {
        if self.name == "int8-mlp" {
            EXPECTED[0]
        } else {
            EXPECTED[1]
        }
    }

    /// Ran, every image labelled right, and the host's digest.
    pub fn passed(&self) -> bool {
        self.ran && self.correct == SAMPLES.len() && self.digest == self.expected()
    }
}

/// Measures each inference: `begin` before, `end` after.
pub trait Int8Probe {
    /// An inference starts.
    fn begin(&mut self);
    /// It ended.
    fn end(&mut self);
}

/// Measures nothing.
pub struct NoProbe;

impl Int8Probe for NoProbe {
    fn begin(&mut self) {}
    fn end(&mut self) {}
}

/// The index of the first largest value.
fn argmax(values: &[i8]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best
}

/// Runs `network` on every sample image: quantizes its pixels (the float boundary,
/// outside the measured inference), then the int8 layers alone between `probe.begin`
/// and `probe.end`.
pub fn check(name: &'static str, network: &Int8Sequential<'_>, probe: &mut dyn Int8Probe) -> Int8Outcome {
    let mut digest = 0xcbf2_9ce4_8422_2325u64;
    let (mut correct, mut ran) = (0, true);
    let (mut a, mut b) = ([0i8; ACTIVATION_LEN], [0i8; ACTIVATION_LEN]);
    for (pixels, label) in SAMPLES.iter() {
        let mut x = [0i8; 64];
        for (q, &p) in x.iter_mut().zip(pixels) {
            *q = network.input.quantize(p);
        }
        probe.begin();
        let logits = network.forward(&x, &mut a, &mut b);
        probe.end();
        let Ok(logits) = logits else {
            ran = false;
            continue;
        };
        for &v in logits {
            digest = (digest ^ u64::from(v as u8)).wrapping_mul(0x0100_0000_01b3);
        }
        correct += usize::from(argmax(logits) == *label);
    }
    Int8Outcome { name, digest, correct, ran }
}

/// Both networks' checks, MLP then CNN.
pub fn check_both(probe: &mut dyn Int8Probe) -> [Int8Outcome; 2] {
    [check("int8-mlp", &mlp::MODEL, probe), check("int8-cnn", &cnn::MODEL, probe)]
}
