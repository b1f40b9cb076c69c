//! Golden tests of the convolution family against PyTorch: `Conv1d`, `Conv2d`,
//! `ConvTranspose2d`, pooling, global pooling, `Upsample`, `Flatten`, `Reshape` and batch norm in
//! training and eval mode, from the fixtures of the groups `conv`, `pool`, `reshape`
//! and `batch_norm` written by `tools/fixtures/generate.py`.
//!
//! Each fixture is mapped by name to the nn-core layer with the same configuration
//! (the shapes are types, so the mapping is written out); the fixture's options are
//! checked against the layer's, and a fixture without a mapping fails its group's test.
use crate::fixtures;
use crate::standalone::Standalone;

use fixtures::{assert_close, Fixture};
use nn_core::layers::{
    AvgPool1d, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv1d, Conv2d, ConvTranspose2d, Flatten, GlobalAvgPool1d,
    GlobalAvgPool2d, GlobalMaxPool1d, GlobalMaxPool2d, MaxPool1d, MaxPool2d, Padding, Reshape, Upsample, Upsample1d,
};
use nn_core::{Layer, Shape, Shape1, Shape2, Shape3};

/// Relative tolerance: the references are exact to half an f32 ulp, and the library
/// sums at most a few hundred f32 products per value.
const RTOL: f32 = 1e-5;
/// Absolute tolerance, for sums that cancel to near zero (a weight gradient sums up to
/// 340 products of values of order 1).
const ATOL: f32 = 1e-6;

/// Every fixture of `group` (at least one).
fn fixtures_in(group: &str) -> Vec<Fixture> {
    let found: Vec<Fixture> =
        Fixture::all().iter().map(|name| Fixture::load(name)).filter(|f| f.meta("group") == group).collect();
    assert!(!found.is_empty(), "no fixture of group `{group}`");
    found
}

/// Asserts that the fixture's option `key` (JSON text, absent meaning `default`) is
/// `actual`, written as JSON.
fn expect_option(f: &Fixture, key: &str, default: &str, actual: impl std::fmt::Debug) {
    let found = f.option(key).unwrap_or(default);
    assert_eq!(found, format!("{actual:?}"), "{}: option `{key}`", f.name);
}

/// The parameters and buffers of `layer` from the fixture tensors `<params>.<name>`
/// and `<buffers>.<name>`, with PyTorch's shapes.
fn load_state<L: Layer>(layer: &L, f: &Fixture, params: &str, buffers: &str) -> (Vec<f32>, Vec<f32>) {
    let (mut p, mut b) = (vec![f32::NAN; L::PARAMS], vec![f32::NAN; L::BUFFERS]);
    layer.visit_tensors(None, 0, 0, &mut |t| {
        let (key, into) = if t.trainable {
            (format!("{params}.{}", t.path), &mut p)
        } else {
            (format!("{buffers}.{}", t.path), &mut b)
        };
        assert_eq!(f.shape(&key), t.shape, "{}: shape of `{key}`", f.name);
        into[t.offset..t.offset + t.len].copy_from_slice(f.values(&key));
    });
    assert!(p.iter().chain(&b).all(|v| !v.is_nan()), "{}: the fixture does not fill every tensor", f.name);
    (p, b)
}

/// Runs `layer` on the fixture: `forward` (and, for layers without modes,
/// `forward_train`) against `output`; when the fixture has gradients, `backward` with
/// `grad_output` against `grad_input` and `grad.<name>`; for batch norm, the buffers
/// after the pass against `updated.<name>`.
fn check<L: Layer>(layer: &L, f: &Fixture) {
    check_in_mode(layer, f, true)
}

