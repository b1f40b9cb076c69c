//! Convolutions: `Conv1d`, `Conv2d` and `ConvTranspose2d`, channels first, with
//! PyTorch's parameter layouts and `state_dict` names.
//!
//! | layer | input | output | `weight` | `bias` |
//! |---|---|---|---|---|
//! | `Conv1d<C, L, F, K, OL, BIAS, G>` | `[C, L]` | `[F, OL]` | `[F, C / G, K]` | `[F]` |
//! | `Conv2d<C, H, W, F, KH, KW, OH, OW, BIAS, G>` | `[C, H, W]` | `[F, OH, OW]` | `[F, C / G, KH, KW]` | `[F]` |
//! | `ConvTranspose2d<C, H, W, F, KH, KW, OH, OW>` | `[C, H, W]` | `[F, OH, OW]` | `[C, F, KH, KW]` | `[F]` |
//!
//! A `false` `BIAS` argument drops the bias. `G` (default 1) splits a convolution into
//! groups, as PyTorch's `groups`: `G` must divide `C` and `F`, and output channels
//! `j * F / G..` see only input channels `j * C / G..`; `G == C` is a depthwise
//! convolution. Every shape is in the type; stride,
//! padding and dilation are values given to `new`, which checks them against the
//! shapes: the output size along an axis must be
//!
//! ```text
//! convolution:            (in + pad_before + pad_after - dilation * (kernel - 1) - 1) / stride + 1
//! transposed convolution: (in - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1
//! ```
//!
//! ([`conv_output_size`], [`conv_transpose_output_size`]). `new` is a `const fn` that
//! panics on a mismatch, so a layer built in a `const` (as `network!` does) with a wrong
//! output shape, a kernel larger than the padded input or a zero stride does not
//! compile:
//!
//! ```compile_fail
//! use nn_core::layers::{Conv2d, Padding};
//! // A valid 3x3 convolution of an 8x8 image is 6x6, not 8x8.
//! const CONV: Conv2d<1, 8, 8, 4, 3, 3, 8, 8> = Conv2d::new([1, 1], Padding::Valid, [1, 1]);
//! ```
//!
//! ```
//! use nn_core::layers::{Conv2d, Padding};
//! use nn_core::Layer;
//!
//! // 1 x 5 x 5 -> 2 x 5 x 5: two 3x3 filters, `Same` padding.
//! type Conv = Conv2d<1, 5, 5, 2, 3, 3, 5, 5>;
//! const CONV: Conv = Conv2d::new([1, 1], Padding::Same, [1, 1]);
//!
//! let mut params = vec![0.0; Conv::PARAMS]; // weight [2, 1, 3, 3], then bias [2]
//! params[..9].fill(1.0); // filter 0 sums its 3x3 neighbourhood
//! params[18 + 1] = 0.5; // filter 1 is zero, with bias 0.5
//! let x = [1.0; 25];
//! let mut y = [0.0; 50];
//! let mut scratch = vec![0.0; Conv::SCRATCH];
//! CONV.forward(nn_core::Weights::new(&params, &[]), &x, &mut y, &mut scratch);
//! assert_eq!(y[0], 4.0); // a corner sees 4 pixels and 5 zeros of padding
//! assert_eq!(y[12], 9.0); // the centre sees 9 pixels
//! assert!(y[25..].iter().all(|&v| v == 0.5));
//! ```
use crate::kernels::conv::{self, ConvGeometry};
use crate::layer::{BackwardCtx, Layer, TrainCtx, Weights};
use crate::rng::Rng;
use crate::shape::{Shape2, Shape3};

/// The zero padding of a convolution along each of its `N` spatial axes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding<const N: usize> {
    /// No padding (PyTorch's and Keras' `"valid"`).
    Valid,
    /// The output has the input's size (PyTorch's `padding="same"`, stride 1 only):
    /// `dilation * (kernel - 1)` zeros in all, half before and the rest after (one
    /// more after when it is odd, as PyTorch). See [`same_padding`].
    Same,
    /// This many zeros before and after, per axis (PyTorch's `padding=(ph, pw)`).
    Explicit([usize; N]),
}

