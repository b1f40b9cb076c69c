//! Pooling and upsampling: `MaxPool1d/2d`, `AvgPool1d/2d`, `GlobalAvgPool1d/2d`,
//! `GlobalMaxPool1d/2d` and nearest-neighbour `Upsample`/`Upsample1d`, channels first,
//! without parameters.
//!
//! | layer | input | output |
//! |---|---|---|
//! | `MaxPool2d<C, H, W, OH, OW>`, `AvgPool2d<..>` | `[C, H, W]` | `[C, OH, OW]` |
//! | `MaxPool1d<C, L, OL>`, `AvgPool1d<..>` | `[C, L]` | `[C, OL]` |
//! | `GlobalAvgPool2d<C, H, W>`, `GlobalMaxPool2d<..>` | `[C, H, W]` | `[C]` |
//! | `GlobalAvgPool1d<C, L>`, `GlobalMaxPool1d<..>` | `[C, L]` | `[C]` |
//! | `Upsample<C, H, W, OH, OW>` | `[C, H, W]` | `[C, H * sh, W * sw]` |
//! | `Upsample1d<C, L, OL>` | `[C, L]` | `[C, L * s]` |
//!
//! A pooling window has a size, a stride (PyTorch's and Keras' default: the size) and an
//! implicit padding on both sides of at most half the size; the output length along an
//! axis is [`pool_output_size`], `(in + 2 * padding - size) / stride + 1` (PyTorch with
//! `ceil_mode=False`). Max pooling ignores the padding; average pooling counts it as
//! zeros (`count_include_pad=True`, PyTorch's default). As for convolutions, `new` is a
//! `const fn` that checks the shapes in the type against the configuration.
//!
//! ```
//! use nn_core::layers::MaxPool2d;
//! use nn_core::Layer;
//!
//! // 1 x 4 x 4 -> 1 x 2 x 2: 2x2 windows, stride 2.
//! type Pool = MaxPool2d<1, 4, 4, 2, 2>;
//! const POOL: Pool = MaxPool2d::new([2, 2], [2, 2], [0, 0]);
//! let x: Vec<f32> = (0..16).map(|v| v as f32).collect();
//! let mut y = [0.0; 4];
//! POOL.forward(nn_core::Weights::new(&[], &[]), &x, &mut y, &mut []);
//! assert_eq!(y, [5.0, 7.0, 13.0, 15.0]);
//! ```
use core::marker::PhantomData;

use super::conv::output_len;
use crate::kernels::pool::{self, PoolGeometry};
use crate::layer::{BackwardCtx, Layer, TrainCtx, Weights};
use crate::rng::Rng;
use crate::shape::{Shape1, Shape2, Shape3};

/// The output length of a pooling along one axis with `padding` on each side; 0 when
/// the window is longer than the padded input or `stride` is 0.
///
/// ```
/// use nn_core::layers::pool_output_size;
/// assert_eq!(pool_output_size(8, 2, 2, 0), 4);
/// assert_eq!(pool_output_size(7, 2, 2, 0), 3); // the last column is dropped
/// assert_eq!(pool_output_size(7, 3, 2, 1), 4);
/// ```
pub const fn pool_output_size(input: usize, size: usize, stride: usize, padding: usize) -> usize {
    output_len(input + 2 * padding, size, stride, 1)
}

/// Checks one axis of a pooling. A `const` panic is a compile error in a `const`.
const fn check_pool_axis(input: usize, size: usize, output: usize, stride: usize, padding: usize) {
    assert!(size > 0, "pooling: the window size must be at least 1");
    assert!(stride > 0, "pooling: the stride must be at least 1");
    assert!(padding <= size / 2, "pooling: the padding must be at most half the window size (as PyTorch)");
    assert!(size <= input + 2 * padding, "pooling: the window is larger than the padded input");
    assert!(
        output == pool_output_size(input, size, stride, padding),
        "pooling: the output size in the type differs from the one the input size, window size, stride and padding \
         give (see `pool_output_size`)"
    );
}

