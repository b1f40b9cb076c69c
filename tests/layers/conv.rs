//! Convolution, pooling, reshaping, upsampling and batch-norm layers: forward values
//! against naive `f64` references written from the definitions (direct convolution,
//! scatter for the transposed convolution, window loops for pooling), input and
//! parameter gradients against central differences of the layer's own forward, and
//! batch norm's training and inference behaviour.
//!
//! Every check fills `scratch`, `cache` and `dx` with NaN first (so a layer that reads
//! memory it did not write fails) and starts the parameter gradients at 0.5 (so
//! `backward` must add, not overwrite).
use crate::gradcheck;
use crate::standalone::Standalone;

use gradcheck::{assert_close, assert_close_where, central_differences_f32, uniform, weighted_sum, Tolerance};
use nn_core::layers::{
    AvgPool1d, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv1d, Conv2d, ConvTranspose2d, Flatten, GlobalAvgPool1d,
    GlobalAvgPool2d, GlobalMaxPool1d, GlobalMaxPool2d, MaxPool1d, MaxPool2d, Padding, Reshape, Upsample, Upsample1d,
};
use nn_core::{Layer, Rng, Shape, Shape1, Shape2, Shape3};

/// Forward values: the library sums in f32 (GEMM), the reference in f64.
const FORWARD: Tolerance = Tolerance { abs: 1e-5, rel: 1e-5 };
/// Gradients of layers that are linear in what is differentiated (convolutions,
/// average pooling, upsampling): the central difference is exact up to rounding, so a
/// large step (0.25, exact in f32) keeps the rounding error of the f32 outputs, about
/// 1e-7 * |loss|, divided by the step, far below this.
const LINEAR: Tolerance = Tolerance { abs: 1e-4, rel: 1e-4 };
const LINEAR_STEP: f32 = 0.25;
/// Gradients through batch norm (nonlinear in its input): step 1e-2 leaves a
/// truncation error of order 1e-4 relative, plus f32 rounding of the outputs divided
/// by 2e-2.
const NONLINEAR: Tolerance = Tolerance { abs: 5e-4, rel: 2e-3 };
const NONLINEAR_STEP: f32 = 1e-2;

/// Training forward of a batch with fresh copies of `buffers`, scratch and cache full
/// of NaN: the output, the cache and the updated buffers.
fn run_train<L: Layer>(layer: &L, params: &[f32], buffers: &[f32], x: &[f32]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let batch = x.len() / L::Input::LEN;
    let mut y = vec![f32::NAN; batch * L::Output::LEN];
    let mut s = Standalone::new::<L>(batch, 1);
    s.buffers.copy_from_slice(buffers);
    layer.forward_train(x, &mut y, s.train(params));
    (y, s.cache, s.buffers)
}

/// Inference forward of a batch with scratch full of NaN.
fn run_forward<L: Layer>(layer: &L, params: &[f32], buffers: &[f32], x: &[f32]) -> Vec<f32> {
    let batch = x.len() / L::Input::LEN;
    let mut y = vec![f32::NAN; batch * L::Output::LEN];
    let mut scratch = vec![f32::NAN; batch * L::SCRATCH];
    layer.forward(nn_core::Weights::new(params, buffers), x, &mut y, &mut scratch);
    y
}

/// Checks `backward` against central differences of `forward_train` for the loss
/// `sum(upstream * y)` with a random upstream gradient: the input gradient and every
/// parameter gradient.
fn check_gradients<L: Layer>(
    name: &str,
    layer: &L,
    params: &[f32],
    buffers: &[f32],
    x: &[f32],
    step: f32,
    tol: Tolerance,
) {
    let batch = x.len() / L::Input::LEN;
    let upstream = uniform(&mut Rng::new(99), batch * L::Output::LEN, -1.0, 1.0);
    let mut y = vec![f32::NAN; batch * L::Output::LEN];
    let mut s = Standalone::new::<L>(batch, 1);
    s.buffers.copy_from_slice(buffers);
    layer.forward_train(x, &mut y, s.train(params));

    let mut dy = upstream.clone();
    let mut dx = vec![f32::NAN; x.len()];
    s.grads.fill(0.5);
    layer.backward(x, &y, &mut dy, Some(&mut dx), s.backward(params));
    let mut grads = std::mem::take(&mut s.grads);
    grads.iter_mut().for_each(|g| *g -= 0.5);

    let loss = |params: &[f32], x: &[f32]| (weighted_sum(&upstream, &run_train(layer, params, buffers, x).0), vec![]);
    let numeric_dx = central_differences_f32(x, step, |x| loss(params, x));
    assert_close_where(&format!("{name}: dx"), &dx, &numeric_dx, tol, 0);
    let numeric_grads = central_differences_f32(params, step, |p| loss(p, x));
    assert_close_where(&format!("{name}: parameter gradients"), &grads, &numeric_grads, tol, 0);

    // Without `dx` the parameter gradients are the same.
    let mut dy = upstream.clone();
    s.grads = vec![0.0; L::PARAMS];
    layer.backward(x, &y, &mut dy, None, s.backward(params));
    assert_close(&format!("{name}: gradients without dx"), &s.grads, &gradcheck::widen(&grads), FORWARD);
}

/// Checks a stateless-in-mode layer: `forward` and `forward_train` agree with the
/// reference, and the gradients with central differences.
fn check_layer<L: Layer>(
    name: &str,
    layer: &L,
    params: &[f32],
    x: &[f32],
    reference: &[f64],
    step: f32,
    tol: Tolerance,
) {
    let buffers = vec![0.0; L::BUFFERS];
    let y = run_forward(layer, params, &buffers, x);
    assert_close(&format!("{name}: forward"), &y, reference, FORWARD);
    let (y_train, _, _) = run_train(layer, params, &buffers, x);
    assert_eq!(y, y_train, "{name}: forward and forward_train differ");
    check_gradients(name, layer, params, &buffers, x, step, tol);
}

