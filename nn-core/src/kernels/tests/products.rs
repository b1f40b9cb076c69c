//! `kernels::gemm` and `kernels::gemv` against a naive `f64` reference, and the dense
//! forward's batch-1 (GEMV) path against its batch (GEMM) path.
//!
//! Sizes include every non-multiple of `matrixmultiply`'s `f32` micro-tiles (8x8 and
//! 4x16 wide, depending on the CPU) up to 65, all four transpose combinations (a
//! transpose is `MatRef::t`, a stride swap), padded leading dimensions whose padding
//! holds NaN (it must never be read) and a padded `ldc` whose padding must stay
//! untouched. Products below `PACKED_MIN_FLOPS` run the direct kernels (all three of
//! their stride cases); a few larger ones run the packed `matrixmultiply` kernel.
//!
//! Tolerance: an `f32` sum of `k` products is within `k * 2^-24` of the exact value,
//! relative to `sum |a b|`. Every element must satisfy
//! `|C - C_ref| <= max(1e-5, k * 2^-23) * (|alpha| sum_p |A_ip B_pj| + |beta C0_ij|)`,
//! `C_ref` in `f64`: relative `1e-5` up to `k = 65`.
use super::gradcheck;

use crate::kernels::gemm::{gemv, PACKED_MIN_FLOPS};
use crate::kernels::{dense, gemm, MatRef};
use crate::Rng;
use gradcheck::{assert_close, dense_f64, uniform, widen, Tolerance, ACTIVATIONS};

/// The sizes swept for `m`, `k` and `n`.
const SIZES: [usize; 16] = [0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 64, 65];

/// Relative tolerance against the magnitude of what was summed (for `k <= 65`).
const REL: f64 = 1e-5;

/// The `(alpha, beta)` pairs: an overwrite (`C` starts as NaN) and a scaled update.
const SCALINGS: [(f32, f32); 2] = [(1.0, 0.0), (0.5, 2.0)];

/// A logical `rows x cols` matrix stored row-major, or column-major (its transpose
/// row-major, viewed through `MatRef::t`), with `pad` NaN floats after each stored row.
struct Stored {
    data: Vec<f32>,
    rows: usize,
    cols: usize,
    column_major: bool,
    lead: usize,
}

impl Stored {
    fn new(logical: &[f32], rows: usize, cols: usize, column_major: bool, pad: usize) -> Self {
        let (outer, inner) = if column_major { (cols, rows) } else { (rows, cols) };
        let lead = inner + pad;
        let mut data = vec![f32::NAN; outer * lead];
        for i in 0..rows {
            for j in 0..cols {
                let at = if column_major { j * lead + i } else { i * lead + j };
                data[at] = logical[i * cols + j];
            }
        }
        Stored { data, rows, cols, column_major, lead }
    }

    fn view(&self) -> MatRef<'_> {
        if self.column_major {
            MatRef { data: &self.data, rows: self.cols, cols: self.rows, rs: self.lead, cs: 1 }.t()
        } else {
            MatRef { data: &self.data, rows: self.rows, cols: self.cols, rs: self.lead, cs: 1 }
        }
    }
}

/// One `gemm` case: `C[m x n] = alpha A[m x k] B[k x n] + beta C`.
struct Case {
    m: usize,
    k: usize,
    n: usize,
    a_column_major: bool,
    b_column_major: bool,
    alpha: f32,
    beta: f32,
    /// Padding of A's and B's stored rows.
    pad: usize,
    /// `ldc - n`.
    ldc_pad: usize,
}

