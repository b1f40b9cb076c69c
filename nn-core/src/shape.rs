//! Compile-time tensor shapes.
//!
//! A shape is a type whose dimensions are const generics: `Shape1<10>`,
//! `Shape2<32, 8>` (a sequence: time, features), `Shape3<1, 8, 8>` (an image:
//! channels, height, width). One sample of shape `S` is a [`Tensor<S>`], stored as a
//! nested array (`[[[f32; W]; H]; C]`), so its size is part of its type and it lives on
//! the stack or in a `static` without a heap. A batch adds an outer dimension and is one
//! contiguous slice of `batch * S::LEN` floats, one matrix for GEMM.
//!
//! Why const generics rather than `typenum` numbers: the shapes are what a user reads
//! in a compile error. With const generics a mismatch reads
//! `expected Shape1<16>, found Shape1<8>`; with `typenum` it reads as nested
//! `UInt<UInt<UTerm, B1>, B0>` binary digits. Shape arithmetic (convolution output
//! sizes, flattening) is done in const expressions that `network!` writes out for
//! each concrete network, which stable Rust evaluates and checks at compile time, and
//! there is no upper limit on a dimension.
//!
//! ```
//! use nn_core::shape::{Shape, Shape3};
//! type Image = Shape3<1, 8, 8>;
//! assert_eq!(Image::LEN, 64);
//! assert_eq!(Image::DIMS, &[1, 8, 8]);
//! ```
use core::fmt;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};

/// A tensor shape known at compile time.
pub trait Shape: 'static + Copy {
    /// The storage of one sample: a (nested) array of `LEN` floats.
    type Array: Copy + 'static;
    /// The number of elements.
    const LEN: usize;
    /// The dimensions, outermost first.
    const DIMS: &'static [usize];
    /// A sample of zeros.
    const ZEROS: Self::Array;
}

/// A vector `[A]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shape1<const A: usize>;
/// A matrix or sequence `[A, B]` (for sequences: `[time, features]`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shape2<const A: usize, const B: usize>;
/// An image `[A, B, C]` (`[channels, height, width]`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shape3<const A: usize, const B: usize, const C: usize>;

impl<const A: usize> Shape for Shape1<A> {
    type Array = [f32; A];
    const LEN: usize = A;
    const DIMS: &'static [usize] = &[A];
    const ZEROS: Self::Array = [0.0; A];
}

impl<const A: usize, const B: usize> Shape for Shape2<A, B> {
    type Array = [[f32; B]; A];
    const LEN: usize = A * B;
    const DIMS: &'static [usize] = &[A, B];
    const ZEROS: Self::Array = [[0.0; B]; A];
}

impl<const A: usize, const B: usize, const C: usize> Shape for Shape3<A, B, C> {
    type Array = [[[f32; C]; B]; A];
    const LEN: usize = A * B * C;
    const DIMS: &'static [usize] = &[A, B, C];
    const ZEROS: Self::Array = [[[0.0; C]; B]; A];
}

/// One sample of shape `S`: `S::LEN` floats, row-major, on the stack.
///
/// It dereferences to a flat `[f32]` slice; `Tensor::<Shape1<3>>::from([1.0, 2.0, 3.0])`
/// builds one from an array and [`Tensor::from_slice`] from a slice of the right length.
#[repr(transparent)]
pub struct Tensor<S: Shape> {
    data: S::Array,
    _shape: PhantomData<S>,
}

impl<S: Shape> Tensor<S> {
    /// The zero tensor.
    pub const fn zeros() -> Self {
        Tensor { data: S::ZEROS, _shape: PhantomData }
    }

    /// A tensor from its nested-array storage.
    pub const fn new(data: S::Array) -> Self {
        Tensor { data, _shape: PhantomData }
    }

    /// A copy of `values`, or `None` unless it holds exactly `S::LEN` floats.
    pub fn from_slice(values: &[f32]) -> Option<Self> {
        if values.len() != S::LEN {
            return None;
        }
        let mut t = Self::zeros();
        t.as_mut_slice().copy_from_slice(values);
        Some(t)
    }

    /// The nested-array storage.
    pub fn array(&self) -> &S::Array {
        &self.data
    }

    /// The elements, row-major.
    pub fn as_slice(&self) -> &[f32] {
        // SAFETY: `S::Array` is an array (possibly nested) of exactly `S::LEN` `f32`s,
        // and nested arrays have no padding, so its memory is `S::LEN` initialised,
        // aligned floats.
        unsafe { core::slice::from_raw_parts((&self.data as *const S::Array).cast::<f32>(), S::LEN) }
    }

    /// The elements, row-major, mutable.
    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        // SAFETY: as in `as_slice`; the borrow is unique.
        unsafe { core::slice::from_raw_parts_mut((&mut self.data as *mut S::Array).cast::<f32>(), S::LEN) }
    }

    /// The index of the largest element (the predicted class of a score vector).
    pub fn argmax(&self) -> usize {
        argmax(self.as_slice())
    }
}

/// The index of the largest value (the first on ties, 0 for an empty slice).
pub fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best
}

impl<S: Shape> Clone for Tensor<S> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<S: Shape> Copy for Tensor<S> {}

impl<S: Shape> Default for Tensor<S> {
    fn default() -> Self {
        Self::zeros()
    }
}

impl<S: Shape> Deref for Tensor<S> {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        self.as_slice()
    }
}

impl<S: Shape> DerefMut for Tensor<S> {
    fn deref_mut(&mut self) -> &mut [f32] {
        self.as_mut_slice()
    }
}

impl<S: Shape> PartialEq for Tensor<S> {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl<S: Shape> fmt::Debug for Tensor<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tensor{:?}", S::DIMS)?;
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl<const A: usize> From<[f32; A]> for Tensor<Shape1<A>> {
    fn from(data: [f32; A]) -> Self {
        Tensor::new(data)
    }
}

impl<const A: usize, const B: usize> From<[[f32; B]; A]> for Tensor<Shape2<A, B>> {
    fn from(data: [[f32; B]; A]) -> Self {
        Tensor::new(data)
    }
}

impl<const A: usize, const B: usize, const C: usize> From<[[[f32; C]; B]; A]> for Tensor<Shape3<A, B, C>> {
    fn from(data: [[[f32; C]; B]; A]) -> Self {
        Tensor::new(data)
    }
}

/// Views a slice of samples as one contiguous batch of floats.
pub fn flatten<S: Shape>(samples: &[Tensor<S>]) -> &[f32] {
    // SAFETY: `Tensor<S>` is `repr(transparent)` over `S::Array`, `S::LEN` floats
    // without padding, so a slice of them is `len * S::LEN` contiguous floats.
    unsafe { core::slice::from_raw_parts(samples.as_ptr().cast::<f32>(), samples.len() * S::LEN) }
}

/// Views a mutable slice of samples as one contiguous batch of floats.
pub fn flatten_mut<S: Shape>(samples: &mut [Tensor<S>]) -> &mut [f32] {
    // SAFETY: as in `flatten`; the borrow is unique.
    unsafe { core::slice::from_raw_parts_mut(samples.as_mut_ptr().cast::<f32>(), samples.len() * S::LEN) }
}
