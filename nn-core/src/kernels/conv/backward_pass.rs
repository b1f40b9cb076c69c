//! The backward of a batch (`backward`): the weight, bias and input gradients, on one
//! thread or with the weight gradient and the input gradient on different threads.
use super::*;

/// Convolution backward of a batch (see [`forward`]): adds `dL/dweight` into
/// `d_weight` and `dL/dbias` into `d_bias`, and overwrites `dx` with `dL/dx` when given.
#[allow(clippy::too_many_arguments)]
#[cfg_attr(not(all(feature = "threading", target_arch = "x86_64")), allow(unused_mut))]
pub fn backward(
    g: &ConvGeometry,
    filters: usize,
    x: &[f32],
    weight: &[f32],
    dy: &[f32],
    mut d_weight: Option<&mut [f32]>,
    d_bias: Option<&mut [f32]>,
    dx: Option<&mut [f32]>,
    scratch: &mut [f32],
) {
    let ConvSizes { input: in_len, patch, positions: n } = g.check();
    assert!(filters > 0, "convolution: no filters");
    let batch = whole_samples("input", x.len(), in_len);
    let out_len = product("output", filters, n);
    let _ = (product("output gradient", batch, out_len), product("weight", filters, patch));
    #[cfg(all(feature = "threading", target_arch = "x86_64"))]
    {
        // Without a weight gradient (frozen weights) only the input gradient is
        // left: computed on this thread.
        let Some(d_weight) = d_weight.as_deref_mut().map(|d| &mut d[..filters * patch]) else {
            return backward_samples(g, filters, x, weight, dy, None, d_bias, dx, scratch);
        };
        let tile = product("scratch", patch, n.min(POSITIONS_PER_TILE));
        let macs = product("weight gradient", filters * patch, n).saturating_mul(2);
        let parts = parallel_parts(g, batch, macs, scratch.len(), tile);
        if parts > 1 {
            let split = BackwardSplit::new(g, filters, batch, parts, tile, dx.is_some());
            if split.items() > 1 {
                let parts = parts.min(split.items());
                let dx = dx.map(|dx| &mut dx[..batch * in_len]);
                // The weight gradient in one piece beside the input gradient: a thread
                // that finishes the input gradient first takes samples of it from the
                // end, where each sample's sum is added once (one tile of positions).
                let share =
                    split.weight_items == 1 && split.by_columns && split.input_items > 0 && n <= POSITIONS_PER_TILE;
                let samples = share
                    .then(|| WeightSamples::new(batch, filters, patch, parts * tile, scratch.len() - parts * tile))
                    .flatten();
                let shared = BackwardShared {
                    g,
                    filters,
                    x,
                    weight,
                    dy,
                    split,
                    tile,
                    d_weight: Output(d_weight.as_mut_ptr()),
                    d_bias: d_bias.map(|db| Output(db[..filters].as_mut_ptr())),
                    dx: dx.map(|dx| Output(dx.as_mut_ptr())),
                    scratch: Output(scratch.as_mut_ptr()),
                    samples,
                };
                let claims = super::super::parallel::Claims::new(split.items());
                let run = |part: usize| {
                    // The thread's scratch and, once it takes a piece of the input
                    // gradient, the weight arranged by taps kept at its start.
                    let mut by_taps = false;
                    // SAFETY: every index is claimed once; the pieces write disjoint
                    // parts of the gradients, and each part its own tile of `scratch`
                    // (`parts * tile <= scratch.len()`).
                    claims.run(|item| unsafe { shared.run(part, item, &mut by_taps) });
                    if let Some(samples) = &shared.samples {
                        // SAFETY: the thread has no piece left, so its tile is free; as
                        // above.
                        unsafe { shared.weight_back(part, samples) };
                    }
                };
                return super::super::parallel::for_each_part(parts, &run);
            }
        }
    }
    backward_samples(g, filters, x, weight, dy, d_weight, d_bias, dx, scratch)
}

/// How [`backward`] splits a batch between threads: the weight gradient (with the bias
/// gradient) in `weight_items` pieces, by column-matrix rows where it is direct (whole
/// tiles of them, every piece keeping the widest tile of filters) or else by filters
/// (at least two each: a one-row product would be a matrix-vector product, rounded
/// differently), each over every sample in order as on one thread; and the input
/// gradient, if wanted, in `input_items` pieces of samples. With the input gradient, the
/// threads are shared between the two (on two threads one computes the weight
/// gradient, the other the input gradient: the same multiply-adds, so about the same
/// time, and neither repeats the other's copies as splitting both would), and the
/// input gradient is cut finer than its threads so that a thread that finishes first
/// takes what is left (the pieces are claimed in order, the weight gradient's first);
/// a weight gradient in one piece shares its samples with the thread that finishes
/// the input gradient ([`WeightSamples`]).
#[cfg(all(feature = "threading", target_arch = "x86_64"))]
#[derive(Clone, Copy)]
struct BackwardSplit {
    /// Pieces of the weight gradient (at least 1).
    weight_items: usize,
    /// Whether they are blocks of column-matrix rows (else blocks of filters).
    by_columns: bool,
    /// Column-matrix rows (or filters) per piece.
    weight_step: usize,
    /// Pieces of the input gradient (0 without it).
    input_items: usize,
    /// Samples per piece of the input gradient.
    sample_step: usize,
}

