//! General matrix products: `C = alpha * A B + beta * C`.
//!
//! On x86-64, products run on the widest register tile the CPU has ([`super::isa`]):
//! `12 x 32` AVX-512 accumulators (`avx512.rs`) or `6 x 16` AVX2 ones (`avx2.rs`), both
//! implementing `Tile`, inside BLIS-style loops (`blocked`): `B` is packed panel by
//! panel into a buffer on the stack, `A` is read in place through its strides (or, for
//! products of many rows with `std`, packed into a per-thread block, which the x86-64
//! tiles read through a form of their loop with constant offsets), so any transposes
//! cost nothing and nothing is allocated after a thread's first large product. Under
//! `threading`, large products are split into equal blocks of rows or columns (`parallel.rs`),
//! each thread running these loops on its own, packing its own blocks. With
//! AVX-512 this is faster than the packed `matrixmultiply::sgemm` from a `32 x 32`
//! product up (`cargo run --release -p nn-bench -- --gemm-sweep`). On AArch64 the same
//! loops run an `8 x 12` NEON tile (`neon.rs`, on one thread). Elsewhere the
//! portable kernels (`portable.rs`) compute the same bits with `4 x 4` tiles that read
//! both operands in place. Every tile sums each element of `C` in one order (a chain
//! of fused multiply-adds per 256-deep slice), so the four give the same bits.
//!
//! `matrixmultiply::sgemm` (its `threading` feature is enabled by this crate's) takes
//! products of at least [`PACKED_MIN_FLOPS`] multiply-adds where there is no register
//! tile (neither AVX2 nor NEON: another architecture, an older CPU, `NN_ISA=portable`)
//! and `alloc` is
//! enabled: there it is several times faster than the portable tile, but its rounding
//! is not guaranteed to be the tiles' (its kernels without FMA round every product, and
//! it scales by `alpha` and `beta` in separate roundings), so those products may differ
//! from the other kernels' in their last bits: a documented choice for speed, named by
//! `isa::kernels`. (On an x86-64 CPU with FMA, with `alpha = 1` and `beta` 0 or 1, its
//! FMA kernel happens to give the tiles' bits, measured on products up to `1024^3`.) It allocates its packing buffer on every
//! call. A product with a single row of `A` is a matrix-vector product: [`gemv`].

#[cfg(target_arch = "aarch64")]
use super::neon;
#[cfg(all(feature = "threading", target_arch = "x86_64"))]
use super::parallel;
use super::portable;
#[cfg(target_arch = "x86_64")]
use super::{avx2, avx512};

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

    /// The index one past the last element the view can touch, `None` when it does not
    /// fit in a `usize` (no slice is that long).
    pub(crate) fn extent(&self) -> Option<usize> {
        if self.rows == 0 || self.cols == 0 {
            return Some(0);
        }
        let last_row = (self.rows - 1).checked_mul(self.rs)?;
        let last_col = (self.cols - 1).checked_mul(self.cs)?;
        last_row.checked_add(last_col)?.checked_add(1)
    }

    /// Whether every element `(i, j)` lies inside `data`, and both strides fit in an
    /// `isize` (as pointer offsets and `matrixmultiply`'s strides must).
    pub(crate) fn in_bounds(&self) -> bool {
        self.rs <= isize::MAX as usize
            && self.cs <= isize::MAX as usize
            && self.extent().is_some_and(|end| end <= self.data.len())
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
/// If the shapes disagree, a view reaches past its slice (or its extent overflows a
/// `usize`), `C`'s rows overlap (`n > ldc`) or the product has more than `usize::MAX`
/// multiply-adds: callers are layer code with compile-time shapes, so this is a bug,
/// never user input.
pub fn gemm(alpha: f32, a: MatRef<'_>, b: MatRef<'_>, beta: f32, c: &mut [f32], ldc: usize) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(k, b.rows, "gemm: inner dimensions differ");
    assert!(a.in_bounds() && b.in_bounds(), "gemm: view out of bounds");
    if m == 0 || n == 0 {
        return;
    }
    let c_extent = (m - 1).checked_mul(ldc).and_then(|rows| rows.checked_add(n));
    assert!(c_extent.is_some_and(|end| end <= c.len()) && n <= ldc, "gemm: output out of bounds");
    // One row: its stride is never applied (and is then at most `c.len()`).
    let ldc = if m == 1 { n } else { ldc };
    // Bounded by the slices except for zero strides (a broadcast view): then `k` is
    // free, and the work counts below must not wrap.
    let Some(flops) = m.checked_mul(n).and_then(|mn| mn.checked_mul(k)) else {
        panic!("gemm: {m} x {k} x {n} is more multiply-adds than a usize counts");
    };
    // Only the packed and threaded paths (features) choose by it.
    let _ = flops;
    if m == 1 && a.cs == 1 {
        // One row: y = alpha * B^T a + beta * y.
        return gemv(alpha, b.t(), &a.data[..k], beta, &mut c[..n]);
    }
    if k == 0 {
        scale(beta, c, m, n, ldc);
        return;
    }
    #[cfg(feature = "alloc")]
    if flops >= PACKED_MIN_FLOPS && packed_is_faster() {
        return packed(alpha, a, b, beta, c, ldc);
    }
    #[cfg(target_arch = "x86_64")]
    if super::isa::isa().avx2() {
        #[cfg(feature = "threading")]
        if flops >= PARALLEL_MIN_FLOPS && threads() > 1 {
            return parallel::gemm(alpha, a, b, beta, c, ldc);
        }
        // SAFETY: the views and `C` were checked above.
        return unsafe { one_thread(alpha, a, b, beta, c.as_mut_ptr(), ldc) };
    }
    #[cfg(target_arch = "aarch64")]
    if super::isa::isa().neon() {
        // SAFETY: the views and `C` were checked above.
        return unsafe { neon::gemm(alpha, a, b, beta, c.as_mut_ptr(), ldc) };
    }
    // SAFETY: the views and `C` were checked above.
    unsafe { portable::gemm(alpha, a, b, beta, c.as_mut_ptr(), ldc) }
}

/// `C = alpha A B + beta C` on this thread by the widest register tile the CPU has
/// ([`super::isa`]): AVX-512 or AVX2, the same bits.
///
/// # Safety
/// The CPU has AVX2 and FMA; the views lie within their slices; `C`'s `m` rows of `n`
/// columns (stride `ldc`) are writable at `c` and not otherwise borrowed.
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) unsafe fn one_thread(alpha: f32, a: MatRef<'_>, b: MatRef<'_>, beta: f32, c: *mut f32, ldc: usize) {
    // SAFETY: the caller's contract; `avx512()` means the CPU has AVX-512 F too.
    unsafe {
        if super::isa::isa().avx512() {
            avx512::gemm(alpha, a, b, beta, c, ldc)
        } else {
            avx2::gemm(alpha, a, b, beta, c, ldc)
        }
    }
}