impl<const N: usize> Padding<N> {
    /// The zeros `[before, after]` along `axis`.
    const fn axis(&self, axis: usize, kernel: usize, dilation: usize) -> [usize; 2] {
        match self {
            Padding::Valid => [0, 0],
            Padding::Same => same_padding(kernel, dilation),
            Padding::Explicit(p) => [p[axis], p[axis]],
        }
    }
}

/// The output length of a convolution along one axis with `padding` zeros on each side
/// (PyTorch's formula); 0 when the dilated kernel is longer than the padded input or
/// `stride` is 0.
///
/// ```
/// use nn_core::layers::conv_output_size;
/// assert_eq!(conv_output_size(28, 5, 1, 0, 1), 24);
/// assert_eq!(conv_output_size(7, 3, 2, 1, 1), 4);
/// assert_eq!(conv_output_size(2, 3, 1, 0, 1), 0);
/// ```
pub const fn conv_output_size(input: usize, kernel: usize, stride: usize, padding: usize, dilation: usize) -> usize {
    output_len(input + 2 * padding, kernel, stride, dilation)
}

/// The output length of a convolution over `padded` values (input plus padding).
pub(crate) const fn output_len(padded: usize, kernel: usize, stride: usize, dilation: usize) -> usize {
    if stride == 0 || kernel == 0 || dilation * (kernel - 1) >= padded {
        return 0;
    }
    (padded - dilation * (kernel - 1) - 1) / stride + 1
}

/// The zeros `[before, after]` that `Padding::Same` puts along an axis:
/// `dilation * (kernel - 1)` in all, the odd one after (PyTorch's rule).
///
/// ```
/// use nn_core::layers::same_padding;
/// assert_eq!(same_padding(3, 1), [1, 1]);
/// assert_eq!(same_padding(4, 1), [1, 2]);
/// assert_eq!(same_padding(3, 2), [2, 2]);
/// ```
pub const fn same_padding(kernel: usize, dilation: usize) -> [usize; 2] {
    let total = dilation * kernel.saturating_sub(1);
    [total / 2, total - total / 2]
}

/// The output length of a transposed convolution along one axis (PyTorch's
/// `ConvTranspose` formula); 0 when the padding removes everything.
///
/// ```
/// use nn_core::layers::conv_transpose_output_size;
/// assert_eq!(conv_transpose_output_size(4, 4, 2, 1, 0, 1), 8); // DCGAN upsampling
/// assert_eq!(conv_transpose_output_size(3, 3, 2, 1, 1, 1), 6);
/// ```
pub const fn conv_transpose_output_size(
    input: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    output_padding: usize,
    dilation: usize,
) -> usize {
    if input == 0 || kernel == 0 {
        return 0;
    }
    let full = (input - 1) * stride + dilation * (kernel - 1) + output_padding + 1;
    full.saturating_sub(2 * padding)
}

/// Checks one axis of a convolution and returns its padding before the first element.
/// A `const` panic here is a compile error where the layer is built in a `const`.
const fn check_conv_axis(
    input: usize,
    kernel: usize,
    output: usize,
    stride: usize,
    padding: [usize; 2],
    dilation: usize,
    same: bool,
) -> usize {
    assert!(stride > 0, "convolution: the stride must be at least 1");
    assert!(dilation > 0, "convolution: the dilation must be at least 1");
    assert!(kernel > 0, "convolution: the kernel must be at least 1");
    assert!(
        !same || stride == 1,
        "convolution: `Same` padding needs stride 1 (PyTorch rejects padding='same' with strided convolutions); \
         give the padding explicitly"
    );
    let padded = input + padding[0] + padding[1];
    assert!(dilation * (kernel - 1) < padded, "convolution: the (dilated) kernel is larger than the padded input");
    assert!(
        output == output_len(padded, kernel, stride, dilation),
        "convolution: the output size in the type differs from the one the input size, kernel, stride, padding and \
         dilation give (see `conv_output_size`)"
    );
    padding[0]
}

