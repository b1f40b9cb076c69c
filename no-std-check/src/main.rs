//! A `#![no_std]`, `#![no_main]` program with its own panic handler, linked for the
//! host: if anything in `nn-core` (without default features) needed `std` or `alloc`,
//! this would not link. It runs the digits classifiers of `nets.rs` with their
//! weights baked in at compile time from `weights/*.safetensors` (statics in flash),
//! and returns 0 when both classify every image of `samples.rs` as labelled, 1
//! otherwise.
//!
//! With `--features mlp-only` or `--features cnn-only` it holds one of the two, for
//! `tools/size-report`.
#![no_std]
#![no_main]

use core::panic::PanicInfo;

use nn_core::prelude::*;

mod nets;
mod samples;

use nets::{argmax, DigitsCnn, DigitsMlp};
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

/// The C entry point (no `std` runtime).
#[no_mangle]
pub extern "C" fn main(_argc: i32, _argv: *const *const u8) -> i32 {
    if run() {
        0
    } else {
        1
    }
}

// The C runtime (`_start`, `memcpy`): the only library linked besides `core`.
#[link(name = "c")]
extern "C" {}

#[panic_handler]
fn panic(_info: &PanicInfo) -> ! {
    loop {}
}