/// Pieces of the input gradient per thread that takes it, when there are enough
/// samples: a thread that finishes early takes the other's last pieces.
#[cfg(all(feature = "threading", target_arch = "x86_64"))]
const INPUT_ITEMS_PER_PART: usize = 4;

#[cfg(all(feature = "threading", target_arch = "x86_64"))]
impl BackwardSplit {
    fn new(g: &ConvGeometry, filters: usize, batch: usize, parts: usize, tile: usize, input: bool) -> Self {
        let patch = g.patch_len();
        let input_parts = if input { parts / 2 } else { 0 };
        let wanted = parts - input_parts;
        let by_columns = weight_grad_direct_fits(g, filters, tile);
        let (weight_items, weight_step) = if by_columns {
            let mr = GradKernels::get().map_or(1, |kernels| kernels.weight_rows);
            let step = patch.div_ceil(mr).div_ceil(wanted) * mr;
            (patch.div_ceil(step), step)
        } else {
            let step = filters.div_ceil(wanted);
            let last = filters.saturating_sub((wanted - 1) * step);
            if wanted > 1 && filters >= 2 * wanted && last >= 2 {
                (filters.div_ceil(step), step)
            } else {
                (1, filters)
            }
        };
        let input_items = (input_parts * INPUT_ITEMS_PER_PART).min(batch);
        let sample_step = batch.div_ceil(input_items.max(1));
        let input_items = if input_items == 0 { 0 } else { batch.div_ceil(sample_step) };
        BackwardSplit { weight_items, by_columns, weight_step, input_items, sample_step }
    }

    /// Every piece: the weight gradient's, then the input gradient's.
    fn items(&self) -> usize {
        self.weight_items + self.input_items
    }
}

/// What the threads of [`backward`] share: its arguments, the split, and the outputs
/// and scratch space as pointers (each piece writes its own part).
#[cfg(all(feature = "threading", target_arch = "x86_64"))]
struct BackwardShared<'a> {
    g: &'a ConvGeometry,
    filters: usize,
    x: &'a [f32],
    weight: &'a [f32],
    dy: &'a [f32],
    split: BackwardSplit,
    /// Scratch floats per thread.
    tile: usize,
    d_weight: Output,
    d_bias: Option<Output>,
    dx: Option<Output>,
    scratch: Output,
    /// The weight gradient's samples, where the threads share them ([`WeightSamples`]).
    samples: Option<WeightSamples>,
}

/// The samples of a weight gradient computed in one piece (every column-matrix row, one
/// tile of output positions per sample) on several threads: the thread of the piece
/// takes them from the first on and adds each to the gradient as it goes, as on one
/// thread; a thread left without other work takes them from the last one back, each
/// into a buffer of its own (the weight gradient's floats, then the bias gradient's)
/// that starts at `-0.0`, so that the buffer holds the sample's sum as it would be
/// added. When the two meet, the thread of the piece adds the buffers to the gradient
/// in the order of their samples: each element is the same additions of the same sums
/// in the same order as on one thread, so the same bits.
#[cfg(all(feature = "threading", target_arch = "x86_64"))]
struct WeightSamples {
    /// The next sample from the front (low 32 bits) and one past the last sample not
    /// taken from the end (high 32 bits).
    ends: core::sync::atomic::AtomicU64,
    /// Samples taken from the end and finished.
    done: core::sync::atomic::AtomicUsize,
    /// Set by a thread that panicked while computing a sample from the end.
    abort: core::sync::atomic::AtomicBool,
    /// The samples.
    batch: usize,
    /// The least sample that may be taken from the end (the buffers hold the samples
    /// from it on).
    least: usize,
    /// Where the buffers start in the scratch space (after every thread's tile), and the
    /// floats of each (sample `b` in buffer `batch - 1 - b`).
    at: usize,
    stride: usize,
}

