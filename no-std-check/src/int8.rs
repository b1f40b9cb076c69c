//! The int8 kernels without `std` or `alloc`: a fully connected layer then a softmax,
//! against values worked out by hand.

use nn_core::quant::{fully_connected, prepare, softmax, FullyConnectedParams, Rounding};

/// `[[1, 2], [2, -1]] [3, -4] + [1, 0] = [-4, 10]` with input scale 0.5, weight scale
/// 0.25 and output scale 0.125 (a real multiplier of exactly 1); then softmax of
/// `[-4, 10]` read with input scale 0.5: `exp(-7) / (1 + exp(-7)) * 256 = 0.23`
/// rounds to 0 (-128) and the other to 256, clamped to 127.
pub fn int8_dense_softmax() -> bool {
    let multiplier = prepare::channel_multiplier(0.5, 0.25, 0.125, Rounding::Double);
    let params = FullyConnectedParams {
        input_offset: 0,
        filter_offset: 0,
        output_offset: 0,
        activation_min: -128,
        activation_max: 127,
        rounding: Rounding::Double,
    };
    let mut logits = [0i8; 2];
    let dense = fully_connected(&params, &[3, -4], &[1, 2, 2, -1], Some(&[1, 0]), &[multiplier], &mut logits);
    let mut probabilities = [0i8; 2];
    let softmax_params = prepare::softmax_params(1.0, 0.5, Rounding::Double);
    let soft = softmax(&softmax_params, &logits, 2, &mut probabilities);
    dense.is_ok() && soft.is_ok() && logits == [-4, 10] && probabilities == [-128, 127]
}