/// Checks one axis of a transposed convolution.
const fn check_transpose_axis(
    input: usize,
    kernel: usize,
    output: usize,
    stride: usize,
    padding: usize,
    output_padding: usize,
    dilation: usize,
) {
    assert!(stride > 0, "transposed convolution: the stride must be at least 1");
    assert!(dilation > 0, "transposed convolution: the dilation must be at least 1");
    assert!(kernel > 0, "transposed convolution: the kernel must be at least 1");
    assert!(
        output_padding < stride || output_padding < dilation,
        "transposed convolution: the output padding must be smaller than the stride or the dilation (as PyTorch)"
    );
    let size = conv_transpose_output_size(input, kernel, stride, padding, output_padding, dilation);
    assert!(size > 0, "transposed convolution: the padding leaves a zero-sized output");
    assert!(
        output == size,
        "transposed convolution: the output size in the type differs from the one the input size, kernel, stride, \
         padding, output padding and dilation give (see `conv_transpose_output_size`)"
    );
}

/// Glorot (Xavier) uniform weights, Keras' default for convolutions:
/// `U(-l, l)` with `l = sqrt(6 / (fan_in + fan_out))`; zero bias.
fn glorot_uniform(params: &mut [f32], weights: usize, fan_in: usize, fan_out: usize, rng: &mut Rng) {
    let limit = libm::sqrtf(6.0 / (fan_in + fan_out) as f32);
    let (w, b) = params.split_at_mut(weights);
    w.iter_mut().for_each(|v| *v = rng.uniform_in(-limit, limit));
    b.fill(0.0);
}

/// The weight and, with `bias`, the bias of a parameter slice.
fn split_params(params: &[f32], weights: usize, filters: usize, bias: bool) -> (&[f32], Option<&[f32]>) {
    let (w, b) = params.split_at(weights);
    (w, if bias { Some(&b[..filters]) } else { None })
}

/// The weight and bias gradients of a gradient slice.
fn split_grads(grads: &mut [f32], weights: usize, filters: usize, bias: bool) -> (&mut [f32], Option<&mut [f32]>) {
    let (w, b) = grads.split_at_mut(weights);
    (w, if bias { Some(&mut b[..filters]) } else { None })
}

/// Checks the groups of a convolution of `channels` inputs and `filters` outputs (as
/// PyTorch: at least one, dividing both) and returns the input channels per group.
const fn group_channels(channels: usize, filters: usize, groups: usize) -> usize {
    assert!(groups > 0, "convolution: the groups must be at least 1");
    assert!(channels.is_multiple_of(groups), "convolution: the input channels are not divisible by the groups");
    assert!(filters.is_multiple_of(groups), "convolution: the filters are not divisible by the groups");
    channels / groups
}

/// The per-sample sizes of a grouped convolution whose per-group geometry is `g`:
/// `(input, output, weight)` floats of one group, and the input and output of one
/// sample.
fn group_sizes(g: &ConvGeometry, filters: usize, groups: usize) -> ([usize; 3], [usize; 2]) {
    let sizes = g.check();
    assert!(groups > 0 && filters.is_multiple_of(groups), "convolution: {filters} filters in {groups} groups");
    let per_group = filters / groups;
    let group = [sizes.input, per_group * sizes.positions, per_group * sizes.patch];
    let sample = [group[0], group[1]].map(|n| {
        n.checked_mul(groups).unwrap_or_else(|| panic!("convolution: {groups} groups of {n} floats overflow a usize"))
    });
    (group, sample)
}