#[cfg(all(feature = "threading", target_arch = "x86_64"))]
impl WeightSamples {
    /// The sharing of `batch` samples of a weight gradient of `filters x patch` floats
    /// (and `filters` bias sums) with buffers in `free` floats of scratch space from
    /// `at` on, or `None` where there is no room for one or the batch is too large.
    fn new(batch: usize, filters: usize, patch: usize, at: usize, free: usize) -> Option<Self> {
        let stride = filters.checked_mul(patch)?.checked_add(filters)?;
        let buffers = (free / stride).min(batch.saturating_sub(1));
        let hi = u32::try_from(batch).ok()?;
        (buffers > 0).then(|| WeightSamples {
            ends: core::sync::atomic::AtomicU64::new(u64::from(hi) << 32),
            done: core::sync::atomic::AtomicUsize::new(0),
            abort: core::sync::atomic::AtomicBool::new(false),
            batch,
            least: batch - buffers,
            at,
            stride,
        })
    }

    /// Takes the next sample from the front, if any is left.
    fn front(&self) -> Option<usize> {
        use core::sync::atomic::Ordering::Relaxed;
        let mut ends = self.ends.load(Relaxed);
        loop {
            let (lo, hi) = (ends & u64::from(u32::MAX), ends >> 32);
            if lo >= hi {
                return None;
            }
            match self.ends.compare_exchange_weak(ends, ends + 1, Relaxed, Relaxed) {
                Ok(_) => return Some(lo as usize),
                Err(now) => ends = now,
            }
        }
    }

    /// Takes the next sample from the end, if any is left that has a buffer.
    fn back(&self) -> Option<usize> {
        use core::sync::atomic::Ordering::Relaxed;
        let mut ends = self.ends.load(Relaxed);
        loop {
            let (lo, hi) = (ends & u64::from(u32::MAX), ends >> 32);
            if lo >= hi || (hi as usize) <= self.least {
                return None;
            }
            match self.ends.compare_exchange_weak(ends, ends - (1 << 32), Relaxed, Relaxed) {
                Ok(_) => return Some(hi as usize - 1),
                Err(now) => ends = now,
            }
        }
    }

    /// The first sample taken from the end, once none is left to take.
    fn taken_from_end(&self) -> usize {
        (self.ends.load(core::sync::atomic::Ordering::Relaxed) >> 32) as usize
    }
}

#[cfg(all(feature = "threading", target_arch = "x86_64"))]
impl BackwardShared<'_> {
    /// Piece `item` of the backward on thread `part`; `by_taps` says whether the weight
    /// arranged by taps is already at the start of the thread's scratch (a thread takes
    /// the pieces of the weight gradient before those of the input gradient, so it is
    /// written once, for the first of the latter).
    ///
    /// # Safety
    /// `part < parts` with `parts * tile` floats of scratch; every `item < items()` is
    /// run once, and no two threads share a `part`.
    unsafe fn run(&self, part: usize, item: usize, by_taps: &mut bool) {
        let BackwardShared { g, filters, x, weight, dy, split, tile, .. } = *self;
        let (in_len, patch, n) = (g.input_len(), g.patch_len(), g.positions());
        let (out_len, batch) = (filters * n, x.len() / in_len);
        // SAFETY: the thread's own tile of the scratch (the caller's contract).
        let scratch = unsafe { core::slice::from_raw_parts_mut(self.scratch.at(part * tile), tile) };
        if item < split.weight_items {
            let (p0, p1) = (item * split.weight_step, (item + 1) * split.weight_step);
            if split.by_columns {
                // Columns `c0..c1` of the weight gradient, over every sample in order,
                // as on one thread, and the bias gradient with the first of them.
                let (c0, c1) = (p0.min(patch), p1.min(patch));
                // SAFETY: only the first piece writes the bias gradient.
                let mut db = self
                    .d_bias
                    .filter(|_| item == 0)
                    .map(|db| unsafe { core::slice::from_raw_parts_mut(db.at(0), filters) });
                if let Some(samples) = &self.samples {
                    // SAFETY: as below; the piece is the whole weight gradient.
                    return unsafe { self.weight_front(samples, db, scratch) };
                }
                for b in 0..batch {
                    let (xb, dyb) = (&x[b * in_len..][..in_len], &dy[b * out_len..][..out_len]);
                    // SAFETY: `weight_grad_direct_fits` holds for `filters` and `tile`;
                    // the pieces write disjoint columns of `d_weight`.
                    unsafe {
                        weight_grad_direct(g, filters, c0..c1, xb, dyb, self.d_weight.at(0), db.as_deref_mut(), scratch)
                    };
                }
                return;
            }
            // Filters `f0..f1` and their bias gradients, over every sample in order, as
            // on one thread.
            let (f0, f1) = (p0.min(filters), p1.min(filters));
            let rows = f1 - f0;
            // SAFETY: the pieces write disjoint rows `f0..f1` of `d_weight` and `d_bias`.
            let (dw, mut db) = unsafe {
                (
                    core::slice::from_raw_parts_mut(self.d_weight.at(f0 * patch), rows * patch),
                    self.d_bias.map(|db| core::slice::from_raw_parts_mut(db.at(f0), rows)),
                )
            };
            let direct = weight_grad_direct_fits(g, rows, scratch.len());
            for b in 0..batch {
                let xb = &x[b * in_len..][..in_len];
                let dyb = &dy[b * out_len + f0 * n..][..rows * n];
                if direct {
                    // SAFETY: `weight_grad_direct_fits` holds; `dw` is this piece's alone.
                    unsafe {
                        weight_grad_direct(g, rows, 0..patch, xb, dyb, dw.as_mut_ptr(), db.as_deref_mut(), scratch)
                    };
                    continue;
                }
                if let Some(db) = db.as_deref_mut() {
                    add_row_sums(db, dyb, n);
                }
                for (start, len) in tiles(n) {
                    let dy_tile = MatRef { data: &dyb[start..], rows, cols: len, rs: n, cs: 1 };
                    im2col(g, xb, start, len, scratch);
                    gemm(1.0, dy_tile, MatRef::new(&scratch[..patch * len], patch, len).t(), 1.0, dw, patch);
                }
            }
            return;
        }
        // The input gradient of samples `s0..s1`.
        let piece = item - split.weight_items;
        let (s0, s1) = (piece * split.sample_step, ((piece + 1) * split.sample_step).min(batch));
        let Some(dx_at) = self.dx.filter(|_| s0 < s1) else { return };
        // SAFETY: the pieces write disjoint samples of `dx`.
        let dx = unsafe { core::slice::from_raw_parts_mut(dx_at.at(s0 * in_len), (s1 - s0) * in_len) };
        let direct_input = input_grad_direct_size(g, filters, scratch.len());
        let (by_taps_floats, scratch) = match direct_input {
            Some(_) if *by_taps => {
                let (by_taps, rest) = scratch.split_at_mut(filters * patch);
                (&*by_taps, rest)
            }
            Some(_) => {
                *by_taps = true;
                input_grad_weights(g, filters, weight, scratch)
            }
            None => (&[][..], scratch),
        };
        let w = MatRef::new(&weight[..filters * patch], filters, patch);
        for (k, dxb) in dx.chunks_exact_mut(in_len).enumerate() {
            let dyb = &dy[(s0 + k) * out_len..][..out_len];
            if let Some(size) = direct_input {
                // SAFETY: `input_grad_direct_size` gave `size` for the scratch space
                // `by_taps_floats` came from.
                unsafe { input_grad_direct(g, filters, size, by_taps_floats, dyb, dxb, scratch) };
                continue;
            }
            dxb.fill(0.0);
            for (start, len) in tiles(n) {
                let dy_tile = MatRef { data: &dyb[start..], rows: filters, cols: len, rs: n, cs: 1 };
                gemm(1.0, w.t(), dy_tile, 0.0, scratch, len);
                col2im(g, scratch, start, len, dxb);
            }
        }
    }
}

