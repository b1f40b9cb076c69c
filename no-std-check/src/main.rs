//! A `#![no_std]`, `#![no_main]` program with its own panic handler, linked for the
//! host: if anything in `nn-core` (without default features) needed `std` or `alloc`,
//! this would not link. Without `std` the kernels are the portable ones (no run-time
//! CPU detection), so this is also the host's run of the microcontroller code.
//!
//! It runs the checks of `checks.rs`: the digits classifiers of `nets.rs` with their
//! weights baked in at compile time from `weights/*.safetensors` (statics in flash) on
//! the images of `samples.rs`, a GRU and an LSTM streamed step by step (equal, bit for
//! bit, to whole-sequence inference, again after `reset`), and the MLP trained on the
//! images as one const-size batch in stack arrays. It runs the int8 kernels
//! (`nn_core::quant`) too, a Dense layer and a softmax, and the int8 digits MLP and CNN
//! baked from `weights/digits_*_int8.rs` (`int8_digits.rs`). It returns 0 when every check
//! holds and every part's digest equals the host build's (`checks::EXPECTED`), 1
//! otherwise.
//!
//! With `--features mlp-only` or `--features cnn-only` it holds one of the two
//! classifiers (and the streaming and training checks), for `tools/size-report`.
#![no_std]
#![no_main]

use core::panic::PanicInfo;

use nn_core::Network;

#[allow(dead_code)]
mod checks;
#[cfg(not(any(feature = "mlp-only", feature = "cnn-only")))]
mod int8;
#[cfg(not(any(feature = "mlp-only", feature = "cnn-only")))]
mod int8_digits;
mod nets;
mod samples;

#[cfg(not(feature = "mlp-only"))]
use nets::DigitsCnn;
#[cfg(not(feature = "cnn-only"))]
use nets::DigitsMlp;

#[cfg(not(feature = "cnn-only"))]
static MLP_WEIGHTS: [f32; DigitsMlp::STATE_LEN] =
    nn_core::include_weights!(DigitsMlp, "weights/digits_mlp.safetensors");
#[cfg(not(feature = "mlp-only"))]
static CNN_WEIGHTS: [f32; DigitsCnn::STATE_LEN] =
    nn_core::include_weights!(DigitsCnn, "weights/digits_cnn.safetensors");

/// Whether every part that this build holds passes.
fn run() -> bool {
    let probe = &mut checks::NoProbe;
    let mut ok = true;
    #[cfg(not(feature = "cnn-only"))]
    {
        ok &= checks::mlp(&MLP_WEIGHTS, probe).passed();
    }
    #[cfg(not(feature = "mlp-only"))]
    {
        ok &= checks::cnn(&CNN_WEIGHTS, probe).passed();
    }
    #[cfg(not(any(feature = "mlp-only", feature = "cnn-only")))]
    {
        ok &= int8::int8_dense_softmax();
        ok &= int8_digits::check_both(&mut int8_digits::NoProbe).iter().all(|o| o.passed());
    }
    ok && checks::gru(probe).passed() && checks::lstm(probe).passed() && checks::training(probe).passed()
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