/// As [`check`], with the training forward in training mode (`training`) or in
/// evaluation mode (`TrainCtx::training` false, as `Model::eval` runs it).
fn check_in_mode<L: Layer>(layer: &L, f: &Fixture, training_mode: bool) {
    let x = f.values("input");
    let batch = x.len() / L::Input::LEN;
    let input_shape: Vec<usize> = [batch].iter().chain(L::Input::DIMS).copied().collect();
    assert_eq!(f.shape("input"), input_shape, "{}: input shape", f.name);
    assert_eq!(batch, f.batch(), "{}: batch", f.name);
    let (params, buffers) = load_state(layer, f, "param", "buffer");
    let training = f.option("training").is_none_or(|t| t == "true");
    let has_modes = L::BUFFERS > 0;
    let close = |what: &str, actual: &[f32], expected: &str| {
        assert_close(&format!("{}: {what}", f.name), actual, f.values(expected), RTOL, ATOL)
    };

    let mut s = Standalone::new::<L>(batch, 0);
    s.buffers = buffers;
    s.training = training_mode;
    let mut y = vec![f32::NAN; batch * L::Output::LEN];
    if !has_modes || !training {
        layer.forward(nn_core::Weights::new(&params, &s.buffers), x, &mut y, &mut s.scratch);
        close("forward", &y, "output");
    }
    if has_modes && !training {
        // PyTorch's eval mode leaves the running statistics alone; so must a training
        // forward in inference mode (checked below against `updated`).
        let (_, updated) = load_state(layer, f, "param", "updated");
        assert_eq!(s.buffers, updated, "{}: eval mode changed the buffers", f.name);
    }

    y.fill(f32::NAN);
    layer.forward_train(x, &mut y, s.train(&params));
    close("forward_train", &y, "output");
    if has_modes && training {
        let (_, updated) = load_state(layer, f, "param", "updated");
        assert_close(&format!("{}: running statistics", f.name), &s.buffers, &updated, RTOL, ATOL);
    } else if has_modes {
        let (_, updated) = load_state(layer, f, "param", "updated");
        assert_eq!(s.buffers, updated, "{}: a training forward in inference mode changed the buffers", f.name);
    }

    let mut dy = f.values("grad_output").to_vec();
    let mut dx = vec![f32::NAN; x.len()];
    layer.backward(x, &y, &mut dy, Some(&mut dx), s.backward(&params));
    let grads = s.grads;
    close("grad_input", &dx, "grad_input");
    layer.visit_tensors(None, 0, 0, &mut |t| {
        if t.trainable {
            close(&format!("grad.{}", t.path), &grads[t.offset..t.offset + t.len], &format!("grad.{}", t.path));
        }
    });
}

/// Checks the stride, padding, dilation and bias options of a convolution fixture.
fn conv_options(f: &Fixture, stride: impl std::fmt::Debug, padding: &str, dilation: impl std::fmt::Debug, bias: bool) {
    expect_option(f, "stride", &format!("{:?}", one_or_pair(f, 1)), stride);
    expect_option(f, "dilation", &format!("{:?}", one_or_pair(f, 1)), dilation);
    assert_eq!(f.option("padding").unwrap_or("valid"), padding, "{}: option `padding`", f.name);
    expect_option(f, "bias", "true", bias);
}

/// The default of a per-axis option: `1` for 1-D layers, `[1, 1]` for 2-D ones.
fn one_or_pair(f: &Fixture, value: usize) -> Box<dyn std::fmt::Debug> {
    if f.meta("kind").ends_with("1d") {
        Box::new(value)
    } else {
        Box::new([value, value])
    }
}