/// What a pooling layer computes over each window: [`Max`] or [`Average`].
pub trait PoolMode: Copy + core::fmt::Debug + 'static {
    /// `"MaxPool"` or `"AvgPool"`; the layer kinds append `1d` or `2d`.
    const KIND_1D: &'static str;
    /// The kind of the 2-D layer.
    const KIND_2D: &'static str;
    /// The kind of the global 1-D layer.
    const GLOBAL_1D: &'static str;
    /// The kind of the global 2-D layer.
    const GLOBAL_2D: &'static str;
    /// Pools every plane of `x` into `y`.
    fn forward(g: &PoolGeometry, x: &[f32], y: &mut [f32]);
    /// Writes the input gradient of [`PoolMode::forward`] into `dx`.
    fn backward(g: &PoolGeometry, x: &[f32], dy: &[f32], dx: &mut [f32]);
    /// Whether [`PoolMode::forward_relu`] applies.
    #[doc(hidden)]
    const RELU_INPUT: bool = false;
    /// With [`PoolMode::RELU_INPUT`]: [`PoolMode::forward`] of the input through a ReLU
    /// (`v > 0 ? v : 0`), in one pass.
    #[doc(hidden)]
    fn forward_relu(g: &PoolGeometry, x: &[f32], y: &mut [f32]) {
        let _ = (g, x, y);
        unreachable!("forward_relu of a pooling without `RELU_INPUT`")
    }
    /// Pools every plane of `plane` floats into one value.
    fn global_forward(plane: usize, x: &[f32], y: &mut [f32]);
    /// Writes the input gradient of [`PoolMode::global_forward`] into `dx`.
    fn global_backward(plane: usize, x: &[f32], dy: &[f32], dx: &mut [f32]);
}

/// The maximum of each window.
#[derive(Clone, Copy, Debug, Default)]
pub struct Max;

/// The mean of each window (padding counted as zeros).
#[derive(Clone, Copy, Debug, Default)]
pub struct Average;

impl PoolMode for Max {
    const KIND_1D: &'static str = "MaxPool1d";
    const KIND_2D: &'static str = "MaxPool2d";
    const GLOBAL_1D: &'static str = "GlobalMaxPool1d";
    const GLOBAL_2D: &'static str = "GlobalMaxPool2d";
    fn forward(g: &PoolGeometry, x: &[f32], y: &mut [f32]) {
        pool::max_forward(g, x, y)
    }
    fn backward(g: &PoolGeometry, x: &[f32], dy: &[f32], dx: &mut [f32]) {
        pool::max_backward(g, x, dy, dx)
    }
    const RELU_INPUT: bool = true;
    fn forward_relu(g: &PoolGeometry, x: &[f32], y: &mut [f32]) {
        pool::max_relu_forward(g, x, y)
    }
    fn global_forward(plane: usize, x: &[f32], y: &mut [f32]) {
        pool::global_max_forward(plane, x, y)
    }
    fn global_backward(plane: usize, x: &[f32], dy: &[f32], dx: &mut [f32]) {
        pool::global_max_backward(plane, x, dy, dx)
    }
}

impl PoolMode for Average {
    const KIND_1D: &'static str = "AvgPool1d";
    const KIND_2D: &'static str = "AvgPool2d";
    const GLOBAL_1D: &'static str = "GlobalAvgPool1d";
    const GLOBAL_2D: &'static str = "GlobalAvgPool2d";
    fn forward(g: &PoolGeometry, x: &[f32], y: &mut [f32]) {
        pool::avg_forward(g, x, y)
    }
    fn backward(g: &PoolGeometry, _x: &[f32], dy: &[f32], dx: &mut [f32]) {
        pool::avg_backward(g, dy, dx)
    }
    fn global_forward(plane: usize, x: &[f32], y: &mut [f32]) {
        pool::global_avg_forward(plane, x, y)
    }
    fn global_backward(plane: usize, _x: &[f32], dy: &[f32], dx: &mut [f32]) {
        pool::global_avg_backward(plane, dy, dx)
    }
}