/// The forward of a convolution in `G` groups ([`conv::forward`] when `G` is 1):
/// `g` is the geometry of one group (its `channels` are the input channels per
/// group), `filters` all the filters. Group `j` of each sample convolves its input
/// channels `j * C / G..` with filters `j * F / G..` into those output channels; the
/// channels of a group are contiguous in the input, the weight, the bias and the
/// output, so each is one call of the kernel on slices.
fn grouped_forward<const G: usize>(
    g: &ConvGeometry,
    filters: usize,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    scratch: &mut [f32],
) {
    if G == 1 {
        return conv::forward(g, filters, x, weight, bias, y, scratch);
    }
    let ([in_g, out_g, w_g], [in_len, out_len]) = group_sizes(g, filters, G);
    let per_group = filters / G;
    assert!(x.len().is_multiple_of(in_len), "convolution: the input is not whole samples of {in_len} floats");
    let y = &mut y[..x.len() / in_len * out_len];
    for (x, y) in x.chunks_exact(in_len).zip(y.chunks_exact_mut(out_len)) {
        for (j, (x, y)) in x.chunks_exact(in_g).zip(y.chunks_exact_mut(out_g)).enumerate() {
            let bias = bias.map(|b| &b[j * per_group..][..per_group]);
            conv::forward(g, per_group, x, &weight[j * w_g..][..w_g], bias, y, scratch);
        }
    }
}

/// The backward of [`grouped_forward`] ([`conv::backward`] when `G` is 1): adds the
/// weight and bias gradients of each group into its slices and overwrites each group's
/// slice of `dx`.
#[allow(clippy::too_many_arguments)]
fn grouped_backward<const G: usize>(
    g: &ConvGeometry,
    filters: usize,
    x: &[f32],
    weight: &[f32],
    dy: &[f32],
    mut d_weight: Option<&mut [f32]>,
    mut d_bias: Option<&mut [f32]>,
    mut dx: Option<&mut [f32]>,
    scratch: &mut [f32],
) {
    if G == 1 {
        return conv::backward(g, filters, x, weight, dy, d_weight, d_bias, dx, scratch);
    }
    let ([in_g, out_g, w_g], [in_len, out_len]) = group_sizes(g, filters, G);
    let per_group = filters / G;
    assert!(x.len().is_multiple_of(in_len), "convolution: the input is not whole samples of {in_len} floats");
    let batch = x.len() / in_len;
    let dy = &dy[..batch * out_len];
    for (s, (x, dy)) in x.chunks_exact(in_len).zip(dy.chunks_exact(out_len)).enumerate() {
        for (j, (x, dy)) in x.chunks_exact(in_g).zip(dy.chunks_exact(out_g)).enumerate() {
            let d_weight = d_weight.as_deref_mut().map(|d| &mut d[j * w_g..][..w_g]);
            let d_bias = d_bias.as_deref_mut().map(|d| &mut d[j * per_group..][..per_group]);
            let dx = dx.as_deref_mut().map(|d| &mut d[s * in_len + j * in_g..][..in_g]);
            conv::backward(g, per_group, x, &weight[j * w_g..][..w_g], dy, d_weight, d_bias, dx, scratch);
        }
    }
}