#[test]
fn convolutions_match_torch() {
    for f in fixtures_in("conv") {
        let f = &f;
        match f.name.as_str() {
            "conv2d_3x3_valid" => {
                conv_options(f, [1, 1], "valid", [1, 1], true);
                check(&Conv2d::<3, 7, 6, 4, 3, 3, 5, 4>::new([1, 1], Padding::Valid, [1, 1]), f);
            }
            "conv2d_3x3_same_b1" => {
                conv_options(f, [1, 1], "same", [1, 1], true);
                check(&Conv2d::<2, 5, 5, 3, 3, 3, 5, 5>::new([1, 1], Padding::Same, [1, 1]), f);
            }
            "conv2d_4x2_same_even" => {
                conv_options(f, [1, 1], "same", [1, 1], true);
                check(&Conv2d::<2, 6, 5, 2, 4, 2, 6, 5>::new([1, 1], Padding::Same, [1, 1]), f);
            }
            "conv2d_3x2_same_dilated" => {
                conv_options(f, [1, 1], "same", [2, 3], true);
                check(&Conv2d::<1, 7, 6, 2, 3, 2, 7, 6>::new([1, 1], Padding::Same, [2, 3]), f);
            }
            "conv2d_3x3_stride2_pad1" => {
                conv_options(f, [2, 2], "[1, 1]", [1, 1], true);
                check(&Conv2d::<2, 7, 8, 3, 3, 3, 4, 4>::new([2, 2], Padding::Explicit([1, 1]), [1, 1]), f);
            }
            "conv2d_2x5_stride3x1" => {
                conv_options(f, [3, 1], "valid", [1, 1], true);
                check(&Conv2d::<2, 8, 7, 2, 2, 5, 3, 3>::new([3, 1], Padding::Valid, [1, 1]), f);
            }
            "conv2d_3x3_dilation2" => {
                conv_options(f, [1, 2], "[2, 1]", [2, 2], true);
                check(&Conv2d::<2, 9, 7, 3, 3, 3, 9, 3>::new([1, 2], Padding::Explicit([2, 1]), [2, 2]), f);
            }
            "conv2d_1x1_nobias" => {
                conv_options(f, [1, 1], "valid", [1, 1], false);
                check(&Conv2d::<5, 3, 4, 3, 1, 1, 3, 4, false>::new([1, 1], Padding::Valid, [1, 1]), f);
            }
            "conv2d_3x3_same_20x17" => {
                conv_options(f, [1, 1], "[1, 1]", [1, 1], true);
                check(&Conv2d::<2, 20, 17, 3, 3, 3, 20, 17>::new([1, 1], Padding::Explicit([1, 1]), [1, 1]), f);
            }
            "conv1d_3_stride2_pad1_dilation2" => {
                conv_options(f, 2, "1", 2, true);
                check(&Conv1d::<3, 11, 4, 3, 5>::new(2, Padding::Explicit([1]), 2), f);
            }
            "conv1d_4_same_nobias" => {
                conv_options(f, 1, "same", 1, false);
                check(&Conv1d::<2, 9, 3, 4, 9, false>::new(1, Padding::Same, 1), f);
            }
            "conv2d_3x3_groups2_stride2_pad1" => {
                conv_options(f, [2, 2], "[1, 1]", [1, 1], true);
                expect_option(f, "groups", "1", 2);
                check(&Conv2d::<4, 7, 6, 6, 3, 3, 4, 3, true, 2>::new([2, 2], Padding::Explicit([1, 1]), [1, 1]), f);
            }
            "conv2d_depthwise_3x3_pad1" => {
                conv_options(f, [1, 1], "[1, 1]", [1, 1], true);
                expect_option(f, "groups", "1", 3);
                check(&Conv2d::<3, 5, 7, 3, 3, 3, 5, 7, true, 3>::new([1, 1], Padding::Explicit([1, 1]), [1, 1]), f);
            }
            "conv2d_depthwise_x2_5x3_stride2x1_nobias" => {
                conv_options(f, [2, 1], "[2, 0]", [1, 1], false);
                expect_option(f, "groups", "1", 3);
                check(&Conv2d::<3, 9, 5, 6, 5, 3, 5, 3, false, 3>::new([2, 1], Padding::Explicit([2, 0]), [1, 1]), f);
            }
            "conv1d_3_groups3_stride2_pad1" => {
                conv_options(f, 2, "1", 1, true);
                expect_option(f, "groups", "1", 3);
                check(&Conv1d::<6, 11, 9, 3, 6, true, 3>::new(2, Padding::Explicit([1]), 1), f);
            }
            "conv1d_depthwise_5_same_nobias" => {
                conv_options(f, 1, "same", 1, false);
                expect_option(f, "groups", "1", 4);
                check(&Conv1d::<4, 9, 4, 5, 9, false, 4>::new(1, Padding::Same, 1), f);
            }
            "conv_transpose2d_3x3_stride2_pad1_outpad1" => {
                conv_options(f, [2, 2], "[1, 1]", [1, 1], true);
                expect_option(f, "output_padding", "[0, 0]", [1, 1]);
                check(&ConvTranspose2d::<3, 4, 3, 2, 3, 3, 8, 6>::new([2, 2], [1, 1], [1, 1], [1, 1]), f);
            }
            "conv_transpose2d_4x4_stride2_pad1" => {
                conv_options(f, [2, 2], "[1, 1]", [1, 1], true);
                check(&ConvTranspose2d::<2, 3, 3, 3, 4, 4, 6, 6>::new([2, 2], [1, 1], [0, 0], [1, 1]), f);
            }
            "conv_transpose2d_2x3_dilated_nobias" => {
                conv_options(f, [1, 3], "valid", [2, 2], false);
                expect_option(f, "output_padding", "[0, 0]", [0, 2]);
                check(&ConvTranspose2d::<2, 3, 2, 2, 2, 3, 5, 10, false>::new([1, 3], [0, 0], [0, 2], [2, 2]), f);
            }
            other => panic!("no nn-core layer for the convolution fixture `{other}`"),
        }
    }
}

