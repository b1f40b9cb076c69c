//! [`AlignedState`]: a model's state on the heap, starting on a cache line.
use alloc::alloc::{alloc_zeroed, dealloc, handle_alloc_error, Layout};
use alloc::vec::Vec;
use core::fmt;
use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;

/// A heap array of `f32` whose first element sits on a 64-byte boundary (a cache line):
/// the storage of a [`Model`](crate::Model)'s state with `alloc` (the default `P`).
///
/// A `Vec<f32>` starts wherever the allocator puts it (16 bytes from a line on
/// glibc, depending on what the process allocated before), so that a weight row that
/// is a whole number of cache lines long may cross one more line than it fills, and a
/// 64-byte load of it two lines. Measured on an AMD Zen 4 (`docs/speed.md`): the
/// digits MLP at batch 1 took 608 ns with its weights on a line or 32 bytes from one,
/// 638 ns 16 bytes from one, 652 ns 48 bytes from one.
///
/// It dereferences to `[f32]`; `From<Vec<f32>>` and `From<&[f32]>` copy into a new
/// aligned array, [`AlignedState::into_vec`] copies back out.
///
/// ```
/// # use nn_core::model::AlignedState;
/// let mut state = AlignedState::zeros(100);
/// state[3] = 1.5;
/// assert_eq!(state.as_ptr() as usize % 64, 0);
/// assert_eq!((state.len(), state[3]), (100, 1.5));
/// let copy = AlignedState::from(vec![1.0, 2.0]);
/// assert_eq!(copy.into_vec(), vec![1.0, 2.0]);
/// ```
pub struct AlignedState {
    /// The first element: 64-byte aligned, allocated with [`AlignedState::layout`]
    /// of `len` when `len > 0`, dangling (and never freed) when `len == 0`.
    ptr: NonNull<f32>,
    len: usize,
}

// SAFETY: an `AlignedState` owns its array alone (as a `Box<[f32]>` does): sending it to
// another thread moves that ownership, and `f32` is `Send`.
unsafe impl Send for AlignedState {}
// SAFETY: shared references only read the array (through `&[f32]`), and `f32` is `Sync`.
unsafe impl Sync for AlignedState {}

impl AlignedState {
    /// The alignment of the first element, in bytes.
    pub const ALIGN: usize = 64;

    /// The allocation of `len > 0` floats, or `None` when its size overflows `isize`.
    fn layout(len: usize) -> Option<Layout> {
        let bytes = len.checked_mul(core::mem::size_of::<f32>())?;
        Layout::from_size_align(bytes, Self::ALIGN).ok()
    }

    /// `len` zeros.
    ///
    /// # Panics
    ///
    /// When `len * 4` bytes (rounded up to 64) exceed `isize::MAX`, as `vec![0.0; len]`
    /// does; a failed allocation ends the process as for a `Vec` (`handle_alloc_error`).
    pub fn zeros(len: usize) -> Self {
        if len == 0 {
            return Self::new();
        }
        let Some(layout) = Self::layout(len) else {
            panic!("AlignedState: capacity overflow ({len} floats)");
        };
        // SAFETY: `layout` has a non-zero size (`len > 0`, 4 bytes each).
        let raw = unsafe { alloc_zeroed(layout) };
        let Some(ptr) = NonNull::new(raw.cast::<f32>()) else { handle_alloc_error(layout) };
        // All-zero bytes are the `f32` value 0.0: the array is initialised.
        AlignedState { ptr, len }
    }

    /// An empty array (no allocation).
    pub const fn new() -> Self {
        /// A cache line: its dangling pointer is 64-byte aligned.
        #[repr(C, align(64))]
        struct Line([f32; 16]);
        // A dangling pointer, non-null and aligned (at 64, so for `f32`) as an empty
        // slice needs; never read or written through, never freed (`len == 0`).
        AlignedState { ptr: NonNull::<Line>::dangling().cast::<f32>(), len: 0 }
    }

    /// A copy of `values`.
    pub fn from_slice(values: &[f32]) -> Self {
        let mut state = Self::zeros(values.len());
        state.copy_from_slice(values);
        state
    }

    /// The values as a slice.
    pub fn as_slice(&self) -> &[f32] {
        // SAFETY: `ptr` is aligned for `f32` and non-null; for `len > 0` it points to
        // `len` initialised floats that this value owns (allocated zeroed, or
        // written through `as_mut_slice`); for `len == 0` a dangling aligned pointer
        // is a valid empty slice. The size, `len * 4`, fits in `isize` (checked by
        // `layout` at allocation).
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The values as a mutable slice.
    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        // SAFETY: as in `as_slice`; `&mut self` makes this the only reference to the
        // array for the slice's lifetime.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    /// A `Vec<f32>` with the same values (a copy: a `Vec` frees its array with the
    /// alignment of `f32`, not this one's).
    pub fn into_vec(self) -> Vec<f32> {
        self.as_slice().to_vec()
    }
}

impl Drop for AlignedState {
    fn drop(&mut self) {
        if self.len == 0 {
            return;
        }
        let Some(layout) = Self::layout(self.len) else {
            // Unreachable: `zeros` allocated with this layout.
            return;
        };
        // SAFETY: `ptr` was returned by `alloc_zeroed(layout)` for this `len` (a
        // non-empty array is only made by `zeros`) and is freed once, here.
        unsafe { dealloc(self.ptr.as_ptr().cast::<u8>(), layout) }
    }
}

impl Default for AlignedState {
    fn default() -> Self {
        Self::new()
    }
}

impl Clone for AlignedState {
    fn clone(&self) -> Self {
        Self::from_slice(self)
    }

