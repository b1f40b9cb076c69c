//! The digits classifiers of `no-std-check` behind a C ABI (`include/nn_digits.h`),
//! built as a static library. The weights are baked in at compile time from the same
//! safetensors files, so the library needs no file and allocates nothing; its
//! outputs are the `std` model's, bit for bit (`tests/io/capi.rs` checks it on the whole
//! digits test split with a C program built by `gcc`).
#![warn(missing_docs)]

use nn_core::prelude::*;

#[path = "../../no-std-check/src/nets.rs"]
#[allow(dead_code)]
mod nets;
pub use nets::{DigitsCnn, DigitsMlp};

/// The MLP's parameters, in `state_dict` order.
pub static MLP_WEIGHTS: [f32; DigitsMlp::STATE_LEN] =
    nn_core::include_weights!(DigitsMlp, "../no-std-check/weights/digits_mlp.safetensors");
/// The CNN's parameters, then its buffers.
pub static CNN_WEIGHTS: [f32; DigitsCnn::STATE_LEN] =
    nn_core::include_weights!(DigitsCnn, "../no-std-check/weights/digits_cnn.safetensors");

/// Runs `N` on the 64 floats at `input`, writing 10 floats at `output`.
///
/// # Safety
/// `input` must be null or point to 64 readable floats, `output` null or point to 10
/// writable floats, not overlapping `input`.
unsafe fn predict<N: Network<Input = I, Output = Shape1<10>>, I: Shape>(
    model: &Model<N, &'static [f32]>,
    input: *const f32,
    output: *mut f32,
) -> i32 {
    if input.is_null() || output.is_null() {
        return -1;
    }
    // SAFETY: the caller guarantees 64 readable floats at `input` (checked non-null).
    let pixels = unsafe { core::slice::from_raw_parts(input, 64) };
    let Some(x) = Tensor::<N::Input>::from_slice(pixels) else { return -1 };
    let y = model.predict_one(&x);
    // SAFETY: the caller guarantees 10 writable floats at `output`, apart from `input`.
    let out = unsafe { core::slice::from_raw_parts_mut(output, 10) };
    out.copy_from_slice(&y[..]);
    0
}

/// `int nn_digits_predict(const float *in64, float *out10)`: the MLP's 10 logits.
///
/// # Safety
/// `in64` must be null or point to 64 readable floats, `out10` null or point to 10
/// writable floats. Returns 0, or -1 when a pointer is null.
#[no_mangle]
pub unsafe extern "C" fn nn_digits_predict(in64: *const f32, out10: *mut f32) -> i32 {
    static MODEL: Model<DigitsMlp, &[f32]> = Model::from_static(DigitsMlp, &MLP_WEIGHTS);
    // SAFETY: forwarded from the caller.
    unsafe { predict(&MODEL, in64, out10) }
}

/// `int nn_digits_cnn_predict(const float *in64, float *out10)`: the CNN's 10 logits.
///
/// # Safety
/// As [`nn_digits_predict`].
#[no_mangle]
pub unsafe extern "C" fn nn_digits_cnn_predict(in64: *const f32, out10: *mut f32) -> i32 {
    static MODEL: Model<DigitsCnn, &[f32]> = Model::from_static(DigitsCnn, &CNN_WEIGHTS);
    // SAFETY: forwarded from the caller.
    unsafe { predict(&MODEL, in64, out10) }
}