/// Products of at least this many multiply-adds (`m * n * k`) use the packed
/// `matrixmultiply` kernel when `alloc` is available and neither the AVX2 nor the NEON
/// tile is (another architecture, an older CPU, `NN_ISA=portable`): there packing beats the portable
/// tile, at the cost of a rounding that may differ from the tiles' (see the module).
#[cfg(any(feature = "alloc", feature = "internals", test))]
pub const PACKED_MIN_FLOPS: usize = 1 << 21;

/// Products of at least this many multiply-adds are split between [`threads`] threads
/// (the `threading` feature, with the AVX2 tile): below it, waking a worker costs more
/// than it saves.
#[cfg(any(feature = "threading", feature = "internals", test))]
pub const PARALLEL_MIN_FLOPS: usize = 1 << 22;

/// Whether a large product is faster packed than by the register-blocked kernels.
#[cfg(feature = "alloc")]
fn packed_is_faster() -> bool {
    #[cfg(target_arch = "x86_64")]
    if super::isa::isa().avx2() {
        return false;
    }
    #[cfg(target_arch = "aarch64")]
    if super::isa::isa().neon() {
        return false;
    }
    true
}

/// The threads large products use: `MATMUL_NUM_THREADS` (as `matrixmultiply`, which
/// takes products when the AVX2 tile is not available, reads it), read once, or the
/// available parallelism, at most 4; 1 without the `threading` feature.
#[cfg(any(feature = "threading", feature = "internals"))]
pub fn threads() -> usize {
    #[cfg(feature = "threading")]
    {
        use std::sync::OnceLock;
        static THREADS: OnceLock<usize> = OnceLock::new();
        *THREADS.get_or_init(|| {
            let default = || std::thread::available_parallelism().map_or(1, |n| n.get());
            let n = std::env::var("MATMUL_NUM_THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or_else(default);
            n.clamp(1, 4)
        })
    }
    #[cfg(not(feature = "threading"))]
    {
        1
    }
}

/// Rows of `A` swept per packed panel of `B` by [`blocked`] when `A` is read in place
/// (an `MC x KC` block of `A`, 192 KiB, stays in L2 while the panels of `B` pass through
/// L1); the most rows read in place, and the rows of the packed blocks of `A`
/// ([`Blocks`], [`Tile::BLOCK_ROWS`] at most).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub(crate) const MC: usize = 192;

/// A register tile for [`blocked`]: `C[mr x nr] = alpha A[mr x kc] B[kc x NR] + beta C`,
/// with `mr <= MR`, `kc <= KC` and `nr <= NR`.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub(crate) trait Tile {
    /// Rows of the tile.
    const MR: usize;
    /// Columns of the tile (and of a packed panel of `B`).
    const NR: usize;
    /// Depth of a packed panel of `B`.
    const KC: usize;
    /// Rows of `A` that [`blocked`] packs at once into [`Blocks`] (at most [`MC`]): the
    /// rows of `C` that one pass over a packed block of `B` updates.
    const BLOCK_ROWS: usize = MC;

    /// `A` at `a` with strides `(rs, cs)`; `B` at `b` with row stride `brs` and `NR`
    /// readable columns per row; `C` at `c` with row stride `ldc`, `nr` columns written
    /// as `alpha A B + beta C` (with `beta == 0`, `C` is not read).
    ///
    /// # Safety
    /// Every element named lies inside its allocation; the CPU supports the tile.
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile(
        mr: usize,
        kc: usize,
        a: *const f32,
        a_strides: (usize, usize),
        b: *const f32,
        brs: usize,
        alpha: f32,
        beta: f32,
        c: *mut f32,
        ldc: usize,
        nr: usize,
    );

    /// Copies `B[k0..k0 + kc, j0..j0 + nr]` into `panel` as `kc` rows of `NR` floats,
    /// zero beyond `nr`.
    ///
    /// # Safety
    /// `panel` has room for `kc * NR` floats; the block lies inside `b`; the CPU
    /// supports the tile.
    #[inline(always)]
    unsafe fn pack(panel: *mut f32, b: MatRef<'_>, k0: usize, kc: usize, j0: usize, nr: usize) {
        // SAFETY: the caller's contract.
        unsafe { pack(panel, Self::NR, b, k0, kc, j0, nr) }
    }

    /// Copies `mr` rows of `kc` floats of `A` (row `r` at `src + r rs`, element `p` at
    /// `p cs` in it) into `tile`, element `(r, p)` at `p mr + r`.
    ///
    /// # Safety
    /// The elements lie inside A; `tile` has room for `mr kc` floats; the CPU supports
    /// the tile.
    #[inline(always)]
    unsafe fn pack_a_rows(tile: *mut f32, src: *const f32, (rs, cs): (usize, usize), mr: usize, kc: usize) {
        // SAFETY: the caller's contract.
        unsafe { pack_a_rows(tile, src, (rs, cs), mr, 0, kc) }
    }
}

/// [`Tile::pack_a_rows`] for columns `p0..kc`, one float at a time.
///
/// # Safety
/// As [`Tile::pack_a_rows`].
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[inline(always)]
pub(crate) unsafe fn pack_a_rows(
    tile: *mut f32,
    src: *const f32,
    (rs, cs): (usize, usize),
    mr: usize,
    p0: usize,
    kc: usize,
) {
    for r in 0..mr {
        // SAFETY: `A[r, p]` (r < mr, p < kc) is inside A, `p mr + r < mr kc`.
        unsafe {
            let row = src.add(r * rs);
            for p in p0..kc {
                *tile.add(p * mr + r) = *row.add(p * cs);
            }
        }
    }
}

/// Buffers for [`blocked`] on large products: a packed block of `A` (`MC x KC`
/// floats) and of `B` (`KC x NC` floats).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub(crate) struct Blocks {
    /// Room for `MC * KC` floats.
    pub a: *mut f32,
    /// Room for `KC * NC` floats.
    pub b: *mut f32,
}

/// Columns of `B` packed at once by [`blocked`] with [`Blocks`]: a `KC x NC` block
/// (1 MiB for the AVX2 tile) stays in L3 while blocks of `A` pass through L2.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub(crate) const NC: usize = 1024;

/// Depth of the packed blocks of [`with_blocks`]: every register tile's panel depth
/// (`portable::SLICE`, at which all kernels add their sums to `C`).
#[cfg(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64")))]
const KC: usize = portable::SLICE;

/// Packed blocks of `A` (`MC x KC` floats, 96 KiB) and `B` (`KC x NC`, 1 MiB) for
/// products of more than `MC` rows, allocated by a thread's first such product and
/// reused by every later one.
#[cfg(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64")))]
type PackedBlocks = core::cell::UnsafeCell<(std::vec::Vec<f32>, std::vec::Vec<f32>)>;