#[test]
fn pooling_and_upsampling_match_torch() {
    for f in fixtures_in("pool") {
        let f = &f;
        let pool2d = |size: [usize; 2], stride: [usize; 2], padding: [usize; 2]| {
            expect_option(f, "size", "", size);
            expect_option(f, "stride", &format!("{size:?}"), stride);
            expect_option(f, "padding", "[0, 0]", padding);
        };
        let pool1d = |size: usize, stride: usize, padding: usize| {
            expect_option(f, "size", "", size);
            expect_option(f, "stride", &format!("{size:?}"), stride);
            expect_option(f, "padding", "0", padding);
        };
        match f.name.as_str() {
            "max_pool2d_2" => {
                pool2d([2, 2], [2, 2], [0, 0]);
                check(&MaxPool2d::<2, 7, 5, 3, 2>::new([2, 2], [2, 2], [0, 0]), f);
            }
            "max_pool2d_3_stride2_pad1" => {
                pool2d([3, 3], [2, 2], [1, 1]);
                check(&MaxPool2d::<2, 7, 6, 4, 3>::new([3, 3], [2, 2], [1, 1]), f);
            }
            "max_pool2d_3x2_stride1" => {
                pool2d([3, 2], [1, 1], [0, 0]);
                check(&MaxPool2d::<1, 5, 6, 3, 5>::new([3, 2], [1, 1], [0, 0]), f);
            }
            "avg_pool2d_2" => {
                pool2d([2, 2], [2, 2], [0, 0]);
                check(&AvgPool2d::<2, 7, 5, 3, 2>::new([2, 2], [2, 2], [0, 0]), f);
            }
            "avg_pool2d_3_stride2_pad1" => {
                pool2d([3, 3], [2, 2], [1, 1]);
                check(&AvgPool2d::<2, 7, 6, 4, 3>::new([3, 3], [2, 2], [1, 1]), f);
            }
            "avg_pool2d_2x3_stride2x3_pad1" => {
                pool2d([2, 3], [2, 3], [1, 1]);
                check(&AvgPool2d::<3, 6, 7, 4, 3>::new([2, 3], [2, 3], [1, 1]), f);
            }
            "max_pool1d_3_stride2_pad1" => {
                pool1d(3, 2, 1);
                check(&MaxPool1d::<2, 9, 5>::new(3, 2, 1), f);
            }
            "avg_pool1d_3_stride2_pad1" => {
                pool1d(3, 2, 1);
                check(&AvgPool1d::<2, 9, 5>::new(3, 2, 1), f);
            }
            "global_avg_pool2d" => check(&GlobalAvgPool2d::<3, 4, 5>::new(), f),
            "global_max_pool2d" => check(&GlobalMaxPool2d::<3, 4, 5>::new(), f),
            "global_avg_pool1d" => check(&GlobalAvgPool1d::<6, 10>::new(), f),
            "global_max_pool1d" => check(&GlobalMaxPool1d::<6, 10>::new(), f),
            "upsample_nearest_2x3" => {
                expect_option(f, "scale", "", [2, 3]);
                check(&Upsample::<2, 3, 2, 6, 6>::new([2, 3]), f);
            }
            "upsample1d_nearest_2" => {
                expect_option(f, "scale", "", 2);
                check(&Upsample1d::<3, 4, 8>::new(2), f);
            }
            other => panic!("no nn-core layer for the pooling fixture `{other}`"),
        }
        if f.meta("kind").starts_with("Avg") {
            assert_ne!(f.option("count_include_pad"), Some("false"), "{}: padding counts in the average", f.name);
        }
    }
}

