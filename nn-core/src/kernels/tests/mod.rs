//! Tests of the kernels that sweep several kernels or instruction sets, one file per
//! topic (a test of one kernel alone stays in that kernel's file, `mod tests`):
//!
//! * `products`: `gemm`, `gemv` and the dense forward against naive `f64` references;
//! * `bounds`: sizes, strides and slice lengths out of range are rejected, and the
//!   seeded random calls of `cases` give the reference or panic;
//! * `isa_bits`: every instruction set gives the same bits (child processes of the
//!   test binary under `NN_ISA`; `.ci/run` compares x86-64 with AArch64 through it);
//! * `maths`: `exp`, `sigmoid` and `tanh` against `f64`.
//!
//! The `f64` references of activations and dense layers are the integration tests'
//! (`tests/common/gradcheck.rs`), shared rather than copied.
#[path = "../../../../tests/common/gradcheck.rs"]
mod gradcheck;

mod bounds;
mod cases;
mod isa_bits;
mod maths;
mod products;