    fn clone_from(&mut self, source: &Self) {
        if self.len == source.len {
            self.copy_from_slice(source);
        } else {
            *self = source.clone();
        }
    }
}

impl fmt::Debug for AlignedState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_slice(), f)
    }
}

impl PartialEq for AlignedState {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl PartialEq<[f32]> for AlignedState {
    fn eq(&self, other: &[f32]) -> bool {
        self.as_slice() == other
    }
}

impl PartialEq<Vec<f32>> for AlignedState {
    fn eq(&self, other: &Vec<f32>) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Deref for AlignedState {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        self.as_slice()
    }
}

impl DerefMut for AlignedState {
    fn deref_mut(&mut self) -> &mut [f32] {
        self.as_mut_slice()
    }
}

impl AsRef<[f32]> for AlignedState {
    fn as_ref(&self) -> &[f32] {
        self.as_slice()
    }
}

impl AsMut<[f32]> for AlignedState {
    fn as_mut(&mut self) -> &mut [f32] {
        self.as_mut_slice()
    }
}

impl core::borrow::Borrow<[f32]> for AlignedState {
    fn borrow(&self) -> &[f32] {
        self.as_slice()
    }
}

impl core::borrow::BorrowMut<[f32]> for AlignedState {
    fn borrow_mut(&mut self) -> &mut [f32] {
        self.as_mut_slice()
    }
}

impl From<&[f32]> for AlignedState {
    fn from(values: &[f32]) -> Self {
        Self::from_slice(values)
    }
}

impl From<Vec<f32>> for AlignedState {
    fn from(values: Vec<f32>) -> Self {
        Self::from_slice(&values)
    }
}

impl From<AlignedState> for Vec<f32> {
    fn from(state: AlignedState) -> Self {
        state.into_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aligned(s: &[f32]) -> bool {
        (s.as_ptr() as usize).is_multiple_of(AlignedState::ALIGN)
    }

    #[test]
    fn every_length_starts_on_a_cache_line_zeroed() {
        // Allocations in between so that the heap is not fresh.
        let mut keep = Vec::new();
        for len in [0usize, 1, 3, 15, 16, 17, 100, 4096, 17_000] {
            keep.push(alloc::vec![1u8; len % 23 + 1]);
            let state = AlignedState::zeros(len);
            assert!(aligned(&state), "{len} floats at {:p}", state.as_ptr());
            assert_eq!(state.len(), len);
            assert!(state.iter().all(|&v| v == 0.0));
            let copy = state.clone();
            assert!(aligned(&copy));
            assert_eq!(copy, state);
        }
    }

    #[test]
    fn conversions_keep_the_values() {
        let values: Vec<f32> = (0..37).map(|i| i as f32 * 0.5 - 3.0).collect();
        let state = AlignedState::from(values.clone());
        assert!(aligned(&state));
        assert_eq!(state, values);
        let from_slice = AlignedState::from(&values[3..9]);
        assert!(aligned(&from_slice));
        assert_eq!(&from_slice[..], &values[3..9]);
        let mut target = AlignedState::zeros(6);
        target.clone_from(&from_slice);
        assert_eq!(target, from_slice);
        let mut other = AlignedState::zeros(2);
        other.clone_from(&from_slice);
        assert!(aligned(&other));
        assert_eq!(other, from_slice);
        assert_eq!(Vec::from(state), values);
        assert_eq!(alloc::format!("{from_slice:?}"), alloc::format!("{:?}", &values[3..9]));
        let empty = AlignedState::default();
        assert!(aligned(&empty) && aligned(&empty.clone()));
        assert!(empty.is_empty() && empty.clone().into_vec().is_empty());
    }

    #[test]
    fn mutable_access_writes_the_array() {
        let mut state = AlignedState::zeros(10);
        state[9] = 2.0;
        state.as_mut()[0] = 1.0;
        let sum: f32 = state.iter().sum();
        assert_eq!(sum, 3.0);
    }

    #[test]
    #[should_panic(expected = "capacity overflow")]
    fn a_size_beyond_usize_panics() {
        let _ = AlignedState::zeros(usize::MAX / 2);
    }

    #[test]
    #[should_panic(expected = "capacity overflow")]
    fn a_size_beyond_isize_panics() {
        let _ = AlignedState::zeros(isize::MAX as usize / 4 + 1);
    }

    #[cfg(feature = "std")]
    #[test]
    fn sent_to_another_thread() {
        let state = AlignedState::from(alloc::vec![1.0, 2.0, 3.0]);
        let sum = std::thread::spawn(move || state.iter().sum::<f32>()).join().unwrap();
        assert_eq!(sum, 6.0);
    }
}
