//! Numeric inner loops. Non-generic: sizes are arguments, so every layer of every
//! network shares one copy of each kernel. The exception is batch-1 work, where the
//! loop overhead is a large share: `dense::forward_one` and the streaming recurrent
//! step sum their rows by a kernel monomorphised for the input width (one small copy
//! per distinct width).
//!
//! Matrices are row-major slices described by their row and column strides, as in
//! `matrixmultiply`; a transpose is a swap of the two strides and costs nothing.
#[cfg(arm_vfma)]
mod arm_vfma;
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2;
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512;
pub mod conv;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod conv_grad;
pub mod dense;
pub mod gemm;
pub mod isa;
pub mod maths;
#[cfg(target_arch = "aarch64")]
pub(crate) mod neon;
pub mod optim;
#[cfg(all(feature = "threading", target_arch = "x86_64"))]
pub(crate) mod parallel;
pub mod pool;
pub mod portable;
pub mod recurrent;

pub use gemm::{gemm, MatRef};
#[cfg(feature = "internals")]
pub use gemm::{gemv, gemv_batch};

pub mod attention;

#[cfg(all(test, feature = "std"))]
mod tests;