/// Implements the parameter-free parts of [`Layer`] and the pass-through of
/// `forward_train`, which every layer of this file shares. Given the bodies of
/// `forward(self, x, y)` and `backward(self, x, dy, dx)`, it also implements `forward`
/// and `backward`, the latter run only when `dx` is wanted (there are no gradients).
macro_rules! no_params {
    () => {
        const PARAMS: usize = 0;

        fn init(&self, _params: &mut [f32], _buffers: &mut [f32], _rng: &mut Rng) {}

        #[inline]
        fn forward_train(&self, x: &[f32], y: &mut [f32], cx: TrainCtx<'_>) {
            let TrainCtx { params, buffers, scratch, .. } = cx;
            self.forward(Weights::new(params, buffers), x, y, scratch);
        }
    };
    (
        forward($self:ident, $x:ident, $y:ident) $forward:block
        backward($self_b:ident, $x_b:ident, $dy:ident, $dx:ident) $backward:block
    ) => {
        no_params!();

        #[inline]
        fn forward(&$self, _w: Weights<'_>, $x: &[f32], $y: &mut [f32], _scratch: &mut [f32])
            $forward

        #[inline]
        fn backward(&$self_b, $x_b: &[f32], _y: &[f32], $dy: &mut [f32], dx: Option<&mut [f32]>, _cx: BackwardCtx<'_>) {
            if let Some($dx) = dx {
                $backward
            }
        }
    };
}
pub(crate) use no_params;

/// 2-D pooling `[C, H, W] -> [C, OH, OW]`; use the aliases [`MaxPool2d`] and
/// [`AvgPool2d`].
#[derive(Clone, Copy, Debug)]
pub struct Pool2d<M, const C: usize, const H: usize, const W: usize, const OH: usize, const OW: usize> {
    geometry: PoolGeometry,
    _mode: PhantomData<M>,
}

/// Max pooling `[C, H, W] -> [C, OH, OW]`, as PyTorch's `nn.MaxPool2d(size, stride,
/// padding)`.
pub type MaxPool2d<const C: usize, const H: usize, const W: usize, const OH: usize, const OW: usize> =
    Pool2d<Max, C, H, W, OH, OW>;
/// Average pooling `[C, H, W] -> [C, OH, OW]`, as PyTorch's `nn.AvgPool2d(size,
/// stride, padding)`.
pub type AvgPool2d<const C: usize, const H: usize, const W: usize, const OH: usize, const OW: usize> =
    Pool2d<Average, C, H, W, OH, OW>;

impl<M, const C: usize, const H: usize, const W: usize, const OH: usize, const OW: usize> Pool2d<M, C, H, W, OH, OW> {
    /// Pooling over `size` windows (height, width) moved by `stride`, with `padding`
    /// on both sides of each axis.
    ///
    /// # Panics
    /// (At compile time in a `const`.) If a size or stride is 0, a padding exceeds half
    /// the window, or `OH`, `OW` differ from [`pool_output_size`].
    pub const fn new(size: [usize; 2], stride: [usize; 2], padding: [usize; 2]) -> Self {
        check_pool_axis(H, size[0], OH, stride[0], padding[0]);
        check_pool_axis(W, size[1], OW, stride[1], padding[1]);
        Pool2d {
            geometry: PoolGeometry { height: H, width: W, size, stride, padding, out_height: OH, out_width: OW },
            _mode: PhantomData,
        }
    }

    /// The window size (height, width).
    pub const fn size(&self) -> [usize; 2] {
        self.geometry.size
    }

    /// The strides (vertical, horizontal).
    pub const fn stride(&self) -> [usize; 2] {
        self.geometry.stride
    }

    /// The padding on each side, per axis.
    pub const fn padding(&self) -> [usize; 2] {
        self.geometry.padding
    }
}

impl<M: PoolMode, const C: usize, const H: usize, const W: usize, const OH: usize, const OW: usize> Layer
    for Pool2d<M, C, H, W, OH, OW>
{
    type Input = Shape3<C, H, W>;
    type Output = Shape3<C, OH, OW>;
    const KIND: &'static str = M::KIND_2D;
    /// Max pooling after a ReLU layer runs as one pass ([`pool::max_relu_forward`]).
    const RELU_INPUT: bool = M::RELU_INPUT;
    no_params! {
        forward(self, x, y) { M::forward(&self.geometry, x, y); }
        backward(self, x, dy, dx) { M::backward(&self.geometry, x, dy, dx); }
    }

    #[inline]
    fn forward_relu_input(&self, _w: Weights<'_>, x: &[f32], y: &mut [f32], _scratch: &mut [f32]) {
        M::forward_relu(&self.geometry, x, y);
    }
}

/// 1-D pooling `[C, L] -> [C, OL]`; use the aliases [`MaxPool1d`] and [`AvgPool1d`].
#[derive(Clone, Copy, Debug)]
pub struct Pool1d<M, const C: usize, const L: usize, const OL: usize> {
    geometry: PoolGeometry,
    _mode: PhantomData<M>,
}

/// Max pooling `[C, L] -> [C, OL]`, as PyTorch's `nn.MaxPool1d(size, stride, padding)`.
pub type MaxPool1d<const C: usize, const L: usize, const OL: usize> = Pool1d<Max, C, L, OL>;
/// Average pooling `[C, L] -> [C, OL]`, as PyTorch's `nn.AvgPool1d(size, stride,
/// padding)`.
pub type AvgPool1d<const C: usize, const L: usize, const OL: usize> = Pool1d<Average, C, L, OL>;

impl<M, const C: usize, const L: usize, const OL: usize> Pool1d<M, C, L, OL> {
    /// Pooling over windows of `size` moved by `stride`, with `padding` on both sides.
    ///
    /// # Panics
    /// (At compile time in a `const`.) As [`Pool2d::new`].
    pub const fn new(size: usize, stride: usize, padding: usize) -> Self {
        check_pool_axis(L, size, OL, stride, padding);
        Pool1d {
            geometry: PoolGeometry {
                height: 1,
                width: L,
                size: [1, size],
                stride: [1, stride],
                padding: [0, padding],
                out_height: 1,
                out_width: OL,
            },
            _mode: PhantomData,
        }
    }

    /// The window size.
    pub const fn size(&self) -> usize {
        self.geometry.size[1]
    }

    /// The stride.
    pub const fn stride(&self) -> usize {
        self.geometry.stride[1]
    }

    /// The padding on each side.
    pub const fn padding(&self) -> usize {
        self.geometry.padding[1]
    }
}

impl<M: PoolMode, const C: usize, const L: usize, const OL: usize> Layer for Pool1d<M, C, L, OL> {
    type Input = Shape2<C, L>;
    type Output = Shape2<C, OL>;
    const KIND: &'static str = M::KIND_1D;
    no_params! {
        forward(self, x, y) { M::forward(&self.geometry, x, y); }
        backward(self, x, dy, dx) { M::backward(&self.geometry, x, dy, dx); }
    }
}

/// Global pooling of each channel of an image, `[C, H, W] -> [C]`; use the aliases
/// [`GlobalAvgPool2d`] and [`GlobalMaxPool2d`].
#[derive(Clone, Copy, Debug)]
pub struct GlobalPool2d<M, const C: usize, const H: usize, const W: usize> {
    _mode: PhantomData<M>,
}

/// The mean of each channel, `[C, H, W] -> [C]` (PyTorch's `AdaptiveAvgPool2d(1)`
/// followed by a flatten).
pub type GlobalAvgPool2d<const C: usize, const H: usize, const W: usize> = GlobalPool2d<Average, C, H, W>;
/// The maximum of each channel, `[C, H, W] -> [C]` (PyTorch's `AdaptiveMaxPool2d(1)`
/// followed by a flatten).
pub type GlobalMaxPool2d<const C: usize, const H: usize, const W: usize> = GlobalPool2d<Max, C, H, W>;

impl<M, const C: usize, const H: usize, const W: usize> GlobalPool2d<M, C, H, W> {
    /// The global pooling layer.
    pub const fn new() -> Self {
        GlobalPool2d { _mode: PhantomData }
    }
}

impl<M, const C: usize, const H: usize, const W: usize> Default for GlobalPool2d<M, C, H, W> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M: PoolMode, const C: usize, const H: usize, const W: usize> Layer for GlobalPool2d<M, C, H, W> {
    type Input = Shape3<C, H, W>;
    type Output = Shape1<C>;
    const KIND: &'static str = M::GLOBAL_2D;
    no_params! {
        forward(self, x, y) { M::global_forward(H * W, x, y); }
        backward(self, x, dy, dx) { M::global_backward(H * W, x, dy, dx); }
    }
}

/// Global pooling of each channel of a signal, `[C, L] -> [C]`; use the aliases
/// [`GlobalAvgPool1d`] and [`GlobalMaxPool1d`].
#[derive(Clone, Copy, Debug)]
pub struct GlobalPool1d<M, const C: usize, const L: usize> {
    _mode: PhantomData<M>,
}

/// The mean of each channel, `[C, L] -> [C]`.
pub type GlobalAvgPool1d<const C: usize, const L: usize> = GlobalPool1d<Average, C, L>;
/// The maximum of each channel, `[C, L] -> [C]`.
pub type GlobalMaxPool1d<const C: usize, const L: usize> = GlobalPool1d<Max, C, L>;

impl<M, const C: usize, const L: usize> GlobalPool1d<M, C, L> {
    /// The global pooling layer.
    pub const fn new() -> Self {
        GlobalPool1d { _mode: PhantomData }
    }
}

impl<M, const C: usize, const L: usize> Default for GlobalPool1d<M, C, L> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M: PoolMode, const C: usize, const L: usize> Layer for GlobalPool1d<M, C, L> {
    type Input = Shape2<C, L>;
    type Output = Shape1<C>;
    const KIND: &'static str = M::GLOBAL_1D;
    no_params! {
        forward(self, x, y) { M::global_forward(L, x, y); }
        backward(self, x, dy, dx) { M::global_backward(L, x, dy, dx); }
    }
}

/// Checks the scale of an upsampling along one axis.
const fn check_scale(input: usize, scale: usize, output: usize) {
    assert!(scale > 0, "upsampling: the scale factor must be at least 1");
    assert!(output == input * scale, "upsampling: the output size in the type is not the input size times the scale");
}

/// Nearest-neighbour upsampling by integer factors, `[C, H, W] -> [C, OH, OW]` with
/// `OH = H * scale[0]`, `OW = W * scale[1]`: every pixel becomes a block of copies
/// (PyTorch's `nn.Upsample(scale_factor=s, mode="nearest")`).
#[derive(Clone, Copy, Debug)]
pub struct Upsample<const C: usize, const H: usize, const W: usize, const OH: usize, const OW: usize> {
    scale: [usize; 2],
}

impl<const C: usize, const H: usize, const W: usize, const OH: usize, const OW: usize> Upsample<C, H, W, OH, OW> {
    /// Upsampling by `scale` (vertical, horizontal).
    ///
    /// # Panics
    /// (At compile time in a `const`.) If a factor is 0 or `OH`, `OW` are not
    /// `H * scale[0]`, `W * scale[1]`.
    pub const fn new(scale: [usize; 2]) -> Self {
        check_scale(H, scale[0], OH);
        check_scale(W, scale[1], OW);
        Upsample { scale }
    }

    /// The scale factors (vertical, horizontal).
    pub const fn scale(&self) -> [usize; 2] {
        self.scale
    }
}

impl<const C: usize, const H: usize, const W: usize, const OH: usize, const OW: usize> Layer
    for Upsample<C, H, W, OH, OW>
{
    type Input = Shape3<C, H, W>;
    type Output = Shape3<C, OH, OW>;
    const KIND: &'static str = "Upsample";
    no_params! {
        forward(self, x, y) { pool::upsample_nearest_forward(H, W, self.scale, x, y); }
        backward(self, _x, dy, dx) { pool::upsample_nearest_backward(H, W, self.scale, dy, dx); }
    }
}

/// Nearest-neighbour upsampling of a signal, `[C, L] -> [C, L * scale]`.
#[derive(Clone, Copy, Debug)]
pub struct Upsample1d<const C: usize, const L: usize, const OL: usize> {
    scale: usize,
}

impl<const C: usize, const L: usize, const OL: usize> Upsample1d<C, L, OL> {
    /// Upsampling by `scale`.
    ///
    /// # Panics
    /// (At compile time in a `const`.) If `scale` is 0 or `OL` is not `L * scale`.
    pub const fn new(scale: usize) -> Self {
        check_scale(L, scale, OL);
        Upsample1d { scale }
    }

    /// The scale factor.
    pub const fn scale(&self) -> usize {
        self.scale
    }
}

impl<const C: usize, const L: usize, const OL: usize> Layer for Upsample1d<C, L, OL> {
    type Input = Shape2<C, L>;
    type Output = Shape2<C, OL>;
    const KIND: &'static str = "Upsample1d";
    no_params! {
        forward(self, x, y) { pool::upsample_nearest_forward(1, L, [1, self.scale], x, y); }
        backward(self, _x, dy, dx) { pool::upsample_nearest_backward(1, L, [1, self.scale], dy, dx); }
    }
}
