//! The graph network of `tests/layers/int8_graph_codegen.rs`, int8.
//! Written by `QuantizedGraph::rust_source` (see that test); do not edit.

use nn_core::quant::graph::{Int8Graph, Int8Step};
use nn_core::quant::sequential::{Int8Layer, TensorQuantization};
use nn_core::quant::{AddParams, FullyConnectedParams, QuantizedMultiplier, Rounding};

static WEIGHT_0: [i8; 30] = [
    -110, -6, 99, -82, 23, 127, -52, 50, -127, -25, 77, -99, 3, 101, -69, 29, 127, -42, 62, -127, -18, 92, -97, 12,
    104, -58, 36, -127, -33, 61,
];
static BIAS_0: [i32; 5] = [
    -7197, -528, 5735, -5649, 1133,
];
static MULTIPLIERS_0: [QuantizedMultiplier; 5] = [
    QuantizedMultiplier { multiplier: 1238762230, shift: -6 },
    QuantizedMultiplier { multiplier: 1266290329, shift: -6 },
    QuantizedMultiplier { multiplier: 1321346444, shift: -6 },
    QuantizedMultiplier { multiplier: 1183706115, shift: -6 },
    QuantizedMultiplier { multiplier: 1376402478, shift: -6 },
];
static WEIGHT_1: [i8; 30] = [
    119, -54, 46, -127, -27, 73, -100, 0, 100, -73, 27, 127, -49, 58, -127, -20, 87, -98, 8, 102, -61, 33, 127, -36,
    71, -127, -12, 102, -96, 19,
];
static BIAS_1: [i32; 5] = [
    7407, -3617, 2944, -7772, -2172,
];
static MULTIPLIERS_1: [QuantizedMultiplier; 5] = [
    QuantizedMultiplier { multiplier: 2110371033, shift: -8 },
    QuantizedMultiplier { multiplier: 2110371166, shift: -8 },
    QuantizedMultiplier { multiplier: 1975666528, shift: -8 },
    QuantizedMultiplier { multiplier: 1122537770, shift: -7 },
    QuantizedMultiplier { multiplier: 1840961889, shift: -8 },
];
static WEIGHT_3: [i8; 15] = [
    87, -127, -3, 120, -94, 25, 127, -50, 52, -124, -26, 94, -114, 7, 127,
];
static BIAS_3: [i32; 3] = [
    -4749, 1883, 9069,
];
static MULTIPLIERS_3: [QuantizedMultiplier; 3] = [
    QuantizedMultiplier { multiplier: 1210715724, shift: -7 },
    QuantizedMultiplier { multiplier: 1465603230, shift: -7 },
    QuantizedMultiplier { multiplier: 1242576627, shift: -7 },
];
static WEIGHT_4: [i8; 10] = [
    -45, 67, -127, -15, 97, -97, 15, 127, -67, 45,
];
static BIAS_4: [i32; 2] = [
    -8421, -2062,
];
static MULTIPLIERS_4: [QuantizedMultiplier; 2] = [
    QuantizedMultiplier { multiplier: 1338159524, shift: -7 },
    QuantizedMultiplier { multiplier: 1338159524, shift: -7 },
];
static CONCAT_5: [usize; 2] = [
    4, 5,
];
static WEIGHT_6: [i8; 20] = [
    81, -127, -7, 114, -94, 22, 124, -52, 50, -127, -30, 94, -120, 3, 127, -69, 29, 127, -42, 56,
];
static BIAS_6: [i32; 4] = [
    -11715, -1386, 8668, -7305,
];
static MULTIPLIERS_6: [QuantizedMultiplier; 4] = [
    QuantizedMultiplier { multiplier: 1251861754, shift: -7 },
    QuantizedMultiplier { multiplier: 1476555013, shift: -7 },
    QuantizedMultiplier { multiplier: 1219762771, shift: -7 },
    QuantizedMultiplier { multiplier: 1540753074, shift: -7 },
];
static LENS: [usize; 8] = [
    6, 5, 5, 5, 3, 2, 5, 4,
];

