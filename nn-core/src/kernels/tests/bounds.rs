//! The public kernels never read or write outside their slices, whatever sizes,
//! strides and lengths they are given: an extent that overflows a `usize` is rejected
//! (not wrapped into a small one that passes the bounds check), and so are inputs that
//! do not agree with each other (`axpy` of unequal lengths, a convolution given a
//! partial sample, a geometry whose output size disagrees with its padding).
//!
//! Seeded random calls with zero, odd and huge dimensions and strides must give the
//! naive `f64` result or panic (caught); `tools/kernel-probe` runs the same cases, many
//! more of them, under valgrind.
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::kernels::conv::{self, ConvGeometry};
use crate::kernels::gemm::{self, MatRef};

use super::cases::{self, Outcome};

/// The panic message of `call`, or `None` if it returned.
fn panic_message(call: impl FnOnce()) -> Option<String> {
    let payload = catch_unwind(AssertUnwindSafe(call)).err()?;
    Some(match (payload.downcast_ref::<&str>(), payload.downcast_ref::<String>()) {
        (Some(s), _) => s.to_string(),
        (_, Some(s)) => s.clone(),
        _ => String::from("(not a string)"),
    })
}

fn assert_panics(call: impl FnOnce(), expected: &str) {
    match panic_message(call) {
        Some(message) => assert!(message.contains(expected), "panicked with {message:?}, expected {expected:?}"),
        None => panic!("returned; expected a panic with {expected:?}"),
    }
}

/// `3 * ldc` wraps to 2, which passed the old bounds check: the product wrote rows
/// far outside `C` (a segmentation fault in release builds).
#[test]
fn gemm_rejects_a_row_stride_whose_extent_wraps() {
    let (a, b) = ([1.0; 4], [1.0; 2]);
    let mut c = vec![0.0; 4];
    assert_panics(
        || gemm::gemm(1.0, MatRef::new(&a, 4, 1), MatRef::new(&b, 1, 2), 0.0, &mut c, 6_148_914_691_236_517_206),
        "gemm: output out of bounds",
    );
    assert_eq!(c, [0.0; 4]);
}

/// A view whose last element's index wraps past `usize::MAX`.
#[test]
fn gemm_and_gemv_reject_views_whose_extent_wraps() {
    let data = [1.0; 8];
    let wrapping = MatRef { data: &data, rows: 3, cols: 2, rs: usize::MAX / 2 + 1, cs: 1 };
    let b = MatRef::new(&data, 2, 2);
    let mut c = vec![0.0; 8];
    assert_panics(|| gemm::gemm(1.0, wrapping, b, 0.0, &mut c, 2), "gemm: view out of bounds");
    assert_panics(|| gemm::gemm(1.0, b, wrapping.t(), 0.0, &mut c, 3), "gemm: view out of bounds");
    let mut y = vec![0.0; 3];
    assert_panics(|| gemm::gemv(1.0, wrapping, &data, 0.0, &mut y), "gemv: shapes");
    let columns = MatRef { data: &data, rows: 2, cols: 3, rs: 1, cs: usize::MAX / 2 + 1 };
    assert_panics(|| gemm::gemv(1.0, columns, &data, 0.0, &mut y), "gemv: shapes");
}

/// `batch * n` wrapping to 0 passed the old length check of `x`.
#[test]
fn gemv_batch_rejects_a_batch_whose_length_wraps() {
    let w = [1.0; 4];
    let (x, mut y) = (vec![1.0; 4], vec![0.0; 4]);
    let batch = 1 << 63;
    assert_panics(|| gemm::gemv_batch(1.0, MatRef::new(&w, 2, 2), &x, 0.0, &mut y, batch), "gemv_batch: shapes");
}

/// A strided `gemv_batch` whose rows of `A` wrap past `usize::MAX`.
#[test]
fn gemv_batch_rejects_a_matrix_whose_extent_wraps() {
    let w = [1.0; 16];
    let a = MatRef { data: &w, rows: 3, cols: 2, rs: usize::MAX / 2 + 1, cs: 1 };
    let (x, mut y) = (vec![1.0; 4], vec![0.0; 6]);
    assert_panics(|| gemm::gemv_batch(1.0, a, &x, 0.0, &mut y, 2), "gemv_batch: view out of bounds");
}

#[test]
fn axpy_rejects_unequal_lengths() {
    let mut y = vec![1.0; 3];
    assert_panics(|| gemm::axpy(2.0, &[1.0; 4], &mut y), "axpy: x and y differ in length");
    assert_panics(|| gemm::axpy(2.0, &[1.0; 2], &mut y), "axpy: x and y differ in length");
    gemm::axpy(2.0, &[1.0, 2.0, 3.0], &mut y);
    assert_eq!(y, [3.0, 5.0, 7.0]);
}