#[cfg(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64")))]
std::thread_local! {
    static BLOCKS: PackedBlocks = const { core::cell::UnsafeCell::new((std::vec::Vec::new(), std::vec::Vec::new())) };
}

/// Gives this thread's packed blocks their full size now, so that no later product
/// allocates: every thread that takes part in parallel products calls it before its
/// first (a thread handed no large block until then would otherwise allocate in the
/// middle of a later training step).
#[cfg(all(feature = "threading", target_arch = "x86_64"))]
pub(crate) fn reserve_blocks() {
    BLOCKS.with(|blocks| {
        // SAFETY: this thread's buffers; no product is running on this thread.
        let (a_block, b_block) = unsafe { &mut *blocks.get() };
        if a_block.len() < MC * KC || b_block.len() < KC * NC {
            a_block.resize(MC * KC, 0.0);
            b_block.resize(KC * NC, 0.0);
        }
    });
}

/// Calls `run` with this thread's packed blocks of `A` (`MC x KC` floats) and `B`
/// (`KC x NC`), allocated by the thread's first call (the blocks of every register tile,
/// all of the same depth, are the same buffers).
///
/// # Safety
/// `run` does not call `with_blocks` (nor a product that does) itself.
#[cfg(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64")))]
pub(crate) unsafe fn with_blocks<R>(run: impl FnOnce(Blocks) -> R) -> R {
    BLOCKS.with(|blocks| {
        // SAFETY: this thread's buffers, not borrowed elsewhere (`run` does not
        // re-enter, the caller's contract).
        let (a_block, b_block) = unsafe { &mut *blocks.get() };
        if a_block.len() < MC * KC || b_block.len() < KC * NC {
            a_block.resize(MC * KC, 0.0);
            b_block.resize(KC * NC, 0.0);
        }
        run(Blocks { a: a_block.as_mut_ptr(), b: b_block.as_mut_ptr() })
    })
}

/// `C = alpha A B + beta C` by register tiles: the first `KC`-deep slice of the inner
/// dimension applies `beta` (with `beta == 0`, `C` is not read), the others add.
///
/// With at most [`MC`] rows, or without `blocks`: for each `KC`-deep slice of the inner
/// dimension and each block of `MC` rows, every `NR`-column panel of `B` is packed
/// (zero-padded to `NR` columns) into `panel` and swept by tiles of up to `MR` rows
/// that read `A` in place through its strides.
///
/// With more rows and `blocks` (BLIS's loops): for each `NC`-column, `KC`-deep block of
/// `B`, packed once as panels into `blocks.b`, every `T::BLOCK_ROWS`-row block of `A` is packed
/// tile by tile into `blocks.a` (`A[i0 + r, k0 + p]` at `p mr + r`) and multiplied by
/// every panel, so that neither operand is packed twice for the same block and every
/// tile reads two contiguous streams however the operands are laid out.
///
/// # Safety
/// The views lie within their slices, `C`'s `m` rows of `n` columns (stride `ldc`)
/// are writable at `c` and not otherwise borrowed, `panel` has room for
/// `T::KC * T::NR` floats, `blocks` as documented, and the CPU supports `T`.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn blocked<T: Tile>(
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    beta: f32,
    c: *mut f32,
    ldc: usize,
    panel: *mut f32,
    blocks: Option<Blocks>,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let blocks = if m > MC { blocks } else { None };
    let Some(blocks) = blocks else {
        let mut k0 = 0;
        while k0 < k {
            let kc = T::KC.min(k - k0);
            let beta = if k0 == 0 { beta } else { 1.0 };
            let mut i1 = 0;
            while i1 < m {
                let mc = MC.min(m - i1);
                let mut j0 = 0;
                while j0 < n {
                    let nr = T::NR.min(n - j0);
                    // SAFETY: the block of B lies inside it; the panel has room for
                    // `kc x NR` floats; the tiles are inside A and C.
                    unsafe {
                        T::pack(panel, b, k0, kc, j0, nr);
                        let a_at = a.data.as_ptr().add(i1 * a.rs + k0 * a.cs);
                        let cp = c.add(i1 * ldc + j0);
                        sweep::<T>((alpha, beta), a_at, (a.rs, a.cs, false), mc, kc, panel, cp, ldc, nr);
                    }
                    j0 += nr;
                }
                i1 += mc;
            }
            k0 += kc;
        }
        return;
    };
    let mut jc = 0;
    while jc < n {
        let nc = NC.min(n - jc);
        let mut k0 = 0;
        while k0 < k {
            let kc = T::KC.min(k - k0);
            let beta = if k0 == 0 { beta } else { 1.0 };
            // SAFETY: the block of `B` lies inside it; `blocks.b` has room for
            // `kc x nc <= KC x NC` floats as panels.
            unsafe { pack_block::<T>(blocks.b, b, k0, kc, jc, nc) };
            let mut i1 = 0;
            while i1 < m {
                let mc = T::BLOCK_ROWS.min(m - i1);
                // SAFETY: rows `i1..i1 + mc` and columns `k0..k0 + kc` are inside A; the
                // block has room for `mc kc <= MC KC` floats.
                unsafe { pack_a::<T>(blocks.a, a, i1, mc, k0, kc) };
                // The block of `A` packed next: below this one, or the first of the
                // next slice or of the next block of `B`.
                let next = if i1 + mc < m {
                    Some((i1 + mc, k0, kc))
                } else if k0 + kc < k {
                    Some((0, k0 + kc, T::KC.min(k - k0 - kc)))
                } else if jc + nc < n {
                    Some((0, 0, T::KC.min(k)))
                } else {
                    None
                };
                let ahead = next
                    .filter(|_| m.saturating_mul(k) >= AHEAD_MIN_FLOATS)
                    .and_then(|(i, p, depth)| Ahead::of(a, i, T::BLOCK_ROWS.min(m - i), p, depth));
                let panels = nc.div_ceil(T::NR);
                let spread = PREFETCH_PANELS.min(panels);
                let mut panel = 0;
                let mut j0 = 0;
                while j0 < nc {
                    if let (Some(ahead), Some(q)) = (&ahead, (panel + spread).checked_sub(panels)) {
                        let lines = ahead.lines();
                        ahead.fetch(a, lines * q / spread, lines * (q + 1) / spread);
                    }
                    panel += 1;
                    let nr = T::NR.min(nc - j0);
                    // SAFETY: the packed blocks were written above; the tiles are in C.
                    unsafe {
                        let cp = c.add(i1 * ldc + jc + j0);
                        sweep::<T>((alpha, beta), blocks.a, (0, 0, true), mc, kc, blocks.b.add(j0 * kc), cp, ldc, nr);
                    }
                    j0 += nr;
                }
                i1 += mc;
            }
            k0 += kc;
        }
        jc += nc;
    }
}