impl Case {
    fn run(&self, rng: &mut Rng) {
        let Case { m, k, n, alpha, beta, .. } = *self;
        let a = uniform(rng, m * k, -1.0, 1.0);
        let b = uniform(rng, k * n, -1.0, 1.0);
        let c0 = if beta == 0.0 { vec![f32::NAN; m * n] } else { uniform(rng, m * n, -1.0, 1.0) };
        let ldc = n + self.ldc_pad;
        // The padding of C holds a sentinel that must survive bit for bit.
        let sentinel = f32::from_bits(0x7fc0_1234);
        let mut c = vec![sentinel; m * ldc];
        for i in 0..m {
            c[i * ldc..i * ldc + n].copy_from_slice(&c0[i * n..(i + 1) * n]);
        }

        let stored_a = Stored::new(&a, m, k, self.a_column_major, self.pad);
        let stored_b = Stored::new(&b, k, n, self.b_column_major, self.pad);
        gemm(alpha, stored_a.view(), stored_b.view(), beta, &mut c, ldc);

        let rel = REL.max(k as f64 * f32::EPSILON as f64);
        for i in 0..m {
            for j in 0..n {
                let (mut exact, mut magnitude) = (0.0f64, 0.0f64);
                for p in 0..k {
                    let product = a[i * k + p] as f64 * b[p * n + j] as f64;
                    exact += product;
                    magnitude += product.abs();
                }
                let (mut expected, mut bound) = (alpha as f64 * exact, alpha.abs() as f64 * magnitude);
                if beta != 0.0 {
                    expected += beta as f64 * c0[i * n + j] as f64;
                    bound += (beta as f64 * c0[i * n + j] as f64).abs();
                }
                let found = c[i * ldc + j];
                assert!(
                    (found as f64 - expected).abs() <= rel * bound,
                    "C[{i}, {j}] = {found}, expected {expected} (bound {bound:e}) in {self:?}"
                );
            }
            for j in n..ldc {
                assert_eq!(c[i * ldc + j].to_bits(), sentinel.to_bits(), "ldc padding written in {self:?}");
            }
        }
    }
}

impl core::fmt::Debug for Case {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let layout = |column_major| {
            if column_major {
                "column-major"
            } else {
                "row-major"
            }
        };
        write!(
            f,
            "m={} k={} n={} A {} B {} alpha={} beta={} pad={} ldc=n+{}",
            self.m,
            self.k,
            self.n,
            layout(self.a_column_major),
            layout(self.b_column_major),
            self.alpha,
            self.beta,
            self.pad,
            self.ldc_pad
        )
    }
}

/// Every `(A layout, B layout)` pair: `false` is row-major, `true` a transposed view.
const LAYOUTS: [(bool, bool); 4] = [(false, false), (false, true), (true, false), (true, true)];

#[test]
fn gemm_matches_reference_over_sizes_transposes_and_scalings() {
    let mut rng = Rng::new(1);
    for m in SIZES {
        for k in SIZES {
            for n in SIZES {
                for (a_column_major, b_column_major) in LAYOUTS {
                    for (alpha, beta) in SCALINGS {
                        Case { m, k, n, a_column_major, b_column_major, alpha, beta, pad: 0, ldc_pad: 0 }.run(&mut rng);
                    }
                }
            }
        }
    }
}

#[test]
fn gemm_matches_reference_with_padded_operands_and_ldc() {
    let mut rng = Rng::new(2);
    let sizes = [1, 3, 8, 9, 16, 17, 33];
    for m in sizes {
        for k in sizes {
            for n in sizes {
                for (a_column_major, b_column_major) in LAYOUTS {
                    for (alpha, beta) in SCALINGS {
                        Case { m, k, n, a_column_major, b_column_major, alpha, beta, pad: 3, ldc_pad: 5 }.run(&mut rng);
                    }
                }
            }
        }
    }
}

#[test]
fn gemm_matches_reference_on_the_packed_path() {
    let mut rng = Rng::new(5);
    for (m, k, n) in [(130, 130, 130), (129, 257, 65), (257, 64, 129), (8, 513, 512)] {
        assert!(m * k * n >= PACKED_MIN_FLOPS, "{m}x{k}x{n} no longer takes the packed path");
        for (a_column_major, b_column_major) in LAYOUTS {
            for (alpha, beta) in SCALINGS {
                for (pad, ldc_pad) in [(0, 0), (3, 5)] {
                    Case { m, k, n, a_column_major, b_column_major, alpha, beta, pad, ldc_pad }.run(&mut rng);
                }
            }
        }
    }
}