/// The network: its input's and output's quantization and values, the elements of every value, its steps.
pub static MODEL: Int8Graph<'static> = Int8Graph {
    input: TensorQuantization { scale: f32::from_bits(0x3c808081), zero_point: -1 } /* scale 1.5686275e-2 */,
    output: TensorQuantization { scale: f32::from_bits(0x3c040bca), zero_point: -9 } /* scale 8.059451e-3 */,
    input_value: 0,
    output_value: 7,
    lens: &LENS,
    steps: &[
    Int8Step::Layer {
        layer: Int8Layer::Dense {
            params: FullyConnectedParams { input_offset: 1, filter_offset: 0, output_offset: -128, activation_min: -128, activation_max: 127, rounding: Rounding::Double },
            inputs: 6,
            outputs: 5,
            weight: &WEIGHT_0,
            bias: &BIAS_0,
            multipliers: &MULTIPLIERS_0,
        },
        input: 0,
        output: 1,
    },
    Int8Step::Layer {
        layer: Int8Layer::Dense {
            params: FullyConnectedParams { input_offset: 1, filter_offset: 0, output_offset: 11, activation_min: -128, activation_max: 127, rounding: Rounding::Double },
            inputs: 6,
            outputs: 5,
            weight: &WEIGHT_1,
            bias: &BIAS_1,
            multipliers: &MULTIPLIERS_1,
        },
        input: 0,
        output: 2,
    },
    Int8Step::Add {
        params: AddParams {
            input1_offset: 128, input2_offset: -11, output_offset: -28, left_shift: 20,
            input1_multiplier: QuantizedMultiplier { multiplier: 1751400149, shift: -2 },
            input2_multiplier: QuantizedMultiplier { multiplier: 1073741824, shift: 0 },
            output_multiplier: QuantizedMultiplier { multiplier: 1845742985, shift: -19 },
            activation_min: -128, activation_max: 127, rounding: Rounding::Double,
        },
        inputs: [1, 2],
        output: 3,
    },
    Int8Step::Layer {
        layer: Int8Layer::Dense {
            params: FullyConnectedParams { input_offset: 28, filter_offset: 0, output_offset: -20, activation_min: -128, activation_max: 127, rounding: Rounding::Double },
            inputs: 5,
            outputs: 3,
            weight: &WEIGHT_3,
            bias: &BIAS_3,
            multipliers: &MULTIPLIERS_3,
        },
        input: 3,
        output: 4,
    },
    Int8Step::Layer {
        layer: Int8Layer::Dense {
            params: FullyConnectedParams { input_offset: 28, filter_offset: 0, output_offset: -20, activation_min: -20, activation_max: 127, rounding: Rounding::Double },
            inputs: 5,
            outputs: 2,
            weight: &WEIGHT_4,
            bias: &BIAS_4,
            multipliers: &MULTIPLIERS_4,
        },
        input: 3,
        output: 5,
    },
    Int8Step::Concat { inputs: &CONCAT_5, output: 6 },
    Int8Step::Layer {
        layer: Int8Layer::Dense {
            params: FullyConnectedParams { input_offset: 20, filter_offset: 0, output_offset: -9, activation_min: -128, activation_max: 127, rounding: Rounding::Double },
            inputs: 5,
            outputs: 4,
            weight: &WEIGHT_6,
            bias: &BIAS_6,
            multipliers: &MULTIPLIERS_6,
        },
        input: 6,
        output: 7,
    },
    ],
};

// Fails the build, naming the rule, if the network could not run.
const _: () = if let Err(e) = MODEL.validate() {
    panic!("{}", e)
};

/// int8 values per input sample.
pub const INPUT_LEN: usize = MODEL.input_len();
/// int8 values per output sample.
pub const OUTPUT_LEN: usize = MODEL.output_len();
/// Bytes of the arena of `MODEL.forward`.
pub const ARENA_LEN: usize = MODEL.arena_len();
/// Bytes of the constants (1 a weight, 4 a bias, 8 a multiplier, 40 an add, 16 for the two quantizations).
pub const PARAM_BYTES: usize = MODEL.param_bytes();