#[cfg(all(feature = "threading", target_arch = "x86_64"))]
impl BackwardShared<'_> {
    /// The piece of the weight gradient that shares its samples: the samples from the
    /// front added to the gradient in order, then, once the other threads have finished
    /// theirs from the end, their buffers in order.
    ///
    /// # Safety
    /// As [`BackwardShared::run`] for the weight gradient's one piece (every column,
    /// by column-matrix rows), `db` the bias gradient if any.
    unsafe fn weight_front(&self, samples: &WeightSamples, mut db: Option<&mut [f32]>, scratch: &mut [f32]) {
        use core::sync::atomic::Ordering::Acquire;
        let BackwardShared { g, filters, x, dy, .. } = *self;
        let (in_len, patch) = (g.input_len(), g.patch_len());
        let out_len = filters * g.positions();
        while let Some(b) = samples.front() {
            let (xb, dyb) = (&x[b * in_len..][..in_len], &dy[b * out_len..][..out_len]);
            // SAFETY: `weight_grad_direct_fits` holds for `filters` and the thread's
            // tile; this piece alone writes `d_weight` and `d_bias`.
            unsafe {
                weight_grad_direct(g, filters, 0..patch, xb, dyb, self.d_weight.at(0), db.as_deref_mut(), scratch)
            };
        }
        let first = samples.taken_from_end();
        let taken = samples.batch - first;
        while samples.done.load(Acquire) < taken {
            if samples.abort.load(Acquire) {
                return;
            }
            core::hint::spin_loop();
        }
        // SAFETY: this piece alone writes the weight gradient (`filters x patch` floats).
        let dw = unsafe { core::slice::from_raw_parts_mut(self.d_weight.at(0), filters * patch) };
        for b in first..samples.batch {
            // SAFETY: buffer `batch - 1 - b` lies in the scratch space after every
            // thread's tile (`WeightSamples::new`); its writer has finished (`done`,
            // read with `Acquire`) and nothing writes it now.
            let buffer = unsafe {
                core::slice::from_raw_parts(
                    self.scratch.at(samples.at + (samples.batch - 1 - b) * samples.stride),
                    samples.stride,
                )
            };
            let (bw, bb) = buffer.split_at(filters * patch);
            dw.iter_mut().zip(bw).for_each(|(d, s)| *d += s);
            if let Some(db) = db.as_deref_mut() {
                db.iter_mut().zip(bb).for_each(|(d, s)| *d += s);
            }
        }
    }

    /// Samples of the weight gradient taken from the end, on thread `part` once it has
    /// no other piece left: each into its buffer.
    ///
    /// # Safety
    /// As [`BackwardShared::run`]; the thread has finished its pieces (its tile of the
    /// scratch is free).
    unsafe fn weight_back(&self, part: usize, samples: &WeightSamples) {
        use core::sync::atomic::Ordering::Release;
        let BackwardShared { g, filters, x, dy, tile, .. } = *self;
        let (in_len, patch) = (g.input_len(), g.patch_len());
        let out_len = filters * g.positions();
        let _abort = super::super::parallel::AbortOnPanic(&samples.abort);
        // SAFETY: the thread's own tile of the scratch (the caller's contract).
        let scratch = unsafe { core::slice::from_raw_parts_mut(self.scratch.at(part * tile), tile) };
        while let Some(b) = samples.back() {
            // SAFETY: buffer `batch - 1 - b` lies after every thread's tile
            // (`WeightSamples::new`), and sample `b` is taken once.
            let buffer = unsafe {
                core::slice::from_raw_parts_mut(
                    self.scratch.at(samples.at + (samples.batch - 1 - b) * samples.stride),
                    samples.stride,
                )
            };
            buffer.fill(-0.0);
            let (bw, bb) = buffer.split_at_mut(filters * patch);
            let (xb, dyb) = (&x[b * in_len..][..in_len], &dy[b * out_len..][..out_len]);
            let db = self.d_bias.is_some().then_some(bb);
            // SAFETY: `weight_grad_direct_fits` holds for `filters` and `tile`; the
            // buffer is this sample's alone.
            unsafe { weight_grad_direct(g, filters, 0..patch, xb, dyb, bw.as_mut_ptr(), db, scratch) };
            samples.done.fetch_add(1, Release);
        }
    }
}