/// Rows of `B` that [`pack_block`] copies into every panel before the next rows.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const PACK_ROWS: usize = 16;

/// How far ahead along a row of `B` [`pack_block`] asks for the lines it copies next:
/// 128 floats (8 lines, 8 AVX2 or 4 AVX-512 panels).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const PREFETCH_COLUMNS: usize = 128;

/// Over how many of its last panels of `B` a block of `A` asks for the lines of the
/// block packed after it ([`Ahead`]).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const PREFETCH_PANELS: usize = 16;

/// The size of `A` (floats) from which [`blocked`] asks for its blocks ahead: 1 MiB,
/// an L2 cache (a smaller `A` stays in cache with the other operands, and asking for it
/// costs instructions for nothing).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const AHEAD_MIN_FLOATS: usize = 1 << 18;

/// A block of `A` whose lines [`blocked`] asks for while multiplying the block before
/// it, so that packing it reads caches, not memory: `runs` runs of `len` contiguous
/// floats, `stride` apart, the first at `data[base]`. Its rows are short runs a whole
/// row apart (1 KiB every 4 KiB in a `1024 x 1024` `A`), which the hardware prefetcher
/// barely follows: in a `1024^3` product with the AVX2 tile on an AMD EPYC (Zen 5) core,
/// this takes packing `A` from about 0.55 to 0.15 ms (of about 19 ms).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
struct Ahead {
    base: usize,
    runs: usize,
    stride: usize,
    len: usize,
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
impl Ahead {
    /// Rows `i..i + rows`, columns `p..p + depth` of `A`, when its rows or its columns
    /// are contiguous (none otherwise, or when empty).
    fn of(a: MatRef<'_>, i: usize, rows: usize, p: usize, depth: usize) -> Option<Self> {
        if rows == 0 || depth == 0 {
            return None;
        }
        let base = i * a.rs + p * a.cs;
        if a.cs == 1 {
            Some(Ahead { base, runs: rows, stride: a.rs, len: depth })
        } else if a.rs == 1 {
            Some(Ahead { base, runs: depth, stride: a.cs, len: rows })
        } else {
            None
        }
    }

    /// The lines of a run to ask for: one more than its length in lines, since it may
    /// start anywhere in a line.
    fn per_run(&self) -> usize {
        self.len.div_ceil(16) + 1
    }

    /// The lines of the block to ask for.
    fn lines(&self) -> usize {
        self.runs * self.per_run()
    }