#[test]
fn gemm_with_empty_inner_dimension_gives_beta_c() {
    for m in [1, 2, 9] {
        for n in [1, 3, 17] {
            for (a_column_major, b_column_major) in LAYOUTS {
                let a = Stored::new(&[], m, 0, a_column_major, 0);
                let b = Stored::new(&[], 0, n, b_column_major, 0);
                let c0: Vec<f32> = (0..m * n).map(|v| v as f32 - 4.5).collect();

                let mut c = c0.clone();
                gemm(1.5, a.view(), b.view(), 2.0, &mut c, n);
                let doubled: Vec<f32> = c0.iter().map(|v| 2.0 * v).collect();
                assert_eq!(c, doubled, "beta = 2, m={m} n={n}");

                let mut c = vec![f32::NAN; m * n];
                gemm(1.5, a.view(), b.view(), 0.0, &mut c, n);
                assert_eq!(c, vec![0.0; m * n], "beta = 0 overwrites NaN, m={m} n={n}");
            }
        }
    }
}

#[test]
#[should_panic(expected = "gemm: output out of bounds")]
fn gemm_rejects_a_short_output() {
    let a = [1.0; 6];
    let mut c = [0.0; 8];
    gemm(1.0, MatRef::new(&a, 3, 2), MatRef::new(&a, 2, 3), 0.0, &mut c, 3);
}

/// How a `gemv` matrix is stored.
#[derive(Clone, Copy, Debug)]
enum Layout {
    RowMajor,
    ColumnMajor,
    /// Neither stride is 1: element `(i, j)` at `i * (2n + 1) + 2j`.
    Strided,
}

#[test]
fn gemv_matches_reference_for_each_layout() {
    let mut rng = Rng::new(3);
    for m in SIZES {
        for n in SIZES {
            for layout in [Layout::RowMajor, Layout::ColumnMajor, Layout::Strided] {
                for (alpha, beta) in SCALINGS {
                    let a = uniform(&mut rng, m * n, -1.0, 1.0);
                    let x = uniform(&mut rng, n, -1.0, 1.0);
                    let y0 = if beta == 0.0 { vec![f32::NAN; m] } else { uniform(&mut rng, m, -1.0, 1.0) };
                    let strided;
                    let stored;
                    let view = match layout {
                        Layout::RowMajor => MatRef::new(&a, m, n),
                        Layout::ColumnMajor => {
                            stored = Stored::new(&a, m, n, true, 0);
                            stored.view()
                        }
                        Layout::Strided => {
                            let (rs, cs) = (2 * n + 1, 2);
                            let mut data = vec![f32::NAN; m * rs];
                            for i in 0..m {
                                for j in 0..n {
                                    data[i * rs + j * cs] = a[i * n + j];
                                }
                            }
                            strided = data;
                            MatRef { data: &strided, rows: m, cols: n, rs, cs }
                        }
                    };
                    // y is longer than m: the tail must stay untouched.
                    let mut y = y0.clone();
                    y.extend([7.0, 8.0]);
                    gemv(alpha, view, &x, beta, &mut y);
                    assert_eq!(&y[m..], &[7.0, 8.0], "gemv wrote past m");
                    for i in 0..m {
                        let products = (0..n).map(|j| a[i * n + j] as f64 * x[j] as f64);
                        let exact: f64 = products.clone().sum();
                        let magnitude: f64 = products.map(f64::abs).sum();
                        let (mut expected, mut bound) = (alpha as f64 * exact, alpha.abs() as f64 * magnitude);
                        if beta != 0.0 {
                            expected += beta as f64 * y0[i] as f64;
                            bound += (beta as f64 * y0[i] as f64).abs();
                        }
                        assert!(
                            (y[i] as f64 - expected).abs() <= REL * bound,
                            "y[{i}] = {}, expected {expected}: m={m} n={n} {layout:?} alpha={alpha} beta={beta}",
                            y[i]
                        );
                    }
                }
            }
        }
    }
}