/// `db[f] += sum_j dy[f n + j]` for every row `f` of `db`, each row's sum rounded as
/// `Iterator::sum` rounds it (from `-0.0`, in order), eight rows at a time so that their
/// chains of additions overlap instead of waiting on one another.
pub(super) fn add_row_sums(db: &mut [f32], dy: &[f32], n: usize) {
    let (dy, total) = (&dy[..db.len() * n], db.len());
    let mut blocks = db.chunks_exact_mut(8);
    for (f, block) in blocks.by_ref().enumerate() {
        let rows: [&[f32]; 8] = core::array::from_fn(|r| &dy[(8 * f + r) * n..][..n]);
        let mut sums = [-0.0f32; 8];
        for j in 0..n {
            for (sum, row) in sums.iter_mut().zip(rows) {
                *sum += row[j];
            }
        }
        block.iter_mut().zip(sums).for_each(|(d, sum)| *d += sum);
    }
    let rest = blocks.into_remainder();
    let done = total - rest.len();
    for (d, row) in rest.iter_mut().zip(dy[done * n..].chunks_exact(n)) {
        *d += row.iter().sum::<f32>();
    }
}

/// [`backward`] on the calling thread.
#[allow(clippy::too_many_arguments)]
fn backward_samples(
    g: &ConvGeometry,
    filters: usize,
    x: &[f32],
    weight: &[f32],
    dy: &[f32],
    d_weight: Option<&mut [f32]>,
    d_bias: Option<&mut [f32]>,
    dx: Option<&mut [f32]>,
    scratch: &mut [f32],
) {
    backward_samples_by(g, filters, x, weight, dy, d_weight, d_bias, dx, scratch, true)
}

