//! The firmware checks (`no-std-check/src/checks.rs`) on the host with `std`, whose
//! kernels are the AVX2 ones where the CPU has them: every part passes its own check
//! and gives the digests `checks::EXPECTED`, which `no-std-check` (the portable kernels
//! on the host) and the microcontroller firmware (`tools/firmware-run`) must give too.
use nn_core::prelude::*;

#[path = "../no-std-check/src/checks.rs"]
#[allow(dead_code)]
mod checks;
#[path = "../no-std-check/src/nets.rs"]
mod nets;
#[path = "../no-std-check/src/samples.rs"]
mod samples;

use checks::{NoProbe, Outcome, Part, EXPECTED};
use nets::{DigitsCnn, DigitsMlp, Sine};

static MLP_WEIGHTS: [f32; DigitsMlp::STATE_LEN] =
    nn_core::include_weights!(DigitsMlp, "no-std-check/weights/digits_mlp.safetensors");
static CNN_WEIGHTS: [f32; DigitsCnn::STATE_LEN] =
    nn_core::include_weights!(DigitsCnn, "no-std-check/weights/digits_cnn.safetensors");
static SINE_WEIGHTS: [f32; Sine::STATE_LEN] = nn_core::include_weights!(Sine, "firmware/weights/sine.safetensors");

fn outcomes() -> [Outcome; 6] {
    let probe = &mut NoProbe;
    [
        checks::mlp(&MLP_WEIGHTS, probe),
        checks::cnn(&CNN_WEIGHTS, probe),
        checks::gru(probe),
        checks::lstm(probe),
        checks::training(probe),
        checks::sine(&SINE_WEIGHTS, probe),
    ]
}

#[test]
fn every_part_passes_with_the_expected_digest() {
    let outcomes = outcomes();
    for outcome in &outcomes {
        println!("{}: ok {} digest {:016x}", outcome.part.name(), outcome.ok, outcome.digest.0);
    }
    for (outcome, expected) in outcomes.iter().zip(EXPECTED) {
        assert!(outcome.ok, "{}: the check failed", outcome.part.name());
        assert_eq!(outcome.digest, expected, "{}: digest {:016x}", outcome.part.name(), outcome.digest.0);
    }
    assert_eq!(outcomes.map(|o| o.part), Part::ALL);
}

/// The digest tells outputs apart that differ in one bit.
#[test]
fn digest_sees_one_bit() {
    let a = checks::Digest::EMPTY.add(&[1.0, 2.0]);
    let b = checks::Digest::EMPTY.add(&[1.0, f32::from_bits(2.0f32.to_bits() ^ 1)]);
    assert_ne!(a, b);
    assert_eq!(a, checks::Digest::EMPTY.add(&[1.0]).add(&[2.0]));
}

#[path = "../no-std-check/src/int8_digits.rs"]
mod int8_digits;

/// The int8 MLP and CNN baked from `no-std-check/weights/digits_*_int8.rs` label every
/// sample image right and give the digests `int8_digits::EXPECTED`, which the firmware
/// must give too.
#[test]
fn int8_classifiers_label_every_image_with_the_expected_digest() {
    let outcomes = int8_digits::check_both(&mut int8_digits::NoProbe);
    for outcome in &outcomes {
        println!("{}: correct {} digest {:016x}", outcome.name, outcome.correct, outcome.digest);
    }
    assert_eq!(outcomes.map(|o| o.expected()), int8_digits::EXPECTED);
    for outcome in &outcomes {
        assert!(outcome.ran, "{}: a kernel refused its operands", outcome.name);
        assert_eq!(outcome.correct, samples::SAMPLES.len(), "{}: labels", outcome.name);
        assert_eq!(outcome.digest, outcome.expected(), "{}: digest {:016x}", outcome.name, outcome.digest);
        assert!(outcome.passed());
    }
}