    /// Asks for lines `from..to` of the block (each at an element of it).
    fn fetch(&self, a: MatRef<'_>, from: usize, to: usize) {
        let per_run = self.per_run();
        for line in from..to {
            let (run, l) = (line / per_run, line % per_run);
            let at = self.base + run * self.stride + (16 * l).min(self.len - 1);
            prefetch(a.data.as_ptr().wrapping_add(at));
        }
    }
}

/// Asks the CPU to bring the cache line holding `p` into L1: a hint, which reads
/// nothing and never faults whatever the address (no instruction where the target has
/// no stable one).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[inline(always)]
fn prefetch(p: *const f32) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch has no architectural effect and does not fault on any address.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Packs `B[k0..k0 + kc, j0..j0 + nc]` into `dst` as `T::NR`-column panels (the panel of
/// columns `j0 + j..` at `j kc`, zero-padded), as [`Tile::pack`] of each panel. When the
/// rows of `B` are contiguous, [`PACK_ROWS`] rows are copied into every panel before
/// the next ones, so that `B` is read along its rows: panel by panel, the reads of a
/// large `B` would step a whole row apart (4 KiB for 1024 columns), which the hardware
/// prefetcher does not follow. Each row's lines [`PREFETCH_COLUMNS`] further on are
/// asked for as each panel is copied (a large `B` comes from memory: in the same
/// product, packing `B` then takes about 0.28 ms rather than 0.36).
///
/// # Safety
/// The block lies inside `b`; `dst` has room for `kc` rows of `nc` rounded up to
/// `T::NR`; the CPU supports `T`.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[inline(always)]
pub(crate) unsafe fn pack_block<T: Tile>(dst: *mut f32, b: MatRef<'_>, k0: usize, kc: usize, j0: usize, nc: usize) {
    let rows = if b.cs == 1 { PACK_ROWS } else { kc };
    let mut p0 = 0;
    while p0 < kc {
        let rows = rows.min(kc - p0);
        let mut j = 0;
        while j < nc {
            let nr = T::NR.min(nc - j);
            if b.cs == 1 {
                let ahead = j0 + (j + PREFETCH_COLUMNS).min(nc - 1);
                for p in k0 + p0..k0 + p0 + rows {
                    prefetch(b.data.as_ptr().wrapping_add(p * b.rs + ahead));
                }
            }
            // SAFETY: rows `p0..p0 + rows` of the panel at `j kc` (row `p` at `p NR`)
            // lie in `dst`; the block of `B` is inside it (the caller's contract).
            unsafe { T::pack(dst.add(j * kc + p0 * T::NR), b, k0 + p0, rows, j0 + j, nr) };
            j += nr;
        }
        p0 += rows;
    }
}

/// Multiplies `mc` rows of `A` by one packed panel of `B`, tile by tile. `A` is at `a`
/// with strides `(rs, cs)`, or packed by [`pack_a`] when the flag is set.
///
/// # Safety
/// As [`blocked`], for the rows and panel given.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn sweep<T: Tile>(
    (alpha, beta): (f32, f32),
    a: *const f32,
    (rs, cs, packed): (usize, usize, bool),
    mc: usize,
    kc: usize,
    panel: *const f32,
    c: *mut f32,
    ldc: usize,
    nr: usize,
) {
    let mut i = 0;
    while i < mc {
        let mr = tile_rows::<T>(mc - i);
        // SAFETY: the caller's contract: the tile's rows of A and C are in bounds.
        unsafe {
            let (ap, strides) = if packed { (a.add(i * kc), (1, mr)) } else { (a.add(i * rs), (rs, cs)) };
            T::tile(mr, kc, ap, strides, panel, T::NR, alpha, beta, c.add(i * ldc), ldc, nr);
        }
        i += mr;
    }
}

/// The rows of the next tile when `rest` rows remain: `MR`, except that a remainder
/// of 1 to 3 rows after a full tile is shared with it (8 rows as 4 + 4), since small
/// tiles have too few accumulators to hide the FMA latency.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[inline(always)]
fn tile_rows<T: Tile>(rest: usize) -> usize {
    if rest > T::MR && rest < T::MR + 4 {
        rest.div_ceil(2)
    } else {
        T::MR.min(rest)
    }
}

/// Packs `A[i1..i1 + mc, k0..k0 + kc]` into `dst` tile by tile, in the order
/// [`blocked`] sweeps it: the tile of `mr` rows starting at row `i0` at offset
/// `(i0 - i1) kc`, element `(r, p)` at `p mr + r`.
///
/// # Safety
/// The block lies inside A; `dst` has room for `mc * kc` floats.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[inline(always)]
pub(crate) unsafe fn pack_a<T: Tile>(dst: *mut f32, a: MatRef<'_>, i1: usize, mc: usize, k0: usize, kc: usize) {
    let mut i = 0;
    while i < mc {
        let mr = tile_rows::<T>(mc - i);
        // SAFETY: `A[i1 + i + r, k0 + p]` (r < mr, p < kc) is inside A; offsets
        // `i kc + p mr + r < mc kc`.
        unsafe {
            let tile = dst.add(i * kc);
            let src = a.data.as_ptr().add((i1 + i) * a.rs + k0 * a.cs);
            if a.rs == 1 {
                // Columns of A are contiguous (a transposed operand): copy the `mr`
                // floats of each column in turn, reading and writing in order.
                for p in 0..kc {
                    let column = src.add(p * a.cs);
                    for r in 0..mr {
                        *tile.add(p * mr + r) = *column.add(r);
                    }
                }
                i += mr;
                continue;
            }
            T::pack_a_rows(tile, src, (a.rs, a.cs), mr, kc);
        }
        i += mr;
    }
}

/// Copies `B[k0..k0 + kc, j0..j0 + nr]` into `panel` as `kc` rows of `width` floats,
/// zero beyond `nr`.
///
/// # Safety
/// `panel` has room for `kc * width` floats; the block lies inside `b`.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[inline(always)]
pub(crate) unsafe fn pack(panel: *mut f32, width: usize, b: MatRef<'_>, k0: usize, kc: usize, j0: usize, nr: usize) {
    // SAFETY: the panel has room for `kc * width` floats, so every index `p * width + j`
    // written (`p < kc`, `j < width`) is in it; `B` is read through bounds-checked
    // slices, and the `nr <= width` floats copied per row lie inside its block.
    unsafe {
        if b.rs == 1 {
            // Columns of B are contiguous: read each column in order.
            for j in 0..nr {
                let column = &b.data[(j0 + j) * b.cs + k0..][..kc];
                for (p, &v) in column.iter().enumerate() {
                    *panel.add(p * width + j) = v;
                }
            }
            for p in 0..kc {
                for j in nr..width {
                    *panel.add(p * width + j) = 0.0;
                }
            }
        } else if b.cs == 1 {
            // Rows of B are contiguous: copy row segments.
            for p in 0..kc {
                let src = &b.data[(k0 + p) * b.rs + j0..][..nr];
                let row = panel.add(p * width);
                core::ptr::copy_nonoverlapping(src.as_ptr(), row, nr);
                for j in nr..width {
                    *row.add(j) = 0.0;
                }
            }
        } else {
            for p in 0..kc {
                let row = panel.add(p * width);
                for j in 0..width {
                    *row.add(j) = if j < nr { b.at(k0 + p, j0 + j) } else { 0.0 };
                }
            }
        }
    }
}

/// Whether the operands of `gemm_gathered` (any instruction set's) are in bounds:
/// `n` and the plane `width` multiples of 8, every gathered column inside `src`, `a`,
/// `c` and `start` long enough. `k`'s limit is the caller's own `KC`.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn gathered_fits(
    a: &[f32],
    ars: usize,
    m: usize,
    k: usize,
    src: &[f32],
    offsets: &[usize],
    (width, stride): (usize, usize),
    start: Option<Option<&[f32]>>,
    c: &[f32],
    ldc: usize,
    n: usize,
) -> bool {
    let last = n.saturating_sub(8);
    let reach = (last / width.max(1))
        .checked_mul(stride)
        .and_then(|r| r.checked_add(offsets[..k.min(offsets.len())].iter().max().copied().unwrap_or(0)))
        .and_then(|r| r.checked_add(last % width.max(1) + 8));
    k <= offsets.len()
        && n.is_multiple_of(8)
        && width.is_multiple_of(8)
        && width > 0
        && width <= stride
        && rows_fit(m, ars, k, a.len())
        && rows_fit(m, ldc, n, c.len())
        && (k == 0 || n == 0 || reach.is_some_and(|reach| reach <= src.len()))
        && start.flatten().is_none_or(|b| b.len() >= m)
}

/// Whether `rows` rows of `width` floats, `stride` apart, fit in `len` floats:
/// `(rows - 1) stride + width <= len` without overflow (true for no rows).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub(crate) fn rows_fit(rows: usize, stride: usize, width: usize, len: usize) -> bool {
    rows == 0 || (rows - 1).checked_mul(stride).and_then(|r| r.checked_add(width)).is_some_and(|end| end <= len)
}

/// Whether `count` blocks of `len` floats fit in `available`, without overflow.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub(crate) fn blocks_fit(count: usize, len: usize, available: usize) -> bool {
    count.checked_mul(len).is_some_and(|total| total <= available)
}

/// `y += s * x`.
///
/// # Panics
/// If `x` and `y` differ in length.
#[inline]
#[cfg(any(feature = "internals", test))]
pub fn axpy(s: f32, x: &[f32], y: &mut [f32]) {
    assert_eq!(x.len(), y.len(), "axpy: x and y differ in length");
    for (y, &x) in y.iter_mut().zip(x) {
        *y += s * x;
    }
}

#[cfg(feature = "alloc")]
fn packed(alpha: f32, a: MatRef<'_>, b: MatRef<'_>, beta: f32, c: &mut [f32], ldc: usize) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    // SAFETY: `gemm`'s asserts guarantee that every index `i * rs + j * cs` that
    // sgemm reads (i < rows, j < cols) lies inside its slice, that the strides fit in an
    // `isize`, and that every output index `i * ldc + j` (i < m, j < n) lies inside `c`
    // (so `ldc <= c.len()` fits too); the slices do not alias because `c` is a unique
    // borrow.
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
    if beta == 1.0 {
        return;
    }
    for i in 0..m {
        for v in &mut c[i * ldc..i * ldc + n] {
            *v = if beta == 0.0 { 0.0 } else { beta * *v };
        }
    }
}