/// [`backward_samples`], reading the padded input and output gradient where
/// [`weight_grad_direct_fits`] and [`input_grad_direct_size`] allow it and `direct` is
/// set, else through the column matrices.
#[allow(clippy::too_many_arguments)]
fn backward_samples_by(
    g: &ConvGeometry,
    filters: usize,
    x: &[f32],
    weight: &[f32],
    dy: &[f32],
    d_weight: Option<&mut [f32]>,
    mut d_bias: Option<&mut [f32]>,
    mut dx: Option<&mut [f32]>,
    scratch: &mut [f32],
    direct: bool,
) {
    let (in_len, patch, n) = (g.input_len(), g.patch_len(), g.positions());
    let out_len = filters * n;
    let batch = x.len() / in_len;
    let w = MatRef::new(&weight[..filters * patch], filters, patch);
    let mut d_weight = d_weight.map(|d| &mut d[..filters * patch]);
    // The weight arranged by taps stays at the start of `scratch` for the whole batch,
    // where the weight gradient (if any) is direct in the rest of it too.
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    let direct_input = input_grad_direct_size(g, filters, scratch.len()).filter(|_| {
        let rest = scratch.len() - filters * patch;
        direct && dx.is_some() && (d_weight.is_none() || weight_grad_direct_fits(g, filters, rest))
    });
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    let (by_taps, scratch) = match direct_input {
        Some(_) => input_grad_weights(g, filters, weight, scratch),
        None => (&[][..], scratch),
    };
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    let direct_weight = direct && weight_grad_direct_fits(g, filters, scratch.len());
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let _ = direct;
    for b in 0..batch {
        let xb = &x[b * in_len..][..in_len];
        let dyb = &dy[b * out_len..][..out_len];
        #[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), allow(unused_mut))]
        let mut db = d_bias.as_deref_mut();
        let mut dwb = d_weight.as_deref_mut();
        let mut dxb = dx.as_deref_mut().map(|dx| &mut dx[b * in_len..][..in_len]);
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
        {
            if let Some(dw) = dwb.take_if(|_| direct_weight) {
                // SAFETY: `weight_grad_direct_fits` holds.
                unsafe { weight_grad_direct(g, filters, 0..patch, xb, dyb, dw.as_mut_ptr(), db.take(), scratch) };
            }
            if let (Some(size), Some(dxb)) = (direct_input, dxb.take_if(|_| direct_input.is_some())) {
                // SAFETY: `input_grad_direct_size` gave `size` for the scratch space
                // `by_taps` came from.
                unsafe { input_grad_direct(g, filters, size, by_taps, dyb, dxb, scratch) };
            }
        }
        if let Some(db) = db {
            add_row_sums(db, dyb, n);
        }
        if let Some(dxb) = dxb.as_deref_mut() {
            dxb.fill(0.0);
        }
        for (start, len) in tiles(n) {
            let dy_tile = MatRef { data: &dyb[start..], rows: filters, cols: len, rs: n, cs: 1 };
            if g.is_pointwise() {
                if let Some(d_weight) = dwb.as_deref_mut() {
                    let cols = MatRef { data: &xb[start..], rows: patch, cols: len, rs: n, cs: 1 };
                    gemm(1.0, dy_tile, cols.t(), 1.0, d_weight, patch);
                }
                if let Some(dxb) = dxb.as_deref_mut() {
                    gemm(1.0, w.t(), dy_tile, 0.0, &mut dxb[start..], n);
                }
                continue;
            }
            if let Some(d_weight) = dwb.as_deref_mut() {
                im2col(g, xb, start, len, scratch);
                gemm(1.0, dy_tile, MatRef::new(&scratch[..patch * len], patch, len).t(), 1.0, d_weight, patch);
            }
            if let Some(dxb) = dxb.as_deref_mut() {
                gemm(1.0, w.t(), dy_tile, 0.0, scratch, len);
                col2im(g, scratch, start, len, dxb);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The backward read from the padded input and output gradient equals the one
    /// through the column matrices bit for bit: the geometries of
    /// `direct_columns_give_the_same_bits`, more than one tile of positions (the weight
    /// gradient only), signed zeros and a frozen weight or no input gradient.
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    #[test]
    fn direct_backward_gives_the_same_bits() {
        if GradKernels::get().is_none() {
            eprintln!("no AVX2 (or NEON): the direct backward does not run");
            return;
        }
        // (channels, height, width, kernel, padding, dilation, filters)
        let cases = [
            (16, 16, 16, [3, 3], [1, 1], [1, 1], 32),
            (16, 8, 8, [3, 3], [1, 1], [1, 1], 32),
            (1, 8, 8, [3, 3], [1, 1], [1, 1], 16),
            (3, 16, 16, [5, 5], [2, 2], [1, 1], 7),
            (2, 12, 8, [3, 3], [0, 0], [1, 1], 5),
            (4, 16, 16, [3, 3], [2, 2], [2, 2], 40),
            (2, 4, 4, [3, 3], [3, 3], [1, 1], 3),
            (3, 8, 8, [2, 2], [0, 0], [1, 1], 4),
            (5, 1, 24, [1, 5], [0, 2], [1, 1], 6),
            (13, 8, 8, [3, 3], [1, 1], [1, 1], 33),
            (4, 5, 8, [3, 3], [1, 1], [1, 1], 13),
            (2, 24, 24, [3, 3], [1, 1], [1, 1], 3),
            (2, 6, 10, [3, 3], [1, 1], [1, 1], 2),
        ];
        let value = |i: usize, s: usize| ((i * s + 7) % 23) as f32 * 0.05 - 0.5;
        let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        let (mut weights, mut inputs) = (0, 0);
        for (channels, height, width, kernel, padding, dilation, filters) in cases {
            let out = |size: usize, i: usize| size + 2 * padding[i] - (kernel[i] - 1) * dilation[i];
            let g = ConvGeometry {
                channels,
                height,
                width,
                kernel,
                stride: [1, 1],
                padding,
                dilation,
                out_height: if kernel == [2, 2] { height } else { out(height, 0) },
                out_width: if kernel == [2, 2] { width } else { out(width, 1) },
            };
            g.check();
            let (patch, n, batch) = (g.patch_len(), g.positions(), 3);
            let x: Vec<f32> = (0..batch * g.input_len()).map(|i| value(i, 7)).collect();
            // Some zeros of either sign in the weight and the output gradient.
            let weight: Vec<f32> = (0..filters * patch).map(|i| if i % 5 == 0 { -0.0 } else { value(i, 11) }).collect();
            let dy: Vec<f32> = (0..batch * filters * n).map(|i| if i % 7 == 0 { -0.0 } else { value(i, 5) }).collect();
            let room =
                (channels + filters) * (height + 8) * (width + 8) + 64 * n.min(POSITIONS_PER_TILE) + filters * patch;
            let mut scratch = vec![f32::NAN; scratch_len(patch, n).max(room)];
            weights += usize::from(weight_grad_direct_fits(&g, filters, scratch.len()));
            inputs += usize::from(input_grad_direct_size(&g, filters, scratch.len()).is_some());
            for (with_dw, with_dx) in [(true, true), (false, true), (true, false)] {
                let mut run = |direct: bool| {
                    let (mut dw, mut db, mut dx) =
                        (vec![0.25; filters * patch], vec![0.5; filters], vec![f32::NAN; x.len()]);
                    backward_samples_by(
                        &g,
                        filters,
                        &x,
                        &weight,
                        &dy,
                        with_dw.then_some(&mut dw[..]),
                        Some(&mut db),
                        with_dx.then_some(&mut dx[..]),
                        &mut scratch,
                        direct,
                    );
                    (bits(&dw), bits(&db), if with_dx { bits(&dx) } else { Vec::new() })
                };
                let (direct, columns) = (run(true), run(false));
                assert!(direct == columns, "{g:?}, {filters} filters, dw {with_dw}, dx {with_dx}");
            }
        }
        assert!(weights == cases.len() && inputs == 10, "direct forms taken: {weights} weight, {inputs} input");
    }

    /// The bias gradient's interleaved row sums are `Iterator::sum`'s, bit for bit:
    /// rows of negative zeros, remainders of fewer than eight rows.
    #[test]
    fn row_sums_are_sequential_sums() {
        for (rows, n) in [(32, 256), (13, 7), (3, 64), (8, 1)] {
            let dy: Vec<f32> = (0..rows * n)
                .map(|i| if i / n == 1 { -0.0 } else { ((i * 37 + 5) % 101) as f32 * 0.173 - 8.0 })
                .collect();
            let mut db: Vec<f32> = (0..rows).map(|f| if f == 1 { -0.0 } else { f as f32 * 0.3 }).collect();
            let expected: Vec<u32> =
                db.iter().zip(dy.chunks_exact(n)).map(|(d, row)| (d + row.iter().sum::<f32>()).to_bits()).collect();
            add_row_sums(&mut db, &dy, n);
            assert_eq!(db.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), expected, "{rows} x {n}");
        }
    }

    /// Forward and backward split between threads give the one-thread results bit for
    /// bit.
    #[cfg(all(feature = "threading", target_arch = "x86_64"))]
    #[test]
    fn threads_give_the_same_bits() {
        if crate::kernels::gemm::threads() < 2 || !crate::kernels::isa::isa().avx2() {
            eprintln!("one thread (or no AVX2): nothing to compare");
            return;
        }
        // Stride 1: the weight gradient split by column-matrix rows (direct); stride 2:
        // by filters (through the column matrix).
        for (stride, out, batch) in [(1, 8, 9), (2, 4, 40)] {
            let g = ConvGeometry {
                channels: 16,
                height: 8,
                width: 8,
                kernel: [3, 3],
                stride: [stride, stride],
                padding: [1, 1],
                dilation: [1, 1],
                out_height: out,
                out_width: out,
            };
            let filters = 30;
            let (patch, n) = (g.patch_len(), g.positions());
            assert!(batch * filters * patch * n >= PARALLEL_MIN_MACS);
            let value = |i: usize, s: usize| ((i * s + 7) % 23) as f32 * 0.05 - 0.5;
            let x: Vec<f32> = (0..batch * g.input_len()).map(|i| value(i, 7)).collect();
            let weight: Vec<f32> = (0..filters * patch).map(|i| value(i, 11)).collect();
            let bias: Vec<f32> = (0..filters).map(|i| value(i, 3)).collect();
            let dy: Vec<f32> = (0..batch * filters * n).map(|i| value(i, 5)).collect();
            let mut scratch = vec![0.0; batch * scratch_len(patch, n)];
            let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();

            let (mut y, mut y_one) = (vec![0.0; batch * filters * n], vec![0.0; batch * filters * n]);
            forward(&g, filters, &x, &weight, Some(&bias), &mut y, &mut scratch);
            forward_samples(&g, filters, &x, &weight, Some(&bias), &mut y_one, &mut scratch);
            assert_eq!(bits(&y), bits(&y_one));

            // With the input gradient the threads share the weight gradient and the
            // input gradient; without it they split the weight gradient alone.
            let run = |threaded: bool, with_dx: bool, scratch: &mut [f32]| {
                let (mut dw, mut db, mut dx) = (vec![0.25; filters * patch], vec![0.5; filters], vec![0.0; x.len()]);
                let f = if threaded { backward } else { backward_samples };
                let dx_out = if with_dx { Some(&mut dx[..]) } else { None };
                f(&g, filters, &x, &weight, &dy, Some(&mut dw), Some(&mut db), dx_out, scratch);
                (bits(&dw), bits(&db), bits(&dx))
            };
            for with_dx in [true, false] {
                let (threaded, one) = (run(true, with_dx, &mut scratch), run(false, with_dx, &mut scratch));
                assert_eq!(threaded, one, "stride {stride}, input gradient {with_dx}");
            }
        }
    }

    /// The weight gradient's samples shared between threads ([`WeightSamples`]): those
    /// taken from the end into buffers, then those from the front with the buffers
    /// added in order, give the one-thread bits, however many are taken from the end,
    /// with and without the bias gradient (one thread takes both sides, in turn).
    #[test]
    #[cfg(all(feature = "threading", target_arch = "x86_64"))]
    fn weight_samples_from_the_end_give_the_same_bits() {
        if GradKernels::get().is_none() {
            return;
        }
        let g = ConvGeometry {
            channels: 16,
            height: 8,
            width: 8,
            kernel: [3, 3],
            stride: [1, 1],
            padding: [1, 1],
            dilation: [1, 1],
            out_height: 8,
            out_width: 8,
        };
        let (filters, batch) = (30, 9);
        let (patch, n) = (g.patch_len(), g.positions());
        let value = |i: usize, s: usize| ((i * s + 7) % 23) as f32 * 0.05 - 0.5;
        let x: Vec<f32> = (0..batch * g.input_len()).map(|i| value(i, 7)).collect();
        let weight: Vec<f32> = (0..filters * patch).map(|i| value(i, 11)).collect();
        // Zeros of both signs among the output gradient's values.
        let dy: Vec<f32> = (0..batch * filters * n).map(|i| if i % 97 == 0 { -0.0 } else { value(i, 5) }).collect();
        let tile = scratch_len(patch, n);
        let stride = filters * patch + filters;
        let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        for with_bias in [true, false] {
            let (mut dw_one, mut db_one) = (vec![0.25; filters * patch], vec![0.5; filters]);
            let mut scratch = vec![0.0; batch * tile];
            let db = with_bias.then_some(&mut db_one[..]);
            backward_samples(&g, filters, &x, &weight, &dy, Some(&mut dw_one), db, None, &mut scratch);
            for taken in [1, 4, batch - 1] {
                let (mut dw, mut db) = (vec![0.25; filters * patch], vec![0.5; filters]);
                let split = BackwardSplit::new(&g, filters, batch, 2, tile, true);
                assert!(split.weight_items == 1 && split.by_columns);
                let samples = WeightSamples::new(batch, filters, patch, 2 * tile, taken * stride + stride - 1);
                let shared = BackwardShared {
                    g: &g,
                    filters,
                    x: &x,
                    weight: &weight,
                    dy: &dy,
                    split,
                    tile,
                    d_weight: Output(dw.as_mut_ptr()),
                    d_bias: with_bias.then_some(Output(db.as_mut_ptr())),
                    dx: None,
                    scratch: Output(scratch.as_mut_ptr()),
                    samples,
                };
                let samples = shared.samples.as_ref().expect("room for the buffers");
                // SAFETY: one thread, with `2 tile` floats of scratch for its two parts
                // and the buffers after them; the weight gradient's piece is run once.
                unsafe {
                    shared.weight_back(1, samples);
                    assert_eq!(samples.done.load(core::sync::atomic::Ordering::Relaxed), taken);
                    shared.run(0, 0, &mut false);
                }
                assert_eq!(bits(&dw), bits(&dw_one), "{taken} from the end, bias {with_bias}");
                if with_bias {
                    assert_eq!(bits(&db), bits(&db_one), "{taken} from the end");
                }
            }
        }
    }
}