/// A 1-channel 4x4 image through a 3x3 kernel with padding 1: 4x4 out.
fn same_3x3() -> ConvGeometry {
    ConvGeometry {
        channels: 1,
        height: 4,
        width: 4,
        kernel: [3, 3],
        stride: [1, 1],
        padding: [1, 1],
        dilation: [1, 1],
        out_height: 4,
        out_width: 4,
    }
}

/// Runs a forward of `g` with 2 filters on `x_len` floats, with room for everything.
fn conv_forward(g: &ConvGeometry, x_len: usize) {
    let (x, weight, mut y, mut scratch) = (vec![1.0; x_len], vec![1.0; 64], vec![0.0; 256], vec![0.0; 1 << 15]);
    conv::forward(g, 2, &x, &weight, None, &mut y, &mut scratch);
}

#[test]
fn conv_forward_rejects_a_partial_sample() {
    let g = same_3x3();
    conv_forward(&g, 32);
    assert_panics(|| conv_forward(&g, 31), "not a whole number of samples of 16");
    assert_panics(|| conv_forward(&g, 17), "not a whole number of samples of 16");
    let (x, weight, dy) = (vec![1.0; 20], vec![1.0; 18], vec![1.0; 32]);
    let (mut d_weight, mut scratch) = (vec![0.0; 18], vec![0.0; 1 << 12]);
    assert_panics(
        || conv::backward(&g, 2, &x, &weight, &dy, Some(&mut d_weight), None, None, &mut scratch),
        "not a whole number of samples of 16",
    );
}

/// Output sizes that no padding of the geometry gives: larger than the padded input
/// (reading past the padding after), or so small that input rows are never read.
#[test]
fn conv_forward_rejects_a_geometry_whose_output_disagrees_with_its_padding() {
    conv_forward(&ConvGeometry { padding: [0, 0], out_height: 2, out_width: 2, ..same_3x3() }, 16);
    // `Same` with an even kernel: one more zero after than before.
    conv_forward(&ConvGeometry { kernel: [2, 2], padding: [0, 0], ..same_3x3() }, 16);
    for (g, message) in [
        (ConvGeometry { out_width: 6, ..same_3x3() }, "output width 6 reads past the padding"),
        (ConvGeometry { padding: [0, 0], ..same_3x3() }, "output height 4 reads past the padding"),
        (ConvGeometry { out_height: 2, ..same_3x3() }, "output height 2 leaves input positions unread"),
        (ConvGeometry { padding: [1, 3], ..same_3x3() }, "output width 4 leaves input positions unread"),
        (ConvGeometry { stride: [1, 0], ..same_3x3() }, "a kernel, stride or dilation is 0"),
        (ConvGeometry { width: 0, ..same_3x3() }, "a size is 0"),
        (ConvGeometry { channels: usize::MAX, ..same_3x3() }, "more floats than a usize counts"),
    ] {
        assert_panics(|| conv_forward(&g, 32), message);
    }
}

#[test]
fn conv_forward_rejects_too_few_biases() {
    let g = same_3x3();
    let (x, weight, mut y, mut scratch) = (vec![1.0; 16], vec![1.0; 18], vec![0.0; 32], vec![0.0; 1 << 12]);
    assert_panics(
        || conv::forward(&g, 2, &x, &weight, Some(&[0.5]), &mut y, &mut scratch),
        "fewer biases than the 2 filters",
    );
}

/// The seeded random cases of `cases.rs`: every valid call gives the
/// naive result, every invalid one panics. The counts show that both kinds occur
/// for every kernel.
#[test]
fn random_kernel_calls_give_the_reference_or_panic() {
    let hook = std::panic::take_hook();
    if std::env::var_os("KERNEL_CASES_LOUD").is_none() {
        std::panic::set_hook(Box::new(|_| {}));
    }
    let mut counts = std::collections::BTreeMap::<&str, [usize; 2]>::new();
    let mut failures = Vec::new();
    for seed in 0..8000 {
        let (kernel, outcome) = cases::run(seed);
        let count = counts.entry(kernel).or_default();
        match outcome {
            Outcome::Correct => count[0] += 1,
            Outcome::Rejected => count[1] += 1,
            Outcome::Wrong(what) => failures.push(format!("seed {seed}, {kernel}: wrong: {what}")),
            Outcome::Accepted(what) => failures.push(format!("seed {seed}, {kernel}: accepted: {what}")),
        }
    }
    std::panic::set_hook(hook);
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
    eprintln!("(correct, rejected) per kernel: {counts:?}");
    assert_eq!(counts.len(), 5);
    for (kernel, [correct, rejected]) in counts {
        assert!(correct >= 100 && rejected >= 50, "{kernel}: {correct} correct, {rejected} rejected");
    }
}