#[test]
fn flatten_matches_torch() {
    for f in fixtures_in("reshape") {
        match f.name.as_str() {
            "flatten_2x3x4" => check(&Flatten::<Shape3<2, 3, 4>, 24>::new(), &f),
            "reshape_24_to_4x3x2" => {
                expect_option(&f, "shape", "", [4, 3, 2]);
                check(&Reshape::<Shape1<24>, Shape3<4, 3, 2>>::new(), &f)
            }
            other => panic!("no nn-core layer for the reshape fixture `{other}`"),
        }
    }
}

#[test]
fn batch_norm_matches_torch_in_both_modes() {
    let mut modes = Vec::new();
    for f in fixtures_in("batch_norm") {
        let momentum = f.option_f32("momentum");
        let eps = f.option_f32("eps");
        let name = f.name.as_str();
        // PyTorch's eval mode is the inference mode: running statistics in training too.
        let eval = f.option("training") == Some("false");
        fn mode<S: Shape>(norm: BatchNorm1d<S>, eval: bool) -> BatchNorm1d<S> {
            if eval {
                norm.inference()
            } else {
                norm
            }
        }
        // And so is the run-time evaluation mode (`Model::eval`) of a batch norm declared
        // for training, which must also leave a declared inference mode as it is.
        fn both<L: Layer>(declared: &L, plain: &L, f: &Fixture, eval: bool) {
            check(declared, f);
            if eval {
                check_in_mode(plain, f, false);
                check_in_mode(declared, f, false);
            }
        }
        if name.starts_with("batch_norm2d_") {
            let plain = BatchNorm2d::<3, 4, 5>::new(momentum, eps);
            both(&mode(plain, eval), &plain, &f, eval);
        } else if name.starts_with("batch_norm1d_vector_") {
            assert_eq!(momentum, 0.3, "{name}");
            let plain = BatchNorm1d::<Shape1<5>>::new(momentum, eps);
            both(&mode(plain, eval), &plain, &f, eval);
        } else if name.starts_with("batch_norm1d_signal_") {
            assert_eq!(eps, 1e-3, "{name}");
            let plain = BatchNorm1d::<Shape2<3, 7>>::new(momentum, eps);
            both(&mode(plain, eval), &plain, &f, eval);
        } else {
            panic!("no nn-core layer for the batch-norm fixture `{name}`");
        }
        modes.push(f.option("training").unwrap_or_default().to_owned());
    }
    assert!(modes.iter().any(|m| m == "true") && modes.iter().any(|m| m == "false"), "both modes are covered");
}
