//! Type-level tensor shapes.
//!
//! A shape is a type whose dimensions are `typenum` unsigned integers; its storage, a
//! [`Tensor`], is a `GenericArray<f32, _>` whose length is the typenum product of the
//! dimensions. Layout is row-major and channels-first: `[C, H, W]` images, `[T, F]`
//! sequences. A batch adds an outer dimension and is one contiguous slice.
//!
//! ```
//! use nn_core::shape::{Shape, Shape3};
//! use nn_core::typenum::{U1, U8};
//! type Image = Shape3<U1, U8, U8>;
//! assert_eq!(Image::LEN, 64);
//! assert_eq!(Image::DIMS, &[1, 8, 8]);
//! ```
use core::marker::PhantomData;
use generic_array::{ArrayLength, GenericArray};
use typenum::{Prod, Unsigned};

/// A tensor shape known at compile time.
pub trait Shape: 'static {
    /// The number of elements, as a type (the product of the dimensions).
    type Len: ArrayLength;
    /// The number of elements.
    const LEN: usize;
    /// The dimensions, outermost first.
    const DIMS: &'static [usize];
}

/// One sample of shape `S`: `S::LEN` floats, row-major.
pub type Tensor<S> = GenericArray<f32, <S as Shape>::Len>;

/// A vector `[A]`.
pub struct Shape1<A>(PhantomData<A>);
/// A matrix or sequence `[A, B]` (for sequences: `[time, features]`).
pub struct Shape2<A, B>(PhantomData<(A, B)>);
/// An image `[A, B, C]` (`[channels, height, width]`).
pub struct Shape3<A, B, C>(PhantomData<(A, B, C)>);

impl<A: Unsigned + ArrayLength + 'static> Shape for Shape1<A> {
    type Len = A;
    const LEN: usize = A::USIZE;
    const DIMS: &'static [usize] = &[A::USIZE];
}

impl<A, B> Shape for Shape2<A, B>
where
    A: Unsigned + 'static + core::ops::Mul<B>,
    B: Unsigned + 'static,
    Prod<A, B>: ArrayLength,
{
    type Len = Prod<A, B>;
    const LEN: usize = A::USIZE * B::USIZE;
    const DIMS: &'static [usize] = &[A::USIZE, B::USIZE];
}

impl<A, B, C> Shape for Shape3<A, B, C>
where
    A: Unsigned + 'static + core::ops::Mul<B>,
    B: Unsigned + 'static,
    C: Unsigned + 'static,
    Prod<A, B>: core::ops::Mul<C>,
    Prod<Prod<A, B>, C>: ArrayLength,
{
    type Len = Prod<Prod<A, B>, C>;
    const LEN: usize = A::USIZE * B::USIZE * C::USIZE;
    const DIMS: &'static [usize] = &[A::USIZE, B::USIZE, C::USIZE];
}

/// Views a slice of samples as one contiguous batch of floats.
pub fn flatten<S: Shape>(samples: &[Tensor<S>]) -> &[f32] {
    // SAFETY: `GenericArray<f32, N>` is `repr(transparent)` over `[f32; N]`, so a slice
    // of them is `len * N` contiguous, initialised, aligned floats.
    unsafe { core::slice::from_raw_parts(samples.as_ptr().cast::<f32>(), samples.len() * S::LEN) }
}

/// Views a mutable slice of samples as one contiguous batch of floats.
pub fn flatten_mut<S: Shape>(samples: &mut [Tensor<S>]) -> &mut [f32] {
    // SAFETY: as in `flatten`; the borrow is unique.
    unsafe {
        core::slice::from_raw_parts_mut(samples.as_mut_ptr().cast::<f32>(), samples.len() * S::LEN)
    }
}