/// `y[m] = alpha * A[m x n] x[n] + beta * y`: the batch-1 path. Rows of a row-major
/// `A` are dot products over contiguous memory (eight rows at a time with AVX2); for a
/// column-major `A` the columns are accumulated (axpy) instead, so both layouts stream
/// memory in order.
///
/// For a row-major `A`, row `i` gives `y[i] = beta y[i] + alpha dot(A[i, :], x)` with
/// [`dot`]'s rounding, bit for bit: a projection `W x + b` computed by `gemv` (with `y`
/// holding `b` and `beta = 1`) equals the same rows computed one [`dot`] at a time.
pub fn gemv(alpha: f32, a: MatRef<'_>, x: &[f32], beta: f32, y: &mut [f32]) {
    let (m, n) = (a.rows, a.cols);
    assert!(x.len() >= n && y.len() >= m && a.in_bounds(), "gemv: shapes");
    let y = &mut y[..m];
    prepare(beta, y);
    if m == 0 || n == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if super::isa::isa().avx2() && (a.cs == 1 || a.rs == 1) {
        // SAFETY: the CPU has AVX2 and FMA (and AVX-512 F where `avx512()`); the kernels
        // assert their bounds.
        unsafe {
            if a.cs == 1 {
                avx2::gemv_rows(alpha, a.data, a.rs, m, n, x, y);
            } else if super::isa::isa().avx512() {
                avx512::gemv_columns(alpha, a.data, a.cs, m, n, x, y);
            } else {
                avx2::gemv_columns(alpha, a.data, a.cs, m, n, x, y);
            }
        }
        return;
    }
    #[cfg(target_arch = "aarch64")]
    if super::isa::isa().neon() && (a.cs == 1 || a.rs == 1) {
        // SAFETY: the CPU has NEON; the kernels assert their bounds.
        unsafe {
            if a.cs == 1 {
                neon::gemv_rows(alpha, a.data, a.rs, m, n, x, y);
            } else {
                neon::gemv_columns(alpha, a.data, a.cs, m, n, x, y);
            }
        }
        return;
    }
    if a.cs == 1 {
        portable::gemv_rows(alpha, a.data, a.rs, m, n, x, y);
    } else if a.rs == 1 {
        portable::gemv_columns(alpha, a.data, a.cs, m, n, x, y);
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

/// [`gemv`] for every vector of a batch: `y_s = alpha * A x_s + beta * y_s`, with `x`
/// holding `batch` vectors of `A.cols` floats and `y` `batch` vectors of `A.rows`, for
/// a row-major `A` (unit column stride): a dense layer's `x W^T`. Every `y_s` is
/// exactly what [`gemv`] gives for `x_s` alone, so a sample's result does not depend
/// on the batch it is in (unlike [`gemm`], whose tiles round differently). With AVX2,
/// tiles of 2 vectors by 4 rows of `A` (dot products, about 60 % of the FMA peak for
/// 64 to 128 columns, 80 % for several hundred, against 85 to 90 % for [`gemm`]).
///
/// # Panics
/// If `A`'s column stride is not 1, or the slices are too short.
pub fn gemv_batch(alpha: f32, a: MatRef<'_>, x: &[f32], beta: f32, y: &mut [f32], batch: usize) {
    let (m, n) = (a.rows, a.cols);
    let (x_len, y_len) = (batch.checked_mul(n), batch.checked_mul(m));
    assert!(
        a.cs == 1 && x_len.is_some_and(|len| x.len() >= len) && y_len.is_some_and(|len| y.len() >= len),
        "gemv_batch: shapes"
    );
    assert!(a.in_bounds(), "gemv_batch: view out of bounds");
    let y = &mut y[..batch * m];
    prepare(beta, y);
    if m == 0 || n == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if super::isa::isa().avx2() {
        #[cfg(feature = "threading")]
        if batch > 1 && (batch * m).saturating_mul(n) >= PARALLEL_MIN_FLOPS && threads() > 1 {
            return parallel::gemv_batch(alpha, a, x, y, batch);
        }
        // SAFETY: the CPU has AVX2 and FMA; the kernels assert their bounds.
        unsafe {
            if batch == 1 {
                avx2::gemv_rows(alpha, a.data, a.rs, m, n, x, y);
            } else if super::isa::isa().avx512() && n >= avx512::BATCH_MIN_COLUMNS {
                avx512::gemv_batch_strided(alpha, a.data, a.rs, m, n, x, y.as_mut_ptr(), m, batch);
            } else {
                avx2::gemv_batch(alpha, a.data, a.rs, m, n, x, y, batch);
            }
        }
        return;
    }
    #[cfg(target_arch = "aarch64")]
    if super::isa::isa().neon() {
        // SAFETY: the CPU has NEON; the kernel asserts its bounds.
        return unsafe { neon::gemv_batch(alpha, a.data, a.rs, m, n, x, y, batch) };
    }
    for (xs, ys) in x.chunks_exact(n).zip(y.chunks_exact_mut(m)) {
        portable::gemv_rows(alpha, a.data, a.rs, m, n, xs, ys);
    }
}

/// `y = beta * y`, where `beta == 0` overwrites (NaN in `y` does not propagate).
fn prepare(beta: f32, y: &mut [f32]) {
    if beta == 0.0 {
        y.fill(0.0);
    } else if beta != 1.0 {
        y.iter_mut().for_each(|v| *v *= beta);
    }
}

/// A dot product over the shorter length. Its rounding depends only on the length,
/// never on where it is called from or on the target: eight lanes of fused
/// multiply-adds over the blocks of 8, reduced in a fixed order, then the remaining
/// products in order (AVX2 vectors on x86-64 where the CPU has them, eight scalar
/// accumulators elsewhere: the same bits).
#[inline]
#[cfg(any(feature = "internals", test))]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if super::isa::isa().avx2() {
        // SAFETY: the CPU has AVX2 and FMA.
        return unsafe { avx2::dot(a, b) };
    }
    #[cfg(target_arch = "aarch64")]
    if super::isa::isa().neon() {
        // SAFETY: the CPU has NEON.
        return unsafe { neon::dot(a, b) };
    }
    portable::dot(a, b)
}

#[cfg(all(test, feature = "std"))]
mod tests {
    //! Each register-blocked path against an `f64` reference, whatever the CPU takes:
    //! the portable tile, and the AVX2 tile with `A` read in place and with packed
    //! blocks (the `gemm` integration tests only reach the path this CPU selects).
    use super::*;
    use crate::rng::Rng;

    /// `A` row- or column-major with a padded leading dimension (padding is NaN).
    fn stored(rng: &mut Rng, rows: usize, cols: usize, column_major: bool) -> (std::vec::Vec<f32>, usize, usize) {
        let (outer, inner) = if column_major { (cols, rows) } else { (rows, cols) };
        let lead = inner + 3;
        let mut data = std::vec![f32::NAN; outer * lead];
        for o in 0..outer {
            for i in 0..inner {
                data[o * lead + i] = rng.uniform_in(-1.0, 1.0);
            }
        }
        let (rs, cs) = if column_major { (1, lead) } else { (lead, 1) };
        (data, rs, cs)
    }