/// The [`Layer`] items the convolutions share, in an impl whose generics name the
/// input channels `C`, the filters `F` and the bias switch `BIAS` and whose type has
/// `WEIGHTS` and a `geometry`: the parameters are `weight` of shape `[dims]`
/// (`WEIGHTS` floats) then, with `BIAS`, `bias` of `[F]`, initialised Glorot-uniform
/// over `fans` (in, out); nothing is cached, so training runs `forward`. A `direct`
/// convolution skips its weight-gradient products when every parameter is frozen.
macro_rules! convolution_items {
    (direct, weight: $weight:tt, fans: $fans:tt) => {
        convolution_items!(@shared $weight, $fans, grouped_forward::<G>, F);

        #[inline]
        fn backward(&self, x: &[f32], _y: &[f32], dy: &mut [f32], dx: Option<&mut [f32]>, cx: BackwardCtx<'_>) {
            let BackwardCtx { params, grads, frozen, scratch, .. } = cx;
            let weight = &params[..Self::WEIGHTS];
            if frozen.all(Self::PARAMS) {
                // Every parameter frozen: the input gradient alone.
                if dx.is_some() {
                    grouped_backward::<G>(&self.geometry, F, x, weight, dy, None, None, dx, scratch);
                }
                return;
            }
            let (d_weight, d_bias) = split_grads(grads, Self::WEIGHTS, F, BIAS);
            grouped_backward::<G>(&self.geometry, F, x, weight, dy, Some(d_weight), d_bias, dx, scratch);
        }
    };
    (transposed, weight: $weight:tt, fans: $fans:tt) => {
        convolution_items!(@shared $weight, $fans, conv::transpose_forward, C);

        #[inline]
        fn backward(&self, x: &[f32], _y: &[f32], dy: &mut [f32], dx: Option<&mut [f32]>, cx: BackwardCtx<'_>) {
            let BackwardCtx { params, grads, scratch, .. } = cx;
            let (d_weight, d_bias) = split_grads(grads, Self::WEIGHTS, F, BIAS);
            let weight = &params[..Self::WEIGHTS];
            conv::transpose_backward(&self.geometry, C, x, weight, dy, d_weight, d_bias, dx, scratch);
        }
    };
    // `$forward` is the kernel, called with `$channels` (a convolution's filters, a
    // transposed convolution's input channels).
    (@shared [$($dim:expr),+], ($fan_in:expr, $fan_out:expr), $forward:path, $channels:ident) => {
        const PARAMS: usize = Self::WEIGHTS + if BIAS { F } else { 0 };
        const TENSORS: &'static crate::weights::TensorTree = &crate::weights::TensorTree::Pair {
            first: &crate::weights::TensorTree::Leaf { name: "weight", shape: &[$($dim),+], trainable: true },
            rest: if BIAS {
                &crate::weights::TensorTree::Leaf { name: "bias", shape: &[F], trainable: true }
            } else {
                &crate::weights::TensorTree::Empty
            },
        };

        fn init(&self, params: &mut [f32], _buffers: &mut [f32], rng: &mut Rng) {
            glorot_uniform(params, Self::WEIGHTS, $fan_in, $fan_out, rng);
        }

        #[inline]
        fn forward(&self, w: Weights<'_>, x: &[f32], y: &mut [f32], scratch: &mut [f32]) {
            let params = w.params;
            let (weight, bias) = split_params(params, Self::WEIGHTS, F, BIAS);
            $forward(&self.geometry, $channels, x, weight, bias, y, scratch);
        }

        #[inline]
        fn forward_train(&self, x: &[f32], y: &mut [f32], cx: TrainCtx<'_>) {
            let TrainCtx { params, buffers, scratch, .. } = cx;
            self.forward(Weights::new(params, buffers), x, y, scratch);
        }
    };
}

/// A 2-D convolution `[C, H, W] -> [F, OH, OW]` with `F` filters of `KH x KW` in `G`
/// groups, as PyTorch's `nn.Conv2d(C, F, (KH, KW), stride, padding, dilation,
/// groups=G, bias=BIAS)`: filter group `j` sees only input channels
/// `j * C / G..(j + 1) * C / G`, so `G == C` is a depthwise convolution.
#[derive(Clone, Copy, Debug)]
pub struct Conv2d<
    const C: usize,
    const H: usize,
    const W: usize,
    const F: usize,
    const KH: usize,
    const KW: usize,
    const OH: usize,
    const OW: usize,
    const BIAS: bool = true,
    const G: usize = 1,
> {
    geometry: ConvGeometry,
}

impl<
        const C: usize,
        const H: usize,
        const W: usize,
        const F: usize,
        const KH: usize,
        const KW: usize,
        const OH: usize,
        const OW: usize,
        const BIAS: bool,
        const G: usize,
    > Conv2d<C, H, W, F, KH, KW, OH, OW, BIAS, G>
{
    /// The convolution with these strides (vertical, horizontal), padding and
    /// dilations.
    ///
    /// # Panics
    /// (At compile time in a `const`.) If a stride or dilation is 0, `Same` padding has
    /// a stride other than 1, the dilated kernel is larger than the padded input,
    /// `OH`, `OW` differ from [`conv_output_size`], or `G` is 0 or does not divide `C`
    /// and `F`.
    pub const fn new(stride: [usize; 2], padding: Padding<2>, dilation: [usize; 2]) -> Self {
        let channels = group_channels(C, F, G);
        let same = matches!(padding, Padding::Same);
        let top = check_conv_axis(H, KH, OH, stride[0], padding.axis(0, KH, dilation[0]), dilation[0], same);
        let left = check_conv_axis(W, KW, OW, stride[1], padding.axis(1, KW, dilation[1]), dilation[1], same);
        Conv2d {
            geometry: ConvGeometry {
                channels,
                height: H,
                width: W,
                kernel: [KH, KW],
                stride,
                padding: [top, left],
                dilation,
                out_height: OH,
                out_width: OW,
            },
        }
    }

    /// The strides (vertical, horizontal).
    pub const fn stride(&self) -> [usize; 2] {
        self.geometry.stride
    }

    /// The zeros before the first row and before the first column.
    pub const fn padding(&self) -> [usize; 2] {
        self.geometry.padding
    }

    /// The dilations (vertical, horizontal).
    pub const fn dilation(&self) -> [usize; 2] {
        self.geometry.dilation
    }

    /// The groups (`G`).
    pub const fn groups(&self) -> usize {
        G
    }

    const WEIGHTS: usize = F * (C / G) * KH * KW;
}

