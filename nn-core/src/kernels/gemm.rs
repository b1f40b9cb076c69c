//! General matrix products: `C = alpha * A B + beta * C`.
//!
//! Large products go to `matrixmultiply::sgemm` (BLIS-style packing and blocking; its
//! `threading` feature is enabled by this crate's `threading` feature). `sgemm`
//! allocates its packing buffer on every call, so products below
//! [`PACKED_MIN_FLOPS`] multiply-adds, and every product without `alloc`, use the
//! direct kernels here instead: they stream contiguous rows (a dot product per output
//! when `A`'s rows and `B`'s columns are contiguous, an axpy per row of `B` when
//! `B`'s rows are), allocate nothing, and for the small layers this library is for
//! are as fast as packing. A product with a single row of `A` is a matrix-vector
//! product: [`gemv`].

/// A read-only strided matrix view: element `(i, j)` is `data[i * rs + j * cs]`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    /// The elements.
    pub data: &'a [f32],
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// Row stride.
    pub rs: usize,
    /// Column stride.
    pub cs: usize,
}

impl<'a> MatRef<'a> {
    /// A row-major `rows x cols` matrix.
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        MatRef { data, rows, cols, rs: cols, cs: 1 }
    }

    /// The transpose (a stride swap).
    pub fn t(self) -> Self {
        MatRef { data: self.data, rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs }
    }

    /// The index one past the last element the view can touch.
    fn extent(&self) -> usize {
        if self.rows == 0 || self.cols == 0 {
            0
        } else {
            (self.rows - 1) * self.rs + (self.cols - 1) * self.cs + 1
        }
    }

    #[inline(always)]
    pub(crate) fn at(&self, i: usize, j: usize) -> f32 {
        self.data[i * self.rs + j * self.cs]
    }
}

/// `C[m x n] = alpha * A[m x k] B[k x n] + beta * C`, with `C` row-major of row stride
/// `ldc`. With `beta == 0`, `C` is overwritten (NaN in it does not propagate).
///
/// # Panics
/// If the shapes disagree or a view reaches past its slice: callers are layer code
/// with compile-time shapes, so this is a bug, never user input.
pub fn gemm(alpha: f32, a: MatRef<'_>, b: MatRef<'_>, beta: f32, c: &mut [f32], ldc: usize) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(k, b.rows, "gemm: inner dimensions differ");
    assert!(a.extent() <= a.data.len() && b.extent() <= b.data.len(), "gemm: view out of bounds");
    if m == 0 || n == 0 {
        return;
    }
    assert!((m - 1) * ldc + n <= c.len() && n <= ldc, "gemm: output out of bounds");
    if m == 1 && a.cs == 1 {
        // One row: y = alpha * B^T a + beta * y.
        return gemv(alpha, b.t(), &a.data[..k], beta, &mut c[..n]);
    }
    if k == 0 {
        scale(beta, c, m, n, ldc);
        return;
    }
    #[cfg(feature = "alloc")]
    if m * n * k >= PACKED_MIN_FLOPS {
        return packed(alpha, a, b, beta, c, ldc);
    }
    direct(alpha, a, b, beta, c, ldc);
}

/// Products of at least this many multiply-adds (`m * n * k`) use the packed
/// `matrixmultiply` kernel when `alloc` is available.
pub const PACKED_MIN_FLOPS: usize = 1 << 21;