    /// The signature of `blocked` with its buffers bound.
    type Kernel<'k> = &'k dyn Fn(f32, MatRef<'_>, MatRef<'_>, f32, &mut [f32], usize);

    /// Runs `kernel` (`C = alpha A B + beta C`) on every layout, for `beta` 0 (`C` NaN
    /// on entry), 1 and 2, and checks it.
    fn check(m: usize, k: usize, n: usize, kernel: Kernel<'_>) {
        let mut rng = Rng::new((m * 31 + k * 7 + n) as u64);
        for (a_cm, b_cm) in [(false, false), (false, true), (true, false), (true, true)] {
            for beta in [0.0f32, 1.0, 2.0] {
                let (ad, ars, acs) = stored(&mut rng, m, k, a_cm);
                let (bd, brs, bcs) = stored(&mut rng, k, n, b_cm);
                let a = MatRef { data: &ad, rows: m, cols: k, rs: ars, cs: acs };
                let b = MatRef { data: &bd, rows: k, cols: n, rs: brs, cs: bcs };
                let ldc = n + 2;
                let c0: std::vec::Vec<f32> = (0..m * ldc)
                    .map(|i| if beta == 0.0 && i % ldc < n { f32::NAN } else { (i % 7) as f32 - 3.0 })
                    .collect();
                let mut c = c0.clone();
                kernel(0.5, a, b, beta, &mut c, ldc);
                for i in 0..m {
                    for j in 0..n {
                        let c_in = if beta == 0.0 { 0.0 } else { beta as f64 * c0[i * ldc + j] as f64 };
                        let (mut exact, mut size) = (c_in, c_in.abs());
                        for p in 0..k {
                            let v = 0.5 * a.at(i, p) as f64 * b.at(p, j) as f64;
                            exact += v;
                            size += v.abs();
                        }
                        let got = c[i * ldc + j] as f64;
                        assert!(
                            (got - exact).abs() <= 1e-5 * size.max(1.0) * (k as f64).sqrt().max(1.0),
                            "C[{i}, {j}] = {got}, expected {exact}: {m}x{k}x{n}, A col-major {a_cm}, \
                             B col-major {b_cm}, beta {beta}"
                        );
                    }
                    for j in n..ldc {
                        assert_eq!(c[i * ldc + j], c0[i * ldc + j], "padding of C written");
                    }
                }
            }
        }
    }

    /// Sizes around the tiles (4 x 8, 6 x 16), the depth of a panel (64, 256), the
    /// rows of a block (96 or 192) and the columns of a packed block (1024).
    const SHAPES: [(usize, usize, usize); 10] = [
        (1, 1, 1),
        (3, 5, 7),
        (6, 16, 16),
        (7, 9, 17),
        (13, 64, 33),
        (9, 300, 8),
        (200, 20, 40),
        (70, 257, 31),
        (5, 8, 1040),
        (199, 33, 1030),
    ];

    #[test]
    fn portable_kernel_matches_reference() {
        for (m, k, n) in SHAPES {
            check(m, k, n, &|alpha, a, b, beta, c, ldc| {
                // SAFETY: the views are inside their vectors, `C` holds `m` rows of `ldc`.
                unsafe { portable::gemm(alpha, a, b, beta, c.as_mut_ptr(), ldc) }
            });
        }
    }

    /// `gemv` over a row-major matrix rounds every row as `dot` does, whatever block
    /// of rows it falls in.
    #[test]
    fn gemv_rows_equal_dot_bit_for_bit() {
        let mut rng = Rng::new(11);
        for m in [1, 3, 4, 5, 9, 64, 66] {
            for n in [1, 7, 8, 9, 15, 16, 17, 24, 33, 64, 72] {
                let a: std::vec::Vec<f32> = (0..m * n).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
                let x: std::vec::Vec<f32> = (0..n).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
                let bias: std::vec::Vec<f32> = (0..m).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
                let mut y = bias.clone();
                gemv(1.0, MatRef::new(&a, m, n), &x, 1.0, &mut y);
                for i in 0..m {
                    let expected = dot(&a[i * n..(i + 1) * n], &x) + bias[i];
                    assert_eq!(y[i].to_bits(), expected.to_bits(), "row {i} of {m}x{n}");
                }
            }
        }
    }

    /// Every vector of `gemv_batch` equals `gemv` on that vector alone, bit for bit.
    #[test]
    fn gemv_batch_equals_gemv_bit_for_bit() {
        let mut rng = Rng::new(12);
        for batch in [1, 2, 3, 7] {
            for m in [1, 2, 3, 4, 5, 8, 13, 17] {
                for n in [1, 2, 7, 8, 9, 16, 33, 64, 130, 257] {
                    for (alpha, beta) in [(1.0, 0.0), (1.0, 1.0), (0.5, 2.0)] {
                        let w: std::vec::Vec<f32> = (0..m * n).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
                        let x: std::vec::Vec<f32> = (0..batch * n).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
                        let y0: std::vec::Vec<f32> = (0..batch * m).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
                        let mut y = y0.clone();
                        gemv_batch(alpha, MatRef::new(&w, m, n), &x, beta, &mut y, batch);
                        for s in 0..batch {
                            let mut alone = y0[s * m..(s + 1) * m].to_vec();
                            gemv(alpha, MatRef::new(&w, m, n), &x[s * n..(s + 1) * n], beta, &mut alone);
                            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<std::vec::Vec<_>>();
                            assert_eq!(bits(&y[s * m..(s + 1) * m]), bits(&alone), "vector {s}: {m}x{n}, beta {beta}");
                        }
                    }
                }
            }
        }
    }

    /// A batch large enough to be split between threads (with `threading` and more
    /// than one thread) still equals `gemv` on each vector, bit for bit.
    #[test]
    fn large_gemv_batch_equals_gemv_bit_for_bit() {
        let (batch, m, n) = (64, 300, 257);
        assert!(batch * m * n >= PARALLEL_MIN_FLOPS);
        let mut rng = Rng::new(13);
        let w: std::vec::Vec<f32> = (0..m * n).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
        let x: std::vec::Vec<f32> = (0..batch * n).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
        let y0: std::vec::Vec<f32> = (0..batch * m).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
        let mut y = y0.clone();
        gemv_batch(1.0, MatRef::new(&w, m, n), &x, 1.0, &mut y, batch);
        for s in 0..batch {
            let mut alone = y0[s * m..(s + 1) * m].to_vec();
            gemv(1.0, MatRef::new(&w, m, n), &x[s * n..(s + 1) * n], 1.0, &mut alone);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<std::vec::Vec<_>>();
            assert_eq!(bits(&y[s * m..(s + 1) * m]), bits(&alone), "vector {s}");
        }
    }