/// `n` distinct values in a random order, spaced 0.05 apart around 0: no ties, and no
/// finite-difference step of `NONLINEAR_STEP` changes which one is the largest.
fn distinct(n: usize, seed: u64) -> Vec<f32> {
    let mut order: Vec<usize> = (0..n).collect();
    Rng::new(seed).shuffle(&mut order);
    order.iter().map(|&i| (i as f32 - n as f32 / 2.0) * 0.05).collect()
}

/// A 2-D convolution configuration for the references.
#[derive(Clone, Copy)]
struct Geometry {
    channels: usize,
    size: [usize; 2],
    filters: usize,
    kernel: [usize; 2],
    stride: [usize; 2],
    /// Zeros before the first row and column.
    padding: [usize; 2],
    dilation: [usize; 2],
    out: [usize; 2],
}

impl Geometry {
    /// The input coordinate read by output `o` with kernel offset `k` along `axis`.
    fn source(&self, axis: usize, o: usize, k: usize) -> Option<usize> {
        let i = (o * self.stride[axis] + k * self.dilation[axis]) as isize - self.padding[axis] as isize;
        (i >= 0 && (i as usize) < self.size[axis]).then_some(i as usize)
    }
}

/// Direct convolution, `weight[F, C, KH, KW]`:
/// `y[b, f, oy, ox] = bias[f] + sum_{c, i, j} weight[f, c, i, j] x[b, c, iy, ix]`.
fn conv_reference(g: Geometry, params: &[f32], has_bias: bool, x: &[f32]) -> Vec<f64> {
    grouped_conv_reference(g, 1, params, has_bias, x)
}

/// Direct convolution in `groups` groups (PyTorch's `groups`), `weight[F, C / groups,
/// KH, KW]`: filter `f` of group `f / (F / groups)` sums over input channels
/// `group * C / groups + c` for `c < C / groups`.
fn grouped_conv_reference(g: Geometry, groups: usize, params: &[f32], has_bias: bool, x: &[f32]) -> Vec<f64> {
    let [h, w] = g.size;
    let [kh, kw] = g.kernel;
    let [oh, ow] = g.out;
    let (in_group, out_group) = (g.channels / groups, g.filters / groups);
    let weight = &params[..g.filters * in_group * kh * kw];
    let batch = x.len() / (g.channels * h * w);
    let mut y = Vec::new();
    for b in 0..batch {
        for f in 0..g.filters {
            let first = f / out_group * in_group;
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut sum = if has_bias { params[weight.len() + f] as f64 } else { 0.0 };
                    for c in 0..in_group {
                        for i in 0..kh {
                            for j in 0..kw {
                                if let (Some(iy), Some(ix)) = (g.source(0, oy, i), g.source(1, ox, j)) {
                                    sum += weight[((f * in_group + c) * kh + i) * kw + j] as f64
                                        * x[((b * g.channels + first + c) * h + iy) * w + ix] as f64;
                                }
                            }
                        }
                    }
                    y.push(sum);
                }
            }
        }
    }
    y
}