/// The allocation-free kernels; see the module documentation.
fn direct(alpha: f32, a: MatRef<'_>, b: MatRef<'_>, beta: f32, c: &mut [f32], ldc: usize) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    scale(beta, c, m, n, ldc);
    if b.cs == 1 {
        // C[i, :] += alpha * A[i, p] * B[p, :]: axpy over contiguous rows of B.
        for i in 0..m {
            let row = &mut c[i * ldc..i * ldc + n];
            for p in 0..k {
                let s = alpha * a.at(i, p);
                if s != 0.0 {
                    axpy(s, &b.data[p * b.rs..p * b.rs + n], row);
                }
            }
        }
    } else if a.cs == 1 && b.rs == 1 {
        // C[i, j] += alpha * dot(A[i, :], B[:, j]): both contiguous.
        for i in 0..m {
            let ar = &a.data[i * a.rs..i * a.rs + k];
            for j in 0..n {
                c[i * ldc + j] += alpha * dot(ar, &b.data[j * b.cs..j * b.cs + k]);
            }
        }
    } else {
        for i in 0..m {
            for j in 0..n {
                let mut acc = 0.0;
                for p in 0..k {
                    acc += a.at(i, p) * b.at(p, j);
                }
                c[i * ldc + j] += alpha * acc;
            }
        }
    }
}

/// `y += s * x`.
#[inline]
pub fn axpy(s: f32, x: &[f32], y: &mut [f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y += s * x;
    }
}

#[cfg(feature = "alloc")]
fn packed(alpha: f32, a: MatRef<'_>, b: MatRef<'_>, beta: f32, c: &mut [f32], ldc: usize) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    // SAFETY: the asserts above guarantee that every index `i * rs + j * cs` that
    // sgemm reads (i < rows, j < cols) lies inside its slice, and every output index
    // `i * ldc + j` (i < m, j < n) lies inside `c`; the slices do not alias because
    // `c` is a unique borrow.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            alpha,
            a.data.as_ptr(),
            a.rs as isize,
            a.cs as isize,
            b.data.as_ptr(),
            b.rs as isize,
            b.cs as isize,
            beta,
            c.as_mut_ptr(),
            ldc as isize,
            1,
        );
    }
}

fn scale(beta: f32, c: &mut [f32], m: usize, n: usize, ldc: usize) {
    for i in 0..m {
        for v in &mut c[i * ldc..i * ldc + n] {
            *v = if beta == 0.0 { 0.0 } else { beta * *v };
        }
    }
}

/// `y[m] = alpha * A[m x n] x[n] + beta * y`: the batch-1 path. Rows of a row-major
/// `A` are dot products over contiguous memory; for a column-major `A` the columns are
/// accumulated (axpy) instead, so both layouts stream memory in order.
pub fn gemv(alpha: f32, a: MatRef<'_>, x: &[f32], beta: f32, y: &mut [f32]) {
    let (m, n) = (a.rows, a.cols);
    assert!(x.len() >= n && y.len() >= m && a.extent() <= a.data.len(), "gemv: shapes");
    let y = &mut y[..m];
    if beta == 0.0 {
        y.fill(0.0);
    } else if beta != 1.0 {
        y.iter_mut().for_each(|v| *v *= beta);
    }
    if a.cs == 1 {
        for (i, yi) in y.iter_mut().enumerate() {
            let row = &a.data[i * a.rs..i * a.rs + n];
            *yi += alpha * dot(row, &x[..n]);
        }
    } else if a.rs == 1 {
        for (j, &xj) in x[..n].iter().enumerate() {
            let col = &a.data[j * a.cs..j * a.cs + m];
            let s = alpha * xj;
            for (yi, &c) in y.iter_mut().zip(col) {
                *yi += s * c;
            }
        }
    } else {
        for (i, yi) in y.iter_mut().enumerate() {
            let mut acc = 0.0;
            for (j, &xj) in x[..n].iter().enumerate() {
                acc += a.at(i, j) * xj;
            }
            *yi += alpha * acc;
        }
    }
}

/// A dot product with eight independent accumulators, so the compiler vectorises it
/// without reassociating a single sum.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; 8];
    let chunks = n / 8;
    for c in 0..chunks {
        let (pa, pb) = (&a[c * 8..c * 8 + 8], &b[c * 8..c * 8 + 8]);
        for l in 0..8 {
            acc[l] += pa[l] * pb[l];
        }
    }
    let mut tail = 0.0;
    for i in chunks * 8..n {
        tail += a[i] * b[i];
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}
