//! `Flatten` and `Reshape`: the same values under another shape.
//!
//! | layer | input | output |
//! |---|---|---|
//! | `Flatten<S, N>` | any `S` with `S::LEN == N` | `[N]` |
//! | `Reshape<I, O>` | `I` | `O`, with `I::LEN == O::LEN` |
//!
//! Samples are stored row-major and channels first, so flattening `[C, H, W]` gives
//! PyTorch's `nn.Flatten()` order (channel, then row, then column) and a `Dense` layer
//! after it has PyTorch's weight layout. `new` is a `const fn` that checks the lengths.
//!
//! ```
//! use nn_core::layers::Flatten;
//! use nn_core::{Layer, Shape3};
//!
//! const FLAT: Flatten<Shape3<2, 3, 4>, 24> = Flatten::new();
//! let x: Vec<f32> = (0..24).map(|v| v as f32).collect();
//! let mut y = [0.0; 24];
//! FLAT.forward(nn_core::Weights::new(&[], &[]), &x, &mut y, &mut []);
//! assert_eq!(y[5], 5.0);
//! ```
use core::marker::PhantomData;

use super::pool::no_params;
use crate::layer::{BackwardCtx, Layer, TrainCtx, Weights};
use crate::rng::Rng;
use crate::shape::{Shape, Shape1};

/// Copies a batch of values (the identity on flat storage), for forward and backward.
#[inline]
fn copy(from: &[f32], to: &mut [f32]) {
    to[..from.len()].copy_from_slice(from);
}

/// Flattens samples of shape `S` into vectors of `N = S::LEN` values.
#[derive(Clone, Copy, Debug)]
pub struct Flatten<S, const N: usize> {
    _shape: PhantomData<S>,
}

impl<S: Shape, const N: usize> Flatten<S, N> {
    /// The flatten layer.
    ///
    /// # Panics
    /// (At compile time in a `const`.) If `N` differs from the number of elements of `S`.
    pub const fn new() -> Self {
        assert!(S::LEN == N, "Flatten: the output length differs from the number of input elements");
        Flatten { _shape: PhantomData }
    }
}

impl<S: Shape, const N: usize> Default for Flatten<S, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: Shape, const N: usize> Layer for Flatten<S, N> {
    type Input = S;
    type Output = Shape1<N>;
    const KIND: &'static str = "Flatten";
    const INFERENCE_IDENTITY: bool = true;
    no_params!();

    #[inline]
    fn forward(&self, _w: Weights<'_>, x: &[f32], y: &mut [f32], _scratch: &mut [f32]) {
        copy(x, y);
    }

    #[inline]
    fn backward(&self, _x: &[f32], _y: &[f32], dy: &mut [f32], dx: Option<&mut [f32]>, _cx: BackwardCtx<'_>) {
        if let Some(dx) = dx {
            copy(dy, dx);
        }
    }
}

/// Views samples of shape `I` as shape `O` (same number of elements, row-major).
#[derive(Clone, Copy, Debug)]
pub struct Reshape<I, O> {
    _shapes: PhantomData<(I, O)>,
}

impl<I: Shape, O: Shape> Reshape<I, O> {
    /// The reshape layer.
    ///
    /// # Panics
    /// (At compile time in a `const`.) If `I` and `O` have different numbers of
    /// elements.
    pub const fn new() -> Self {
        assert!(I::LEN == O::LEN, "Reshape: the input and output shapes have different numbers of elements");
        Reshape { _shapes: PhantomData }
    }
}

impl<I: Shape, O: Shape> Default for Reshape<I, O> {
    fn default() -> Self {
        Self::new()
    }
}

impl<I: Shape, O: Shape> Layer for Reshape<I, O> {
    type Input = I;
    type Output = O;
    const KIND: &'static str = "Reshape";
    const INFERENCE_IDENTITY: bool = true;
    no_params!();

    #[inline]
    fn forward(&self, _w: Weights<'_>, x: &[f32], y: &mut [f32], _scratch: &mut [f32]) {
        copy(x, y);
    }

    #[inline]
    fn backward(&self, _x: &[f32], _y: &[f32], dy: &mut [f32], dx: Option<&mut [f32]>, _cx: BackwardCtx<'_>) {
        if let Some(dx) = dx {
            copy(dy, dx);
        }
    }
}