impl<
        const C: usize,
        const H: usize,
        const W: usize,
        const F: usize,
        const KH: usize,
        const KW: usize,
        const OH: usize,
        const OW: usize,
        const BIAS: bool,
        const G: usize,
    > Layer for Conv2d<C, H, W, F, KH, KW, OH, OW, BIAS, G>
{
    type Input = Shape3<C, H, W>;
    type Output = Shape3<F, OH, OW>;
    /// One tile of the column matrix of one group.
    const SCRATCH: usize = conv::scratch_len(C / G * KH * KW, OH * OW);
    /// Inference needs less where the kernels read the input from padded copies
    /// (`kernels::conv::forward_scratch_len`).
    const FORWARD_SCRATCH: usize = conv::forward_scratch_len(C / G, [H, W], [KH, KW], [OH, OW], F / G);
    const KIND: &'static str = "Conv2d";
    convolution_items!(direct, weight: [F, C / G, KH, KW], fans: (C / G * KH * KW, F * KH * KW));
}

/// A 1-D convolution `[C, L] -> [F, OL]` with `F` filters of length `K` in `G` groups,
/// as PyTorch's `nn.Conv1d(C, F, K, stride, padding, dilation, groups=G, bias=BIAS)`
/// (see [`Conv2d`] for the groups).
#[derive(Clone, Copy, Debug)]
pub struct Conv1d<
    const C: usize,
    const L: usize,
    const F: usize,
    const K: usize,
    const OL: usize,
    const BIAS: bool = true,
    const G: usize = 1,
> {
    geometry: ConvGeometry,
}

impl<
        const C: usize,
        const L: usize,
        const F: usize,
        const K: usize,
        const OL: usize,
        const BIAS: bool,
        const G: usize,
    > Conv1d<C, L, F, K, OL, BIAS, G>
{
    /// The convolution with this stride, padding and dilation.
    ///
    /// # Panics
    /// (At compile time in a `const`.) As [`Conv2d::new`], along the one axis.
    pub const fn new(stride: usize, padding: Padding<1>, dilation: usize) -> Self {
        let channels = group_channels(C, F, G);
        let same = matches!(padding, Padding::Same);
        let before = check_conv_axis(L, K, OL, stride, padding.axis(0, K, dilation), dilation, same);
        Conv1d {
            geometry: ConvGeometry {
                channels,
                height: 1,
                width: L,
                kernel: [1, K],
                stride: [1, stride],
                padding: [0, before],
                dilation: [1, dilation],
                out_height: 1,
                out_width: OL,
            },
        }
    }

    /// The stride.
    pub const fn stride(&self) -> usize {
        self.geometry.stride[1]
    }

    /// The zeros before the first element.
    pub const fn padding(&self) -> usize {
        self.geometry.padding[1]
    }

    /// The dilation.
    pub const fn dilation(&self) -> usize {
        self.geometry.dilation[1]
    }

    /// The groups (`G`).
    pub const fn groups(&self) -> usize {
        G
    }

    const WEIGHTS: usize = F * (C / G) * K;
}