/// The dense forward, batch 1 (GEMV) and batch > 1 (GEMM), with and without bias and
/// stored pre-activations, against the `f64` reference `f(x W^T + b)`.
///
/// Tolerance: every activation is 1.2-Lipschitz or better and softmax moves by at most
/// twice the largest change of its row, so an output is within
/// `2e-5 * max_o (sum_i |x_i W_oi| + |b_o|)` of the reference (the GEMM bound, doubled),
/// plus `1e-5` relative for the activation's own rounding.
#[test]
fn dense_forward_batch_one_equals_batch_rows_and_reference() {
    let mut rng = Rng::new(4);
    let batch = 7;
    for (inputs, outputs) in [(1, 1), (3, 1), (8, 8), (17, 5), (33, 16), (64, 10)] {
        for activation in ACTIVATIONS {
            for with_bias in [false, true] {
                let what = format!("{inputs}->{outputs} {activation:?} bias={with_bias}");
                let x = uniform(&mut rng, batch * inputs, -1.5, 1.5);
                let weight = uniform(&mut rng, outputs * inputs, -1.0, 1.0);
                let b = uniform(&mut rng, outputs, -1.0, 1.0);
                let bias = with_bias.then_some(&b[..]);
                let (z_ref, y_ref) =
                    dense_f64(&widen(&x), &widen(&weight), bias.map(widen).as_deref(), activation, inputs, outputs);

                // Batch path, with and without the stored pre-activations.
                let mut y = vec![f32::NAN; batch * outputs];
                dense::forward(&x, &weight, bias, activation, inputs, outputs, &mut y, None);
                let mut y_pre = vec![f32::NAN; batch * outputs];
                let mut pre = vec![f32::NAN; batch * outputs];
                dense::forward(&x, &weight, bias, activation, inputs, outputs, &mut y_pre, Some(&mut pre));

                for r in 0..batch {
                    let rows = r * outputs..(r + 1) * outputs;
                    let magnitude = (0..outputs)
                        .map(|o| {
                            let dot: f64 = (0..inputs)
                                .map(|i| (x[r * inputs + i] as f64 * weight[o * inputs + i] as f64).abs())
                                .sum();
                            dot + if with_bias { b[o].abs() as f64 } else { 0.0 }
                        })
                        .fold(0.0, f64::max);
                    let tol = Tolerance { abs: 2e-5 * magnitude, rel: 1e-5 };
                    assert_close(&format!("{what}: batch row {r}"), &y[rows.clone()], &y_ref[rows.clone()], tol);
                    assert_close(
                        &format!("{what}: batch row {r} (pre)"),
                        &y_pre[rows.clone()],
                        &y_ref[rows.clone()],
                        tol,
                    );
                    assert_close(&format!("{what}: pre row {r}"), &pre[rows.clone()], &z_ref[rows.clone()], tol);

                    // The same row alone takes the GEMV path.
                    let x_row = &x[r * inputs..(r + 1) * inputs];
                    let mut y_one = vec![f32::NAN; outputs];
                    dense::forward(x_row, &weight, bias, activation, inputs, outputs, &mut y_one, None);
                    let mut y_one_pre = vec![f32::NAN; outputs];
                    let mut pre_one = vec![f32::NAN; outputs];
                    dense::forward(
                        x_row,
                        &weight,
                        bias,
                        activation,
                        inputs,
                        outputs,
                        &mut y_one_pre,
                        Some(&mut pre_one),
                    );
                    assert_close(&format!("{what}: row {r} alone"), &y_one, &y_ref[rows.clone()], tol);
                    assert_close(&format!("{what}: row {r} alone (pre)"), &y_one_pre, &y_ref[rows.clone()], tol);
                    assert_close(&format!("{what}: pre of row {r} alone"), &pre_one, &z_ref[rows.clone()], tol);
                    let doubled = Tolerance { abs: 2.0 * tol.abs, rel: 2.0 * tol.rel };
                    assert_close(&format!("{what}: row {r} alone vs in batch"), &y_one, &widen(&y[rows]), doubled);
                }
            }
        }
    }
}