/// Transposed convolution as a scatter, `weight[C, F, KH, KW]`: every input value
/// `x[b, c, iy, ix]` adds `x * weight[c, f, i, j]` to output
/// `(iy * stride + i * dilation - padding, ix * ...)` when that lies in the output.
/// Here `g.size` is the input size and `g.out` the output size.
fn conv_transpose_reference(g: Geometry, params: &[f32], has_bias: bool, x: &[f32]) -> Vec<f64> {
    let [h, w] = g.size;
    let [kh, kw] = g.kernel;
    let [oh, ow] = g.out;
    let weight = &params[..g.channels * g.filters * kh * kw];
    let batch = x.len() / (g.channels * h * w);
    let mut y = vec![0.0f64; batch * g.filters * oh * ow];
    for b in 0..batch {
        for f in 0..g.filters {
            let bias = if has_bias { params[weight.len() + f] as f64 } else { 0.0 };
            y[(b * g.filters + f) * oh * ow..][..oh * ow].fill(bias);
        }
        for c in 0..g.channels {
            for iy in 0..h {
                for ix in 0..w {
                    let v = x[((b * g.channels + c) * h + iy) * w + ix] as f64;
                    for f in 0..g.filters {
                        for i in 0..kh {
                            for j in 0..kw {
                                let oy = (iy * g.stride[0] + i * g.dilation[0]) as isize - g.padding[0] as isize;
                                let ox = (ix * g.stride[1] + j * g.dilation[1]) as isize - g.padding[1] as isize;
                                if oy >= 0 && (oy as usize) < oh && ox >= 0 && (ox as usize) < ow {
                                    let w_at = ((c * g.filters + f) * kh + i) * kw + j;
                                    y[((b * g.filters + f) * oh + oy as usize) * ow + ox as usize] +=
                                        v * weight[w_at] as f64;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    y
}

/// Parameters uniform in [-1, 1).
fn random_params<L: Layer>(seed: u64) -> Vec<f32> {
    uniform(&mut Rng::new(seed), L::PARAMS, -1.0, 1.0)
}

/// Runs the forward and gradient checks of a `Conv2d` against [`conv_reference`].
fn check_conv2d<
    const C: usize,
    const H: usize,
    const W: usize,
    const F: usize,
    const KH: usize,
    const KW: usize,
    const OH: usize,
    const OW: usize,
    const BIAS: bool,
>(
    name: &str,
    layer: Conv2d<C, H, W, F, KH, KW, OH, OW, BIAS>,
    batch: usize,
) {
    let g = Geometry {
        channels: C,
        size: [H, W],
        filters: F,
        kernel: [KH, KW],
        stride: layer.stride(),
        padding: layer.padding(),
        dilation: layer.dilation(),
        out: [OH, OW],
    };
    let params = random_params::<Conv2d<C, H, W, F, KH, KW, OH, OW, BIAS>>(1);
    let x = uniform(&mut Rng::new(2), batch * C * H * W, -1.0, 1.0);
    let reference = conv_reference(g, &params, BIAS, &x);
    check_layer(name, &layer, &params, &x, &reference, LINEAR_STEP, LINEAR);
}

#[test]
fn conv2d_valid() {
    check_conv2d("conv2d 3x7x6 valid 3x3", Conv2d::<3, 7, 6, 4, 3, 3, 5, 4>::new([1, 1], Padding::Valid, [1, 1]), 2);
}

#[test]
fn conv2d_same_odd_and_even_kernels() {
    check_conv2d("conv2d same 3x3", Conv2d::<2, 5, 5, 3, 3, 3, 5, 5>::new([1, 1], Padding::Same, [1, 1]), 2);
    // An even kernel pads one more zero after than before (PyTorch's rule).
    let even = Conv2d::<2, 6, 5, 2, 4, 2, 6, 5>::new([1, 1], Padding::Same, [1, 1]);
    assert_eq!(even.padding(), [1, 0]);
    check_conv2d("conv2d same 4x2", even, 3);
    let dilated = Conv2d::<1, 7, 6, 2, 3, 2, 7, 6>::new([1, 1], Padding::Same, [2, 3]);
    assert_eq!(dilated.padding(), [2, 1]);
    check_conv2d("conv2d same dilated", dilated, 1);
}

#[test]
fn conv2d_strided_padded() {
    check_conv2d(
        "conv2d stride 2 pad 1",
        Conv2d::<2, 7, 8, 3, 3, 3, 4, 4>::new([2, 2], Padding::Explicit([1, 1]), [1, 1]),
        2,
    );
    check_conv2d("conv2d 2x5 stride [3, 1]", Conv2d::<2, 8, 7, 2, 2, 5, 3, 3>::new([3, 1], Padding::Valid, [1, 1]), 2);
    check_conv2d(
        "conv2d 1x1 stride 2 pad [1, 0]",
        Conv2d::<3, 5, 6, 2, 1, 1, 4, 3>::new([2, 2], Padding::Explicit([1, 0]), [1, 1]),
        2,
    );
}

#[test]
fn conv2d_dilated() {
    check_conv2d(
        "conv2d dilation 2 pad [2, 1] stride [1, 2]",
        Conv2d::<2, 9, 7, 3, 3, 3, 9, 3>::new([1, 2], Padding::Explicit([2, 1]), [2, 2]),
        2,
    );
}

#[test]
fn conv2d_pointwise_without_bias() {
    check_conv2d("conv2d 1x1 no bias", Conv2d::<5, 3, 4, 3, 1, 1, 3, 4, false>::new([1, 1], Padding::Valid, [1, 1]), 3);
    assert_eq!(<Conv2d<5, 3, 4, 3, 1, 1, 3, 4, false> as Layer>::PARAMS, 15);
}

#[test]
fn conv2d_larger_than_one_tile() {
    // 20 x 17 = 340 output positions: two tiles, the second starting mid-row.
    check_conv2d("conv2d 20x17", Conv2d::<2, 20, 17, 3, 3, 3, 20, 17>::new([1, 1], Padding::Same, [1, 1]), 2);
    assert_eq!(<Conv2d<2, 20, 17, 3, 3, 3, 20, 17> as Layer>::SCRATCH, 2 * 9 * 256);
}

#[test]
fn conv2d_larger_products() {
    // Products of 16 x 72 x 144: several GEMM register tiles in every dimension.
    check_conv2d(
        "conv2d 8 -> 16 on 12x12",
        Conv2d::<8, 12, 12, 16, 3, 3, 12, 12>::new([1, 1], Padding::Same, [1, 1]),
        2,
    );
}

#[test]
fn conv2d_single_filter_batch_one() {
    // One filter: the GEMM is a single row (the GEMV path).
    check_conv2d(
        "conv2d one filter",
        Conv2d::<3, 6, 6, 1, 3, 3, 3, 3>::new([2, 2], Padding::Explicit([1, 1]), [1, 1]),
        1,
    );
}

#[test]
fn conv1d_strided_padded_dilated() {
    type L = Conv1d<3, 11, 4, 3, 5>;
    let layer = L::new(2, Padding::Explicit([1]), 2);
    let params = random_params::<L>(3);
    let x = uniform(&mut Rng::new(4), 2 * 33, -1.0, 1.0);
    // A 1-D convolution is the 2-D one with height 1.
    let g = Geometry {
        channels: 3,
        size: [1, 11],
        filters: 4,
        kernel: [1, 3],
        stride: [1, 2],
        padding: [0, 1],
        dilation: [1, 2],
        out: [1, 5],
    };
    check_layer("conv1d", &layer, &params, &x, &conv_reference(g, &params, true, &x), LINEAR_STEP, LINEAR);
}

#[test]
fn conv1d_same_even_kernel_without_bias() {
    type L = Conv1d<2, 9, 3, 4, 9, false>;
    let layer = L::new(1, Padding::Same, 1);
    assert_eq!(layer.padding(), 1);
    let params = random_params::<L>(5);
    let x = uniform(&mut Rng::new(6), 3 * 18, -1.0, 1.0);
    let g = Geometry {
        channels: 2,
        size: [1, 9],
        filters: 3,
        kernel: [1, 4],
        stride: [1, 1],
        padding: [0, 1],
        dilation: [1, 1],
        out: [1, 9],
    };
    check_layer("conv1d same", &layer, &params, &x, &conv_reference(g, &params, false, &x), LINEAR_STEP, LINEAR);
}

#[test]
fn conv2d_grouped_and_depthwise() {
    // 4 -> 6 channels in 2 groups, stride 2, padding 1, odd sizes.
    type Grouped = Conv2d<4, 7, 6, 6, 3, 3, 4, 3, true, 2>;
    let layer = Grouped::new([2, 2], Padding::Explicit([1, 1]), [1, 1]);
    assert_eq!((layer.groups(), Grouped::PARAMS, Grouped::SCRATCH), (2, 6 * 2 * 9 + 6, 2 * 9 * 12));
    let mut shapes = Vec::new();
    layer.visit_tensors(None, 0, 0, &mut |t| shapes.push(t.shape.to_vec()));
    assert_eq!(shapes, [vec![6, 2, 3, 3], vec![6]]);
    let g = Geometry {
        channels: 4,
        size: [7, 6],
        filters: 6,
        kernel: [3, 3],
        stride: [2, 2],
        padding: [1, 1],
        dilation: [1, 1],
        out: [4, 3],
    };
    let params = random_params::<Grouped>(7);
    let x = uniform(&mut Rng::new(8), 2 * 4 * 7 * 6, -1.0, 1.0);
    let reference = grouped_conv_reference(g, 2, &params, true, &x);
    check_layer("conv2d groups 2", &layer, &params, &x, &reference, LINEAR_STEP, LINEAR);

    // Depthwise with a depth multiplier of 2, no bias, dilated.
    type Depthwise = Conv2d<3, 8, 7, 6, 3, 2, 4, 5, false, 3>;
    let layer = Depthwise::new([1, 1], Padding::Valid, [2, 2]);
    let g = Geometry {
        channels: 3,
        size: [8, 7],
        filters: 6,
        kernel: [3, 2],
        stride: [1, 1],
        padding: [0, 0],
        dilation: [2, 2],
        out: [4, 5],
    };
    let params = random_params::<Depthwise>(9);
    let x = uniform(&mut Rng::new(10), 3 * 3 * 8 * 7, -1.0, 1.0);
    let reference = grouped_conv_reference(g, 3, &params, false, &x);
    check_layer("conv2d depthwise x2", &layer, &params, &x, &reference, LINEAR_STEP, LINEAR);
}

#[test]
fn conv1d_grouped() {
    type L = Conv1d<6, 11, 9, 3, 6, true, 3>;
    let layer = L::new(2, Padding::Explicit([1]), 1);
    let params = random_params::<L>(11);
    let x = uniform(&mut Rng::new(12), 2 * 66, -1.0, 1.0);
    let g = Geometry {
        channels: 6,
        size: [1, 11],
        filters: 9,
        kernel: [1, 3],
        stride: [1, 2],
        padding: [0, 1],
        dilation: [1, 1],
        out: [1, 6],
    };
    let reference = grouped_conv_reference(g, 3, &params, true, &x);
    check_layer("conv1d groups 3", &layer, &params, &x, &reference, LINEAR_STEP, LINEAR);
}

/// Runs the forward and gradient checks of a `ConvTranspose2d`.
fn check_conv_transpose<
    const C: usize,
    const H: usize,
    const W: usize,
    const F: usize,
    const KH: usize,
    const KW: usize,
    const OH: usize,
    const OW: usize,
    const BIAS: bool,
>(
    name: &str,
    layer: ConvTranspose2d<C, H, W, F, KH, KW, OH, OW, BIAS>,
    batch: usize,
) {
    let g = Geometry {
        channels: C,
        size: [H, W],
        filters: F,
        kernel: [KH, KW],
        stride: layer.stride(),
        padding: layer.padding(),
        dilation: layer.dilation(),
        out: [OH, OW],
    };
    let params = random_params::<ConvTranspose2d<C, H, W, F, KH, KW, OH, OW, BIAS>>(7);
    let x = uniform(&mut Rng::new(8), batch * C * H * W, -1.0, 1.0);
    let reference = conv_transpose_reference(g, &params, BIAS, &x);
    check_layer(name, &layer, &params, &x, &reference, LINEAR_STEP, LINEAR);
}

#[test]
fn conv_transpose2d_output_padding() {
    // (4 - 1) * 2 - 2 + 2 + 1 + 1 = 8 and (3 - 1) * 2 - 2 + 2 + 1 + 1 = 6.
    check_conv_transpose(
        "conv_transpose2d stride 2 pad 1 output_padding 1",
        ConvTranspose2d::<3, 4, 3, 2, 3, 3, 8, 6>::new([2, 2], [1, 1], [1, 1], [1, 1]),
        2,
    );
}

#[test]
fn conv_transpose2d_dcgan_upsampling() {
    check_conv_transpose(
        "conv_transpose2d 4x4 stride 2 pad 1",
        ConvTranspose2d::<2, 3, 3, 3, 4, 4, 6, 6>::new([2, 2], [1, 1], [0, 0], [1, 1]),
        2,
    );
}

#[test]
fn conv_transpose2d_dilated_asymmetric_without_bias() {
    // Height: (3 - 1) + 2 * 1 + 1 = 5; width: (2 - 1) * 3 + 2 * 2 + 2 + 1 = 10.
    check_conv_transpose(
        "conv_transpose2d dilation 2 stride [1, 3] output_padding [0, 2]",
        ConvTranspose2d::<2, 3, 2, 2, 2, 3, 5, 10, false>::new([1, 3], [0, 0], [0, 2], [2, 2]),
        3,
    );
}

#[test]
fn conv_transpose2d_larger_products() {
    // Products of 72 x 16 x 64.
    check_conv_transpose(
        "conv_transpose2d 16 -> 8, 8x8 -> 16x16",
        ConvTranspose2d::<16, 8, 8, 8, 3, 3, 16, 16>::new([2, 2], [1, 1], [1, 1], [1, 1]),
        2,
    );
}

#[test]
fn conv_transpose2d_pointwise_and_large() {
    check_conv_transpose(
        "conv_transpose2d 1x1",
        ConvTranspose2d::<3, 2, 5, 2, 1, 1, 2, 5>::new([1, 1], [0, 0], [0, 0], [1, 1]),
        2,
    );
    // 18 x 16 = 288 input positions: two tiles.
    check_conv_transpose(
        "conv_transpose2d 18x16",
        ConvTranspose2d::<1, 18, 16, 2, 3, 3, 18, 16>::new([1, 1], [1, 1], [0, 0], [1, 1]),
        1,
    );
}

/// Naive pooling over `planes` of `h x w` with both-sided padding: max ignores the
/// padding, average divides by the whole window.
fn pool_reference(
    max: bool,
    x: &[f32],
    [h, w]: [usize; 2],
    size: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    [oh, ow]: [usize; 2],
) -> Vec<f64> {
    let mut y = Vec::new();
    for plane in x.chunks(h * w) {
        for oy in 0..oh {
            for ox in 0..ow {
                let (mut best, mut sum) = (f64::NEG_INFINITY, 0.0);
                for i in 0..size[0] {
                    for j in 0..size[1] {
                        let iy = (oy * stride[0] + i) as isize - padding[0] as isize;
                        let ix = (ox * stride[1] + j) as isize - padding[1] as isize;
                        if iy >= 0 && (iy as usize) < h && ix >= 0 && (ix as usize) < w {
                            let v = plane[iy as usize * w + ix as usize] as f64;
                            best = best.max(v);
                            sum += v;
                        }
                    }
                }
                y.push(if max { best } else { sum / (size[0] * size[1]) as f64 });
            }
        }
    }
    y
}

#[test]
fn max_and_avg_pool2d() {
    fn check<const C: usize, const H: usize, const W: usize, const OH: usize, const OW: usize>(
        size: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
    ) {
        let x = distinct(2 * C * H * W, (H * 31 + W) as u64);
        let name = format!("[{C}, {H}, {W}] size {size:?} stride {stride:?} padding {padding:?}");
        let max = MaxPool2d::<C, H, W, OH, OW>::new(size, stride, padding);
        let reference = pool_reference(true, &x, [H, W], size, stride, padding, [OH, OW]);
        check_layer(&format!("max pool {name}"), &max, &[], &x, &reference, NONLINEAR_STEP, LINEAR);
        let avg = AvgPool2d::<C, H, W, OH, OW>::new(size, stride, padding);
        let reference = pool_reference(false, &x, [H, W], size, stride, padding, [OH, OW]);
        check_layer(&format!("avg pool {name}"), &avg, &[], &x, &reference, LINEAR_STEP, LINEAR);
    }
    check::<2, 7, 5, 3, 2>([2, 2], [2, 2], [0, 0]);
    check::<2, 7, 6, 4, 3>([3, 3], [2, 2], [1, 1]);
    check::<1, 5, 6, 3, 5>([3, 2], [1, 1], [0, 0]);
    check::<3, 6, 7, 4, 3>([2, 3], [2, 3], [1, 1]);
}

#[test]
fn max_and_avg_pool1d() {
    let x = distinct(2 * 2 * 9, 11);
    let (size, stride, padding) = (3, 2, 1);
    let max = MaxPool1d::<2, 9, 5>::new(size, stride, padding);
    let reference = pool_reference(true, &x, [1, 9], [1, 3], [1, 2], [0, 1], [1, 5]);
    check_layer("max pool 1d", &max, &[], &x, &reference, NONLINEAR_STEP, LINEAR);
    let avg = AvgPool1d::<2, 9, 5>::new(size, stride, padding);
    let reference = pool_reference(false, &x, [1, 9], [1, 3], [1, 2], [0, 1], [1, 5]);
    check_layer("avg pool 1d", &avg, &[], &x, &reference, LINEAR_STEP, LINEAR);
}

#[test]
fn max_pool_sends_the_gradient_to_the_first_maximum() {
    // Ties: PyTorch picks the first maximum of the window in row-major order.
    let pool = MaxPool2d::<1, 2, 2, 1, 1>::new([2, 2], [2, 2], [0, 0]);
    let x = [1.0, 3.0, 3.0, 2.0];
    let y = run_forward(&pool, &[], &[], &x);
    assert_eq!(y, [3.0]);
    let mut dx = [f32::NAN; 4];
    pool.backward(&x, &y, &mut [1.5], Some(&mut dx), Standalone::of(&pool, 1, 0).backward(&[]));
    assert_eq!(dx, [0.0, 1.5, 0.0, 0.0]);
}

#[test]
fn global_pools() {
    let x = distinct(3 * 4 * 5 * 2, 12);
    let per_channel = |f: fn(&[f32]) -> f64, plane: usize| x.chunks(plane).map(f).collect::<Vec<f64>>();
    let mean = |p: &[f32]| p.iter().map(|&v| v as f64).sum::<f64>() / p.len() as f64;
    let max = |p: &[f32]| p.iter().map(|&v| v as f64).fold(f64::NEG_INFINITY, f64::max);

    let layer = GlobalAvgPool2d::<3, 4, 5>::new();
    check_layer("global avg 2d", &layer, &[], &x, &per_channel(mean, 20), LINEAR_STEP, LINEAR);
    let layer = GlobalMaxPool2d::<3, 4, 5>::new();
    check_layer("global max 2d", &layer, &[], &x, &per_channel(max, 20), NONLINEAR_STEP, LINEAR);
    let layer = GlobalAvgPool1d::<6, 10>::new();
    check_layer("global avg 1d", &layer, &[], &x, &per_channel(mean, 10), LINEAR_STEP, LINEAR);
    let layer = GlobalMaxPool1d::<6, 10>::new();
    check_layer("global max 1d", &layer, &[], &x, &per_channel(max, 10), NONLINEAR_STEP, LINEAR);
    assert_eq!(<GlobalAvgPool2d<3, 4, 5> as Layer>::Output::DIMS, &[3]);
}

#[test]
fn upsample_nearest() {
    let x = uniform(&mut Rng::new(13), 2 * 2 * 3 * 2, -1.0, 1.0);
    let mut reference = Vec::new();
    for plane in x.chunks(6) {
        for oy in 0..6 {
            for ox in 0..6 {
                reference.push(plane[(oy / 2) * 2 + ox / 3] as f64);
            }
        }
    }
    let layer = Upsample::<2, 3, 2, 6, 6>::new([2, 3]);
    check_layer("upsample [2, 3]", &layer, &[], &x, &reference, LINEAR_STEP, LINEAR);

    let x = uniform(&mut Rng::new(14), 2 * 3 * 4, -1.0, 1.0);
    let reference: Vec<f64> = x.chunks(4).flat_map(|p| (0..8).map(move |o| p[o / 2] as f64)).collect();
    let layer = Upsample1d::<3, 4, 8>::new(2);
    check_layer("upsample1d 2", &layer, &[], &x, &reference, LINEAR_STEP, LINEAR);
}

#[test]
fn flatten_and_reshape_keep_the_values() {
    let x = uniform(&mut Rng::new(15), 2 * 24, -1.0, 1.0);
    let same = gradcheck::widen(&x);
    check_layer("flatten", &Flatten::<Shape3<2, 3, 4>, 24>::new(), &[], &x, &same, LINEAR_STEP, LINEAR);
    check_layer("reshape", &Reshape::<Shape1<24>, Shape3<4, 3, 2>>::new(), &[], &x, &same, LINEAR_STEP, LINEAR);
    check_layer("reshape 2d", &Reshape::<Shape3<2, 3, 4>, Shape2<6, 4>>::new(), &[], &x, &same, LINEAR_STEP, LINEAR);
}

/// Batch norm in `f64` from its definition: per channel (first dimension) over the
/// batch and the other dimensions, `(y, batch mean, biased variance)`.
fn batch_norm_reference(
    x: &[f32],
    channels: usize,
    spatial: usize,
    gamma: &[f32],
    beta: &[f32],
    eps: f64,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let values = |c: usize| {
        x.chunks(channels * spatial).flat_map(move |s| s[c * spatial..(c + 1) * spatial].iter().map(|&v| v as f64))
    };
    let n = (x.len() / channels) as f64;
    let mean: Vec<f64> = (0..channels).map(|c| values(c).sum::<f64>() / n).collect();
    let var: Vec<f64> = (0..channels).map(|c| values(c).map(|v| (v - mean[c]).powi(2)).sum::<f64>() / n).collect();
    let y = x
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let c = i / spatial % channels;
            (v as f64 - mean[c]) / (var[c] + eps).sqrt() * gamma[c] as f64 + beta[c] as f64
        })
        .collect();
    (y, mean, var)
}

/// Checks a batch-norm layer in training mode: output, running statistics after two
/// steps, gradients; and in inference mode against the running statistics.
fn check_batch_norm<L: Layer>(name: &str, layer: &L, channels: usize, batch: usize, momentum: f64, eps: f64) {
    let len = L::Input::LEN;
    let spatial = len / channels;
    let mut rng = Rng::new(16);
    let params = [uniform(&mut rng, channels, 0.5, 2.0), uniform(&mut rng, channels, -1.0, 1.0)].concat();
    let (gamma, beta) = params.split_at(channels);
    let mut buffers = vec![f32::NAN; L::BUFFERS];
    layer.init(&mut vec![0.0; L::PARAMS], &mut buffers, &mut rng);
    assert_eq!(buffers[..channels], vec![0.0; channels][..], "{name}: running_mean starts at 0");
    assert_eq!(buffers[channels..2 * channels], vec![1.0; channels][..], "{name}: running_var starts at 1");
    assert_eq!(buffers[2 * channels], 0.0, "{name}: num_batches_tracked starts at 0");

    // Shifted and scaled so that normalisation has work to do.
    let x: Vec<f32> = uniform(&mut rng, batch * len, -1.0, 1.0).iter().map(|v| 3.0 * v + 1.5).collect();
    let (reference, mean, var) = batch_norm_reference(&x, channels, spatial, gamma, beta, eps);
    let (y, _, after_one) = run_train(layer, &params, &buffers, &x);
    assert_close(&format!("{name}: training output"), &y, &reference, FORWARD);

    // Running statistics: unbiased variance, momentum, counted steps.
    let n = (batch * spatial) as f64;
    let expected_mean: Vec<f64> = mean.iter().map(|m| momentum * m).collect();
    let expected_var: Vec<f64> = var.iter().map(|v| (1.0 - momentum) + momentum * v * n / (n - 1.0)).collect();
    assert_close(&format!("{name}: running_mean"), &after_one[..channels], &expected_mean, FORWARD);
    assert_close(&format!("{name}: running_var"), &after_one[channels..2 * channels], &expected_var, FORWARD);
    assert_eq!(after_one[2 * channels], 1.0, "{name}: num_batches_tracked");
    let x2: Vec<f32> = x.iter().map(|v| 0.5 * v - 1.0).collect();
    let (_, mean2, var2) = batch_norm_reference(&x2, channels, spatial, gamma, beta, eps);
    let (_, _, after_two) = run_train(layer, &params, &after_one, &x2);
    let expected_mean: Vec<f64> =
        (0..channels).map(|c| (1.0 - momentum) * expected_mean[c] + momentum * mean2[c]).collect();
    let expected_var: Vec<f64> =
        (0..channels).map(|c| (1.0 - momentum) * expected_var[c] + momentum * var2[c] * n / (n - 1.0)).collect();
    assert_close(&format!("{name}: running_mean after two steps"), &after_two[..channels], &expected_mean, FORWARD);
    assert_close(
        &format!("{name}: running_var after two steps"),
        &after_two[channels..2 * channels],
        &expected_var,
        FORWARD,
    );
    assert_eq!(after_two[2 * channels], 2.0, "{name}: num_batches_tracked after two steps");

    // Inference uses the running statistics, not the batch's.
    let y = run_forward(layer, &params, &after_two, &x);
    let expected: Vec<f64> = x
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let c = i / spatial % channels;
            (v as f64 - expected_mean[c]) / (expected_var[c] + eps).sqrt() * gamma[c] as f64 + beta[c] as f64
        })
        .collect();
    assert_close(&format!("{name}: inference output"), &y, &expected, FORWARD);
    // A single sample in inference mode is normalised the same way.
    let one = run_forward(layer, &params, &after_two, &x[..len]);
    assert_eq!(one, y[..len], "{name}: batch-1 inference");

    check_gradients(name, layer, &params, &buffers, &x, NONLINEAR_STEP, NONLINEAR);
}

#[test]
fn batch_norm2d_train_and_inference() {
    check_batch_norm("batch_norm2d", &BatchNorm2d::<3, 4, 5>::new(0.1, 1e-5), 3, 2, 0.1, 1e-5);
    check_batch_norm("batch_norm2d momentum 0.3", &BatchNorm2d::<2, 3, 3>::new(0.3, 1e-3), 2, 3, 0.3, 1e-3);
}

#[test]
fn batch_norm1d_on_vectors_and_signals() {
    check_batch_norm("batch_norm1d [5]", &BatchNorm1d::<Shape1<5>>::new(0.1, 1e-5), 5, 6, 0.1, 1e-5);
    check_batch_norm("batch_norm1d [3, 7]", &BatchNorm1d::<Shape2<3, 7>>::new(0.1, 1e-5), 3, 2, 0.1, 1e-5);
}

#[test]
fn batch_norm_tensors_are_named_as_pytorch() {
    let layer = BatchNorm2d::<4, 2, 2>::default();
    assert_eq!((layer.momentum(), layer.eps()), (0.1, 1e-5));
    assert_eq!(<BatchNorm2d<4, 2, 2> as Layer>::KIND, "BatchNorm2d");
    assert_eq!(<BatchNorm1d<Shape2<4, 3>> as Layer>::KIND, "BatchNorm1d");
    let mut seen = Vec::new();
    layer.visit_tensors(None, 10, 20, &mut |t| {
        seen.push((t.path.to_string(), t.shape.to_vec(), t.offset, t.len, t.trainable))
    });
    assert_eq!(
        seen,
        [
            ("weight".to_string(), vec![4], 10, 4, true),
            ("bias".to_string(), vec![4], 14, 4, true),
            ("running_mean".to_string(), vec![4], 20, 4, false),
            ("running_var".to_string(), vec![4], 24, 4, false),
            ("num_batches_tracked".to_string(), vec![], 28, 1, false),
        ]
    );
}

#[test]
fn conv_tensors_are_named_as_pytorch() {
    let mut seen = Vec::new();
    let mut record = |t: &nn_core::TensorInfo<'_>| seen.push((t.path.to_string(), t.shape.to_vec(), t.offset));
    Conv2d::<3, 8, 8, 16, 5, 3, 4, 6>::new([1, 1], Padding::Valid, [1, 1]).visit_tensors(None, 0, 0, &mut record);
    ConvTranspose2d::<16, 4, 6, 2, 3, 3, 4, 6, false>::new([1, 1], [1, 1], [0, 0], [1, 1]).visit_tensors(
        None,
        100,
        0,
        &mut record,
    );
    Conv1d::<2, 9, 4, 3, 7>::new(1, Padding::Valid, 1).visit_tensors(None, 7, 0, &mut record);
    assert_eq!(
        seen,
        [
            ("weight".to_string(), vec![16, 3, 5, 3], 0),
            ("bias".to_string(), vec![16], 720),
            ("weight".to_string(), vec![16, 2, 3, 3], 100),
            ("weight".to_string(), vec![4, 2, 3], 7),
            ("bias".to_string(), vec![4], 31),
        ]
    );
}

#[test]
fn output_size_helpers_follow_pytorch() {
    use nn_core::layers::{conv_output_size, conv_transpose_output_size, pool_output_size, same_padding};
    assert_eq!(conv_output_size(8, 3, 1, 1, 1), 8);
    assert_eq!(conv_output_size(9, 3, 1, 2, 2), 9);
    assert_eq!(conv_output_size(7, 3, 2, 0, 1), 3);
    assert_eq!(conv_output_size(3, 5, 1, 0, 1), 0);
    assert_eq!(conv_output_size(3, 5, 1, 1, 1), 1);
    assert_eq!(conv_output_size(3, 3, 0, 0, 1), 0);
    assert_eq!(same_padding(5, 2), [4, 4]);
    assert_eq!(same_padding(2, 3), [1, 2]);
    assert_eq!(conv_transpose_output_size(7, 4, 2, 1, 0, 1), 14);
    assert_eq!(conv_transpose_output_size(1, 1, 1, 1, 0, 1), 0);
    assert_eq!(pool_output_size(7, 3, 2, 1), 4);
    assert_eq!(pool_output_size(1, 2, 2, 0), 0);
}

#[test]
#[should_panic(expected = "`Same` padding needs stride 1")]
fn same_padding_with_stride_is_rejected() {
    let _ = Conv2d::<1, 8, 8, 1, 3, 3, 4, 4>::new([2, 2], Padding::Same, [1, 1]);
}

#[test]
#[should_panic(expected = "the output size in the type differs")]
fn a_wrong_output_size_is_rejected() {
    let _ = Conv2d::<1, 8, 8, 1, 3, 3, 8, 8>::new([1, 1], Padding::Valid, [1, 1]);
}

#[test]
#[should_panic(expected = "larger than the padded input")]
fn a_kernel_larger_than_the_input_is_rejected() {
    let _ = Conv1d::<1, 2, 1, 5, 1>::new(1, Padding::Explicit([1]), 1);
}

#[test]
#[should_panic(expected = "stride must be at least 1")]
fn a_zero_stride_is_rejected() {
    let _ = MaxPool2d::<1, 4, 4, 4, 4>::new([1, 1], [0, 1], [0, 0]);
}

#[test]
#[should_panic(expected = "output padding must be smaller")]
fn an_output_padding_as_large_as_the_stride_is_rejected() {
    let _ = ConvTranspose2d::<1, 3, 3, 1, 3, 3, 7, 7>::new([2, 2], [0, 0], [2, 2], [1, 1]);
}

#[test]
fn exactly_the_declared_scratch_suffices() {
    // Exactly `batch * SCRATCH` floats of scratch and `batch * CACHE` of cache suffice
    // (the slices would panic past their end), at batch 1 and batch 3.
    type L = Conv2d<3, 9, 9, 4, 3, 3, 5, 5>;
    let layer = L::new([2, 2], Padding::Explicit([1, 1]), [1, 1]);
    let params = random_params::<L>(20);
    for batch in [1, 3] {
        let x = uniform(&mut Rng::new(21), batch * 243, -1.0, 1.0);
        let mut s = Standalone::of(&layer, batch, 0);
        let mut y = vec![0.0; batch * 100];
        layer.forward(nn_core::Weights::new(&params, &[]), &x, &mut y, &mut s.scratch);
        let mut dx = vec![0.0; x.len()];
        layer.backward(&x, &y, &mut y.clone(), Some(&mut dx), s.backward(&params));
    }
}

/// A batch norm in inference mode (a frozen batch norm being fine-tuned through):
/// `forward_train` equals `forward` with the running statistics and leaves them
/// unchanged, and `backward` matches central differences of it.
fn check_inference_mode<L: Layer>(name: &str, layer: &L, channels: usize, batch: usize) {
    let len = L::Input::LEN;
    let mut rng = Rng::new(17);
    let params = [uniform(&mut rng, channels, 0.5, 2.0), uniform(&mut rng, channels, -1.0, 1.0)].concat();
    let buffers = [uniform(&mut rng, channels, -1.0, 1.0), uniform(&mut rng, channels, 0.5, 2.0), vec![4.0]].concat();
    let x: Vec<f32> = uniform(&mut rng, batch * len, -1.0, 1.0).iter().map(|v| 3.0 * v + 1.5).collect();
    let (y, _, after) = run_train(layer, &params, &buffers, &x);
    assert_eq!(after, buffers, "{name}: a training forward in inference mode changed the running statistics");
    assert_eq!(y, run_forward(layer, &params, &buffers, &x), "{name}: forward_train and forward differ");
    check_gradients(name, layer, &params, &buffers, &x, NONLINEAR_STEP, NONLINEAR);
}

/// `L` whose training forwards run in evaluation mode (`TrainCtx::training` false),
/// as `Model::eval` runs them.
#[derive(Clone, Copy)]
struct EvalMode<L>(L);

impl<L: Layer> Layer for EvalMode<L> {
    type Input = L::Input;
    type Output = L::Output;
    const PARAMS: usize = L::PARAMS;
    const BUFFERS: usize = L::BUFFERS;
    const CACHE: usize = L::CACHE;
    const SCRATCH: usize = L::SCRATCH;
    const KIND: &'static str = L::KIND;
    const TENSORS: &'static nn_core::weights::TensorTree = L::TENSORS;

    fn init(&self, params: &mut [f32], buffers: &mut [f32], rng: &mut Rng) {
        self.0.init(params, buffers, rng)
    }

    fn forward(&self, w: nn_core::Weights<'_>, x: &[f32], y: &mut [f32], scratch: &mut [f32]) {
        self.0.forward(w, x, y, scratch)
    }

    fn forward_train(&self, x: &[f32], y: &mut [f32], cx: nn_core::TrainCtx<'_>) {
        self.0.forward_train(x, y, nn_core::TrainCtx { training: false, ..cx })
    }

    fn backward(&self, x: &[f32], y: &[f32], dy: &mut [f32], dx: Option<&mut [f32]>, cx: nn_core::BackwardCtx<'_>) {
        self.0.backward(x, y, dy, dx, cx)
    }
}

#[test]
fn batch_norm_in_eval_mode_trains_through_running_statistics() {
    // The run-time evaluation mode of a batch norm declared for training is its
    // inference mode: running statistics unchanged, central differences of `forward`.
    check_inference_mode("batch_norm2d eval", &EvalMode(BatchNorm2d::<3, 4, 5>::new(0.1, 1e-5)), 3, 2);
    check_inference_mode("batch_norm1d [5] eval", &EvalMode(BatchNorm1d::<Shape1<5>>::new(0.1, 1e-3)), 5, 6);
    check_inference_mode("batch_norm1d [3, 7] eval", &EvalMode(BatchNorm1d::<Shape2<3, 7>>::default()), 3, 2);
}

#[test]
fn batch_norm_in_inference_mode_trains_through_running_statistics() {
    let norm2d = BatchNorm2d::<3, 4, 5>::new(0.1, 1e-5).inference();
    assert!(norm2d.is_inference() && !BatchNorm2d::<3, 4, 5>::default().is_inference());
    check_inference_mode("batch_norm2d inference", &norm2d, 3, 2);
    check_inference_mode("batch_norm1d [5] inference", &BatchNorm1d::<Shape1<5>>::new(0.1, 1e-3).inference(), 5, 6);
    check_inference_mode("batch_norm1d [3, 7] inference", &BatchNorm1d::<Shape2<3, 7>>::default().inference(), 3, 2);
}