impl<
        const C: usize,
        const L: usize,
        const F: usize,
        const K: usize,
        const OL: usize,
        const BIAS: bool,
        const G: usize,
    > Layer for Conv1d<C, L, F, K, OL, BIAS, G>
{
    type Input = Shape2<C, L>;
    type Output = Shape2<F, OL>;
    /// One tile of the column matrix of one group.
    const SCRATCH: usize = conv::scratch_len(C / G * K, OL);
    const KIND: &'static str = "Conv1d";
    convolution_items!(direct, weight: [F, C / G, K], fans: (C / G * K, F * K));
}

/// A 2-D transposed convolution `[C, H, W] -> [F, OH, OW]` (the gradient of a
/// convolution with respect to its input; generators upsample with it), as PyTorch's
/// `nn.ConvTranspose2d(C, F, (KH, KW), stride, padding, output_padding, bias=BIAS,
/// dilation=dilation)`, with its `weight` layout `[C, F, KH, KW]`.
#[derive(Clone, Copy, Debug)]
pub struct ConvTranspose2d<
    const C: usize,
    const H: usize,
    const W: usize,
    const F: usize,
    const KH: usize,
    const KW: usize,
    const OH: usize,
    const OW: usize,
    const BIAS: bool = true,
> {
    /// The convolution from the output's shape to the input's.
    geometry: ConvGeometry,
    output_padding: [usize; 2],
}

impl<
        const C: usize,
        const H: usize,
        const W: usize,
        const F: usize,
        const KH: usize,
        const KW: usize,
        const OH: usize,
        const OW: usize,
        const BIAS: bool,
    > ConvTranspose2d<C, H, W, F, KH, KW, OH, OW, BIAS>
{
    /// The transposed convolution with these strides, padding (zeros removed from
    /// each side of the full output), output padding (extra rows and columns after)
    /// and dilations.
    ///
    /// # Panics
    /// (At compile time in a `const`.) If a stride or dilation is 0, an output padding
    /// is not smaller than its stride or dilation, or `OH`, `OW` differ from
    /// [`conv_transpose_output_size`].
    pub const fn new(
        stride: [usize; 2],
        padding: [usize; 2],
        output_padding: [usize; 2],
        dilation: [usize; 2],
    ) -> Self {
        check_transpose_axis(H, KH, OH, stride[0], padding[0], output_padding[0], dilation[0]);
        check_transpose_axis(W, KW, OW, stride[1], padding[1], output_padding[1], dilation[1]);
        ConvTranspose2d {
            geometry: ConvGeometry {
                channels: F,
                height: OH,
                width: OW,
                kernel: [KH, KW],
                stride,
                padding,
                dilation,
                out_height: H,
                out_width: W,
            },
            output_padding,
        }
    }

    /// The strides (vertical, horizontal).
    pub const fn stride(&self) -> [usize; 2] {
        self.geometry.stride
    }

    /// The zeros removed from each side of the full output, per axis.
    pub const fn padding(&self) -> [usize; 2] {
        self.geometry.padding
    }

    /// The extra rows and columns after the output.
    pub const fn output_padding(&self) -> [usize; 2] {
        self.output_padding
    }

    /// The dilations (vertical, horizontal).
    pub const fn dilation(&self) -> [usize; 2] {
        self.geometry.dilation
    }

    const WEIGHTS: usize = C * F * KH * KW;
}

impl<
        const C: usize,
        const H: usize,
        const W: usize,
        const F: usize,
        const KH: usize,
        const KW: usize,
        const OH: usize,
        const OW: usize,
        const BIAS: bool,
    > Layer for ConvTranspose2d<C, H, W, F, KH, KW, OH, OW, BIAS>
{
    type Input = Shape3<C, H, W>;
    type Output = Shape3<F, OH, OW>;
    /// One tile of the column matrix of the output.
    const SCRATCH: usize = conv::scratch_len(F * KH * KW, H * W);
    const KIND: &'static str = "ConvTranspose2d";
    convolution_items!(transposed, weight: [C, F, KH, KW], fans: (C * KH * KW, F * KH * KW));
}