    /// Products large enough to be split between threads (with `threading` and more
    /// than one thread), by rows and by columns, through the public entry point.
    #[test]
    fn large_products_match_reference() {
        for (m, k, n) in [(300, 150, 100), (100, 150, 300), (211, 97, 205), (20, 300, 800)] {
            assert!(m * k * n >= PARALLEL_MIN_FLOPS);
            check(m, k, n, &|alpha, a, b, beta, c, ldc| gemm(alpha, a, b, beta, c, ldc));
        }
    }

    /// The portable kernels (those of microcontrollers) give the AVX2 kernels' bits,
    /// and the AVX-512 kernels' where the CPU has them:
    /// products of every layout and scaling, with depths across a slice; matrix-vector
    /// products over both layouts; dot products of every length.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn portable_kernels_equal_avx2_bit_for_bit() {
        // The CPU's kernels, whatever `NN_ISA` asks of the public entry points.
        let cpu = crate::kernels::isa::detected();
        if !cpu.avx2() {
            return;
        }
        let avx512 = cpu.avx512();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<std::vec::Vec<_>>();
        let mut rng = Rng::new(21);
        let shapes = SHAPES.iter().copied().chain([(5, 300, 20), (17, 513, 9), (8, 9, 64)]);
        for (m, k, n) in shapes {
            for (a_cm, b_cm) in [(false, false), (false, true), (true, false), (true, true)] {
                let (ad, ars, acs) = stored(&mut rng, m, k, a_cm);
                let (bd, brs, bcs) = stored(&mut rng, k, n, b_cm);
                let a = MatRef { data: &ad, rows: m, cols: k, rs: ars, cs: acs };
                let b = MatRef { data: &bd, rows: k, cols: n, rs: brs, cs: bcs };
                for (alpha, beta) in [(1.0, 0.0), (1.0, 1.0), (0.5, 0.0), (0.5, 1.0), (0.5, 2.0), (1.0, -3.0)] {
                    let c0: std::vec::Vec<f32> = (0..m * n).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
                    let (mut fast, mut portable) = (c0.clone(), c0.clone());
                    // SAFETY: AVX2 is available; the views are inside their vectors, `C`
                    // holds `m` rows of `n`.
                    unsafe {
                        avx2::gemm(alpha, a, b, beta, fast.as_mut_ptr(), n);
                        portable::gemm(alpha, a, b, beta, portable.as_mut_ptr(), n);
                    }
                    assert_eq!(bits(&fast), bits(&portable), "{m}x{k}x{n}, {a_cm} {b_cm}, {alpha} {beta}");
                    if avx512 {
                        let mut wide = c0.clone();
                        // SAFETY: AVX-512 F is available; as above.
                        unsafe { avx512::gemm(alpha, a, b, beta, wide.as_mut_ptr(), n) };
                        assert_eq!(bits(&wide), bits(&portable), "AVX-512: {m}x{k}x{n}, {a_cm} {b_cm}, {alpha} {beta}");
                    }
                }
            }
            let (ad, x) = ((0..m * k).map(|_| rng.uniform_in(-1.0, 1.0)).collect::<std::vec::Vec<f32>>(), {
                (0..k).map(|_| rng.uniform_in(-1.0, 1.0)).collect::<std::vec::Vec<f32>>()
            });
            let y0: std::vec::Vec<f32> = (0..m).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
            let (mut rows_fast, mut rows_portable) = (y0.clone(), y0.clone());
            let (mut columns_fast, mut columns_portable) = (y0.clone(), y0.clone());
            // SAFETY: AVX2 is available; `ad` holds `m k` floats, `x` `k`, the outputs `m`.
            unsafe {
                avx2::gemv_rows(0.5, &ad, k, m, k, &x, &mut rows_fast);
                avx2::gemv_columns(0.5, &ad, m, m, k, &x, &mut columns_fast);
            }
            portable::gemv_rows(0.5, &ad, k, m, k, &x, &mut rows_portable);
            portable::gemv_columns(0.5, &ad, m, m, k, &x, &mut columns_portable);
            assert_eq!(bits(&rows_fast), bits(&rows_portable), "gemv rows {m}x{k}");
            assert_eq!(bits(&columns_fast), bits(&columns_portable), "gemv columns {m}x{k}");
            if avx512 {
                let mut columns_wide = y0.clone();
                // SAFETY: AVX-512 F is available; as above.
                unsafe { avx512::gemv_columns(0.5, &ad, m, m, k, &x, &mut columns_wide) };
                assert_eq!(bits(&columns_wide), bits(&columns_portable), "AVX-512 gemv columns {m}x{k}");
            }
            // SAFETY: AVX2 is available.
            let fast = unsafe { avx2::dot(&ad[..k], &x) };
            assert_eq!(fast.to_bits(), portable::dot(&ad[..k], &x).to_bits(), "dot of {k}");
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx512_tile_matches_reference_in_place_and_packed() {
        if !crate::kernels::isa::detected().avx512() {
            return;
        }
        for (m, k, n) in SHAPES.iter().copied().chain([(25, 40, 70), (14, 3, 31)]) {
            for with_blocks in [false, true] {
                check(m, k, n, &|alpha, a, b, beta, c, ldc| {
                    let mut panel = std::vec![0.0f32; avx512::KC * avx512::NR];
                    let mut a_block = std::vec![0.0f32; MC * avx512::KC];
                    let mut b_block = std::vec![0.0f32; avx512::KC * NC];
                    let blocks = with_blocks.then_some(Blocks { a: a_block.as_mut_ptr(), b: b_block.as_mut_ptr() });
                    // SAFETY: AVX-512 F is available; the views are inside their
                    // vectors; the buffers have their sizes.
                    unsafe {
                        blocked::<avx512::Avx512>(alpha, a, b, beta, c.as_mut_ptr(), ldc, panel.as_mut_ptr(), blocks)
                    }
                });
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_tile_matches_reference_in_place_and_packed() {
        if !crate::kernels::isa::isa().avx2() {
            return;
        }
        for (m, k, n) in SHAPES {
            for with_blocks in [false, true] {
                check(m, k, n, &|alpha, a, b, beta, c, ldc| {
                    let mut panel = std::vec![0.0f32; avx2::KC * avx2::NR];
                    let mut a_block = std::vec![0.0f32; MC * avx2::KC];
                    let mut b_block = std::vec![0.0f32; avx2::KC * NC];
                    let blocks = with_blocks.then_some(Blocks { a: a_block.as_mut_ptr(), b: b_block.as_mut_ptr() });
                    // SAFETY: AVX2 is available; the views are inside their vectors;
                    // the buffers have their sizes.
                    unsafe { blocked::<avx2::Avx2>(alpha, a, b, beta, c.as_mut_ptr(), ldc, panel.as_mut_ptr(), blocks) }
                });
            }
        }
    }
}
