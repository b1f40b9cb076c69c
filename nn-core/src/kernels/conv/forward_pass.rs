//! The forward of a batch (`forward`): through the column matrix, or on x86-64 and AArch64
//! from a zero-padded copy of the input (`forward_direct`) or from its shifted planes
//! (`forward_planes`, AVX-512); samples, or one sample's filters, split between threads.
use super::*;

/// The scratch floats [`forward`] needs per sample of `g` with `filters` filters
/// ([`forward_scratch_len`]).
fn forward_scratch(g: &ConvGeometry, filters: usize) -> usize {
    forward_scratch_len(g.channels, [g.height, g.width], g.kernel, [g.out_height, g.out_width], filters)
}

/// Convolution forward of a batch: `y[b] = weight * x[b] + bias` with
/// `weight[filters, C, KH, KW]`, `bias[filters]`; `x` holds `batch * C * H * W` floats
/// and `y` receives `batch * filters * OH * OW`. `scratch` holds at least
/// [`forward_scratch_len`] floats (at most [`scratch_len`]); more lets several threads
/// take a tile each.
///
/// # Panics
/// If the geometry is not one ([`ConvGeometry::check`]), `x` is not whole samples,
/// or a slice is too short.
pub fn forward(
    g: &ConvGeometry,
    filters: usize,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    scratch: &mut [f32],
) {
    let ConvSizes { input: in_len, patch, positions: n } = g.check();
    assert!(filters > 0, "convolution: no filters");
    let out_len = product("output", filters, n);
    let batch = whole_samples("input", x.len(), in_len);
    let _ = product("weight", filters, patch);
    assert!(bias.is_none_or(|b| b.len() >= filters), "convolution: fewer biases than the {filters} filters");
    let y = &mut y[..product("output", batch, out_len)];
    #[cfg(all(feature = "threading", target_arch = "x86_64"))]
    if batch == 1 && forward_one_by_filters(g, filters, x, weight, bias, y, scratch) {
        return;
    }
    #[cfg(all(feature = "threading", target_arch = "x86_64"))]
    {
        let tile = forward_scratch(g, filters);
        let parts = parallel_parts(g, batch, product("output", filters * patch, n), scratch.len(), tile);
        if parts > 1 {
            // Samples are independent: each part takes the next sample not yet taken
            // (a thread that starts late or is slowed leaves more of them to the
            // others) and computes it with its own tile of the scratch space.
            let claims = super::super::parallel::Claims::new(batch);
            let (y_at, scratch_at) = (Output(y.as_mut_ptr()), Output(scratch.as_mut_ptr()));
            let run = |part: usize| {
                // SAFETY: the parts use disjoint tiles of `scratch` (`parts * tile <=
                // scratch.len()`).
                let scratch = unsafe { core::slice::from_raw_parts_mut(scratch_at.at(part * tile), tile) };
                claims.run(|b| {
                    // SAFETY: every sample `b < batch` is claimed once, so the parts
                    // write disjoint samples of `y`.
                    let yb = unsafe { core::slice::from_raw_parts_mut(y_at.at(b * out_len), out_len) };
                    forward_samples(g, filters, &x[b * in_len..][..in_len], weight, bias, yb, scratch);
                });
            };
            return super::super::parallel::for_each_part(parts, &run);
        }
    }
    forward_samples(g, filters, x, weight, bias, y, scratch)
}

/// One sample's convolution of at least [`FILTERS_PARALLEL_MIN_MACS`] multiply-adds
/// split between [`super::super::gemm::threads`] threads by filters, where the products read
/// the input from its padded copy or shifted planes ([`forward_direct`],
/// [`forward_planes`]); whether it was (else nothing is written). Each part copies the
/// input into its own scratch (the caller's, or [`super::super::parallel::with_scratch`]'s)
/// and computes its block of at least two filters with the one-thread kernel, so every
/// output keeps the operations and the order it has on one thread.
#[cfg(all(feature = "threading", target_arch = "x86_64"))]
fn forward_one_by_filters(
    g: &ConvGeometry,
    filters: usize,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    scratch: &mut [f32],
) -> bool {
    let (patch, n) = (g.patch_len(), g.positions());
    let isa = super::super::isa::isa();
    let threads = super::super::gemm::threads();
    let parts = threads.min(filters / 2);
    // The scratch a part needs (of the most filters a part has; `forward_scratch`
    // depends on the filters only through whether there are several).
    let tile = forward_scratch(g, filters.div_ceil(2));
    let fits = |len: Option<usize>| len.is_some_and(|len| len <= tile && len <= scratch.len());
    if parts < 2
        || !isa.avx2()
        || filters.saturating_mul(patch).saturating_mul(n) < FILTERS_PARALLEL_MIN_MACS
        || !(isa.avx512() && fits(planes_len(g)) || fits(padded_len(g)))
        || tile > super::super::parallel::PART_SCRATCH
        || scratch.len() < tile
    {
        return false;
    }
    let (y_at, shared) = (Output(y.as_mut_ptr()), scratch.len() / tile >= parts);
    let scratch_at = Output(scratch.as_mut_ptr());
    let run = |part: usize| {
        // Filters `f0..f1`: at least two each (`filters >= 2 parts`).
        let (f0, f1) = (part * filters / parts, (part + 1) * filters / parts);
        let (weight, bias) = (&weight[f0 * patch..f1 * patch], bias.map(|b| &b[f0..f1]));
        // SAFETY: the parts write disjoint blocks of filters of `y` (`f1 * n <= filters
        // * n <= y.len()`, checked by `forward`).
        let y = unsafe { core::slice::from_raw_parts_mut(y_at.at(f0 * n), (f1 - f0) * n) };
        if part == 0 || shared {
            // SAFETY: part `p` takes floats `p tile..(p + 1) tile` of `scratch` (all of
            // them for part 0 when not shared), within it and no other part's.
            let scratch = unsafe {
                let len = if shared { tile } else { scratch.len() };
                core::slice::from_raw_parts_mut(scratch_at.at(part * tile), len)
            };
            forward_samples(g, f1 - f0, x, weight, bias, y, scratch);
        } else {
            super::super::parallel::with_scratch(|scratch| forward_samples(g, f1 - f0, x, weight, bias, y, scratch));
        }
    };
    super::super::parallel::for_each_quick_part(parts, &run);
    true
}

/// A convolution of one sample with at least this many multiply-adds is split between
/// [`super::super::gemm::threads`] threads by filters where its products read the padded
/// input or shifted planes ([`forward`]): below it, handing a part to another thread
/// costs more than it saves.
#[cfg(any(feature = "threading", feature = "internals"))]
pub const FILTERS_PARALLEL_MIN_MACS: usize = 1 << 17;

/// How many parts (threads) a convolution of `batch` samples of `macs` multiply-adds
/// each is split into: 1 below [`PARALLEL_MIN_MACS`], on one thread, for pointwise
/// convolutions, or when the scratch space does not hold a tile per part.
#[cfg(all(feature = "threading", target_arch = "x86_64"))]
pub(super) fn parallel_parts(g: &ConvGeometry, batch: usize, macs: usize, scratch: usize, tile: usize) -> usize {
    let threads = super::super::gemm::threads();
    if threads < 2
        || batch < 2
        || batch.saturating_mul(macs) < PARALLEL_MIN_MACS
        || g.is_pointwise()
        || !super::super::isa::isa().avx2()
    {
        return 1;
    }
    let parts = threads.min(batch);
    if parts.checked_mul(tile).is_none_or(|needed| scratch < needed) {
        return 1;
    }
    parts
}

/// [`forward`] on the calling thread.
pub(super) fn forward_samples(
    g: &ConvGeometry,
    filters: usize,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    scratch: &mut [f32],
) {
    forward_samples_by(g, filters, x, weight, bias, y, scratch, true)
}

/// [`forward_samples`], reading the columns from the padded input where
/// [`padded_len`] allows it and `direct` is set, else through [`im2col`].
#[allow(clippy::too_many_arguments)]
fn forward_samples_by(
    g: &ConvGeometry,
    filters: usize,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    scratch: &mut [f32],
    direct: bool,
) {
    let (in_len, patch, n) = (g.input_len(), g.patch_len(), g.positions());
    let out_len = filters * n;
    let batch = x.len() / in_len;
    let w = MatRef::new(&weight[..filters * patch], filters, patch);
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    let direct = direct
        && filters > 1
        && padded_len(g).is_some_and(|len| len <= scratch.len())
        && (super::super::isa::isa().avx2() || super::super::isa::isa().neon());
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let _ = direct;
    #[cfg(target_arch = "x86_64")]
    let planes = direct
        && filters > 1
        && super::super::isa::isa().avx512()
        && planes_len(g).is_some_and(|len| len <= scratch.len());
    for (xb, yb) in x.chunks_exact(in_len).zip(y[..batch * out_len].chunks_exact_mut(out_len)) {
        #[cfg(target_arch = "x86_64")]
        if planes {
            // SAFETY: the CPU has AVX-512 F, AVX2 and FMA (checked above).
            unsafe { forward_planes(g, filters, xb, &weight[..filters * patch], bias, yb, scratch) };
            continue;
        }
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
        if direct {
            // SAFETY: the CPU has AVX2 and FMA, or NEON (checked above).
            unsafe { forward_direct(g, filters, xb, &weight[..filters * patch], bias, yb, scratch) };
            continue;
        }
        // The bias is the GEMM's initial value (beta = 1): no second pass.
        match bias {
            Some(bias) => yb.chunks_exact_mut(n).zip(bias).for_each(|(row, &b)| row.fill(b)),
            None => yb.fill(0.0),
        }
        // Tiles of the positions that the least scratch holds, whatever `scratch` is.
        let per = (forward_scratch(g, filters) / patch).clamp(1, POSITIONS_PER_TILE);
        for (start, len) in tiles_of(n, per) {
            let cols = if g.is_pointwise() {
                MatRef { data: &xb[start..], rows: patch, cols: len, rs: n, cs: 1 }
            } else {
                im2col(g, xb, start, len, scratch);
                MatRef::new(&scratch[..patch * len], patch, len)
            };
            gemm(1.0, w, cols, 1.0, &mut yb[start..], n);
        }
    }
}

/// One sample's convolution without the column matrix: the input is copied once with
/// its zero padding into `scratch`, and the product reads each column row as vectors of
/// eight straight from it (`gemm_gathered` of the AVX2, AVX-512 or NEON kernels): row `(c, i, j)` of the
/// columns of output row `oy` is the padded row `oy + i dilation` of channel `c` from
/// column `j dilation` on. The same sums in the same order as [`im2col`] and
/// [`gemm`], so the same bits, without writing the columns and packing them again
/// (8x8 digits, 16 to 32 channels: 3.2 µs of 13). The bias (or zero) is where the
/// first slice of sums starts.
///
/// # Safety
/// The CPU must have AVX2 and FMA (x86-64) or NEON (AArch64).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx2,fma"))]
pub(super) unsafe fn forward_direct(
    g: &ConvGeometry,
    filters: usize,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    scratch: &mut [f32],
) {
    let (ph, pw) = padded_size(g);
    let plane = ph * pw;
    let padded = &mut scratch[..g.channels * plane];
    // SAFETY: the CPU has AVX2 (the caller's contract).
    #[cfg(target_arch = "x86_64")]
    unsafe {
        pad_input_avx2(g, x, padded)
    };
    #[cfg(target_arch = "aarch64")]
    pad_input(g, x, padded);
    let (patch, n) = (g.patch_len(), g.positions());
    // The depth of every kernel's slices (`avx2::KC`, `neon::KC`).
    let mut offsets = [0usize; super::super::portable::SLICE];
    let mut k0 = 0;
    while k0 < patch {
        let kc = super::super::portable::SLICE.min(patch - k0);
        column_rows(g, k0, &mut offsets[..kc], [plane, g.dilation[0] * pw, g.dilation[1]]);
        // The slice `k0..k0 + kc` of the sums, added to `y` as `gemm` adds each slice
        // of `KC`.
        let start = (k0 == 0).then_some(bias);
        let (weight, offsets, rows) = (&weight[k0..], &offsets[..kc], (g.out_width, pw));
        // SAFETY: the CPU has AVX2 and FMA (checked by the caller), and AVX-512 F where
        // `isa().avx512()`; the bounds are asserted inside.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            if super::super::isa::isa().avx512() {
                super::super::avx512::gemm_gathered(weight, patch, filters, kc, padded, offsets, rows, start, y, n, n)
            } else {
                super::super::avx2::gemm_gathered(weight, patch, filters, kc, padded, offsets, rows, start, y, n, n)
            }
        };
        // SAFETY: the CPU has NEON (checked by the caller); the bounds are asserted
        // inside.
        #[cfg(target_arch = "aarch64")]
        unsafe {
            super::super::neon::gemm_gathered(weight, patch, filters, kc, padded, offsets, rows, start, y, n, n)
        };
        k0 += kc;
    }
}

/// Fills `offsets` with where column rows `k0..k0 + offsets.len()` of `g` are read:
/// row `(c, i, j)` (channel, kernel row, kernel column; `j` fastest) at
/// `c steps[0] + i steps[1] + j steps[2]`, by additions (the wrapping steps back to the
/// start of a kernel row or channel cancel out): the first channel's worth of rows
/// (`taps = kernel[0] kernel[1]`) tap by tap, then each further channel's worth as
/// those plus one, two, ... channels (no branches; vector additions).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[inline(always)]
fn column_rows(g: &ConvGeometry, k0: usize, offsets: &mut [usize], steps: [usize; 3]) {
    let [kh, kw] = g.kernel;
    let taps = kh * kw;
    let (mut i, mut j) = ((k0 % taps) / kw, k0 % kw);
    let mut at = (k0 / taps) * steps[0] + i * steps[1] + j * steps[2];
    let next_row = steps[1].wrapping_sub(kw * steps[2]);
    let next_channel = steps[0].wrapping_sub(kh * steps[1]);
    let head = taps.min(offsets.len());
    for o in &mut offsets[..head] {
        *o = at;
        (j, at) = (j + 1, at.wrapping_add(steps[2]));
        if j == kw {
            (i, j, at) = (i + 1, 0, at.wrapping_add(next_row));
            if i == kh {
                (i, at) = (0, at.wrapping_add(next_channel));
            }
        }
    }
    let (head, rest) = offsets.split_at_mut(head);
    let mut step = 0usize;
    for channel in rest.chunks_mut(taps) {
        step = step.wrapping_add(steps[0]);
        for (o, &h) in channel.iter_mut().zip(&*head) {
            *o = h.wrapping_add(step);
        }
    }
}

/// Floats of the shifted input planes of one sample that [`forward_planes`] reads
/// (`channels x kernel[1]` planes of `padded height x out_width`, then the floats past
/// the last row that `avx512::gemm_rows` reads as parts of whole vectors), or `None`
/// where it does not apply: stride 1, not pointwise, at most [`POSITIONS_PER_TILE`]
/// output positions (then they fit in [`scratch_len`] but for a few floats of slack).
#[cfg(target_arch = "x86_64")]
fn planes_len(g: &ConvGeometry) -> Option<usize> {
    let (ph, _) = padded_size(g);
    let n = g.positions();
    let applies = g.stride == [1, 1] && !g.is_pointwise() && (1..=POSITIONS_PER_TILE).contains(&n);
    let len = g.channels.checked_mul(g.kernel[1])?.checked_mul(ph)?.checked_mul(g.out_width)?;
    // The last row of the last plane ends the planes.
    let slack = super::super::avx512::rows_reach(0, n)? - n;
    applies.then(|| len.checked_add(slack)).flatten()
}

/// One sample's convolution with AVX-512 from its shifted input planes: plane `(c, j)`
/// holds, for every padded row of channel `c`, the `out_width` columns that kernel
/// column `j` reads, so that column row `(c, i, j)` of all the output positions is one
/// contiguous run of the plane, from its row `i dilation` on (`avx512::gemm_rows` reads
/// it as whole vectors of 16, without assembling a lane from two loads as the padded
/// copy of [`forward_direct`] needs for rows of 8). The same sums in the same order as
/// [`im2col`] and [`gemm`], so the same bits; the planes are `kernel[1]` times the
/// padded copy, and small images are what this path is for (8x8 digits, 16 to 32
/// channels, on a loaded AVX-512 Xeon: 4.1 µs through the padded copy, 3.5 µs from the
/// planes, `tools/conv-peak`).
///
/// # Safety
/// The CPU must have AVX-512 F, AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn forward_planes(
    g: &ConvGeometry,
    filters: usize,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    scratch: &mut [f32],
) {
    let (ph, _) = padded_size(g);
    let (ow, kw) = (g.out_width, g.kernel[1]);
    let plane = ph * ow;
    let len = planes_len(g).unwrap_or(usize::MAX);
    // The planes start on a cache line where the scratch has room for it (rows of
    // whole vectors are then read from one line or two, not always two).
    let skip = scratch.as_ptr().align_offset(PLANES_ALIGN_BYTES);
    let skip = if skip.checked_add(len).is_some_and(|end| end <= scratch.len()) { skip } else { 0 };
    let planes = &mut scratch[skip..][..len];
    // SAFETY: the CPU has AVX-512 F (the caller's contract).
    unsafe { shift_planes(g, x, planes) };
    let (patch, n) = (g.patch_len(), g.positions());
    let mut offsets = [0usize; super::super::portable::SLICE];
    let mut k0 = 0;
    while k0 < patch {
        let kc = super::super::portable::SLICE.min(patch - k0);
        column_rows(g, k0, &mut offsets[..kc], [kw * plane, g.dilation[0] * ow, plane]);
        // The slice `k0..k0 + kc` of the sums, added to `y` as `gemm` adds each slice
        // of `KC`.
        let start = (k0 == 0).then_some(bias);
        // SAFETY: the CPU has AVX-512 F, AVX2 and FMA; the bounds are asserted inside.
        unsafe {
            super::super::avx512::gemm_rows(&weight[k0..], patch, filters, kc, planes, &offsets[..kc], start, y, n, n)
        };
        k0 += kc;
    }
}

/// Writes the shifted planes of one sample `x[C, H, W]` that [`forward_planes`] reads
/// into `planes` (every float of them, zeros included): element `(r, ox)` of plane
/// `(c, j)` is `x[c, r - padding[0], ox + j dilation[1] - padding[1]]`, zero outside
/// the input. Where the output rows are as wide as the input's (`Same` padding), a
/// plane is at most [`FLAT_MAX`] floats and the kernel at most [`FLAT_MAX_COLUMNS`]
/// wide, a plane is the input channel read at one offset through a mask of the
/// elements inside the input (the same for every channel): one masked load and one
/// store per 16 floats of a plane. Otherwise row by row,
/// per 16 floats of a row. The planes are written in the order the product reads
/// them, channel after channel, so that its first reads do not wait for the last
/// stores.
///
/// # Safety
/// The CPU must have AVX-512 F.
///
/// # Panics
/// If `x` holds fewer than `input_len` floats or `planes` fewer than the planes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn shift_planes(g: &ConvGeometry, x: &[f32], planes: &mut [f32]) {
    use core::arch::x86_64::*;
    let (ph, _) = padded_size(g);
    let (h, w, ow, kw) = (g.height, g.width, g.out_width, g.kernel[1]);
    let plane = ph * ow;
    let x = &x[..g.input_len()];
    let planes = &mut planes[..g.channels * kw * plane];
    let (xp, pp) = (x.as_ptr(), planes.as_mut_ptr());
    // Output column `ox` of plane `(c, j)` reads input column `ox + shift(j)`, and the
    // input columns read are those of `ox` in `columns(j)`.
    let shift = |j: usize| (j * g.dilation[1]) as isize - g.padding[1] as isize;
    let columns = |j: usize| {
        let lo = (-shift(j)).clamp(0, ow as isize) as usize;
        lo..(w as isize - shift(j)).clamp(lo as isize, ow as isize) as usize
    };
    let lanes = |len: usize| if len >= 16 { u16::MAX } else { (1u16 << len) - 1 };
    if ow == w && plane <= FLAT_MAX && kw <= FLAT_MAX_COLUMNS {
        // Bit `t % 16` of `inside[j][t / 16]`: element `t` of plane `(c, j)` reads the
        // input, at `t + shift(j) - padding[0] w` from channel `c`'s first float.
        let mut inside = [[0u16; FLAT_MAX / 16]; FLAT_MAX_COLUMNS];
        for (j, masks) in inside[..kw].iter_mut().enumerate() {
            let columns = columns(j);
            for r in g.padding[0]..(g.padding[0] + h).min(ph) {
                // The run of row `r`, a mask at a time.
                let (mut t, end) = (r * ow + columns.start, r * ow + columns.end);
                while t < end {
                    let len = (end - t).min(16 - t % 16);
                    masks[t / 16] |= lanes(len) << (t % 16);
                    t += len;
                }
            }
        }
        let (whole, rest) = (plane / 16, plane % 16);
        for c in 0..g.channels {
            for (j, masks) in inside[..kw].iter().enumerate() {
                let from = xp.wrapping_add(c * h * w).wrapping_offset(shift(j) - (g.padding[0] * w) as isize);
                // SAFETY: the plane `(c, j)` is inside `planes`. The loads' lanes are
                // the elements inside the input, whose floats (`x[c, r - padding[0],
                // ox + shift(j)]` with the row and the column inside the input) are in
                // `x`; the lanes masked off are not read, and the pointer is formed by
                // wrapping arithmetic and not dereferenced.
                unsafe {
                    let to = pp.add((c * kw + j) * plane);
                    for (u, &load) in masks[..whole].iter().enumerate() {
                        _mm512_storeu_ps(to.add(16 * u), _mm512_maskz_loadu_ps(load, from.wrapping_add(16 * u)));
                    }
                    if rest > 0 {
                        let v = _mm512_maskz_loadu_ps(masks[whole], from.wrapping_add(16 * whole));
                        _mm512_mask_storeu_ps(to.add(16 * whole), lanes(rest), v);
                    }
                }
            }
        }
        return;
    }
    for c in 0..g.channels {
        for j in 0..kw {
            let columns = columns(j);
            for q0 in (0..ow).step_by(16) {
                // The lanes of the row's columns `q0..q0 + 16`, and those inside the input.
                let store = lanes(ow - q0);
                let load = lanes(columns.end.saturating_sub(q0)) & !lanes(columns.start.saturating_sub(q0));
                for r in 0..ph {
                    let row = r.wrapping_sub(g.padding[0]);
                    // SAFETY: the store's lanes are columns `< ow` of row `r < ph` of
                    // plane `(c, j)`, inside `planes`; the load's lanes are input
                    // columns `ox + shift(j)` in `0..w` of input row `row < h` of channel
                    // `c`, inside `x` (the others are masked off and not read; the
                    // pointer is formed by wrapping arithmetic and not dereferenced).
                    unsafe {
                        let v = if row < h {
                            let from = xp.wrapping_add((c * h + row) * w).wrapping_offset(q0 as isize + shift(j));
                            _mm512_maskz_loadu_ps(load, from)
                        } else {
                            _mm512_setzero_ps()
                        };
                        _mm512_mask_storeu_ps(pp.add(((c * kw + j) * ph + r) * ow + q0), store, v);
                    }
                }
            }
        }
    }
}

/// The alignment in bytes of the shifted planes in the scratch (a cache line).
#[cfg(target_arch = "x86_64")]
const PLANES_ALIGN_BYTES: usize = 64;

/// The floats that [`forward_scratch_len`] adds to the planes to align them.
#[cfg(target_arch = "x86_64")]
pub(super) const PLANES_ALIGN: usize = PLANES_ALIGN_BYTES / 4 - 1;

/// The largest plane that [`shift_planes`] writes as one masked copy of the input
/// channel (its masks of elements inside the input are kept on the stack).
#[cfg(target_arch = "x86_64")]
const FLAT_MAX: usize = 1024;

/// The widest kernel whose planes [`shift_planes`] writes as masked copies.
#[cfg(target_arch = "x86_64")]
const FLAT_MAX_COLUMNS: usize = 8;

#[cfg(test)]
mod tests {
    use super::*;

    /// The convolution read from the padded input equals the one through the column
    /// matrix bit for bit: paddings smaller and larger than the kernel, dilation, 1-D,
    /// remainders of filters and positions, and more than `KC` column rows. The direct
    /// form is x86-64's and AArch64's only.
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    #[test]
    fn direct_columns_give_the_same_bits() {
        // (channels, height, width, kernel, padding, dilation, filters)
        let cases = [
            (16, 8, 8, [3, 3], [1, 1], [1, 1], 32),
            (1, 8, 8, [3, 3], [1, 1], [1, 1], 16),
            (3, 16, 16, [5, 5], [2, 2], [1, 1], 7),
            (2, 12, 10, [3, 3], [0, 0], [1, 1], 5),
            (4, 16, 16, [3, 3], [2, 2], [2, 2], 8),
            (2, 4, 4, [3, 3], [3, 3], [1, 1], 3),
            (3, 8, 8, [2, 2], [0, 0], [1, 1], 4),
            (5, 1, 24, [1, 5], [0, 2], [1, 1], 6),
            (32, 8, 8, [3, 3], [1, 1], [1, 1], 9),
            (4, 5, 8, [3, 3], [1, 1], [1, 1], 13),
            (4, 8, 8, [3, 3], [1, 1], [1, 1], 1),
            // Output rows not of whole vectors of 8 (the shifted planes of AVX-512 only),
            // tiles of 1 to 4 vectors of 16 and more than `KC` column rows.
            (3, 7, 7, [3, 3], [1, 1], [1, 1], 5),
            (2, 5, 13, [3, 5], [1, 2], [1, 1], 9),
            (20, 6, 6, [3, 3], [1, 1], [1, 1], 14),
            (40, 4, 4, [3, 3], [1, 1], [1, 1], 7),
            (1, 20, 12, [3, 3], [1, 1], [1, 1], 19),
            (2, 9, 11, [3, 3], [2, 2], [2, 2], 2),
            (2, 7, 9, [3, 3], [0, 0], [1, 1], 6),
        ];
        let value = |i: usize, s: usize| ((i * s + 7) % 23) as f32 * 0.05 - 0.5;
        let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
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
                out_height: out(height, 0),
                out_width: if kernel == [2, 2] { width } else { out(width, 1) },
            };
            let g = if kernel == [2, 2] { ConvGeometry { out_height: height, ..g } } else { g };
            assert!(
                padded_len(&g).is_some() || !g.out_width.is_multiple_of(8),
                "{g:?}: the direct form does not apply"
            );
            #[cfg(target_arch = "x86_64")]
            assert!(planes_len(&g).is_some(), "{g:?}: the shifted planes do not apply");
            let (patch, n, batch) = (g.patch_len(), g.positions(), 2);
            let x: Vec<f32> = (0..batch * g.input_len()).map(|i| value(i, 7)).collect();
            let weight: Vec<f32> = (0..filters * patch).map(|i| value(i, 11)).collect();
            let bias: Vec<f32> = (0..filters).map(|i| value(i, 3)).collect();
            let mut scratch = vec![f32::NAN; scratch_len(patch, n).max(padded_len(&g).unwrap_or(0))];
            for bias in [Some(&bias[..]), None] {
                let (mut direct, mut columns) = (vec![f32::NAN; batch * filters * n], vec![0.0; batch * filters * n]);
                forward_samples_by(&g, filters, &x, &weight, bias, &mut direct, &mut scratch, true);
                forward_samples_by(&g, filters, &x, &weight, bias, &mut columns, &mut scratch, false);
                let differs = bits(&direct).iter().zip(bits(&columns)).position(|(a, b)| *a != b);
                assert_eq!(differs, None, "{g:?}, {filters} filters: first difference");
                assert!(direct.iter().all(|v| v.is_finite()));
            }
        }
    }

    /// One sample's forward split between threads by filters gives the one-thread
    /// results bit for bit: the digits CNN's second convolution, an odd number of
    /// filters, more than 256 positions (the padded copy rather than the planes with
    /// AVX-512), a dilated kernel, and a scratch of one part's size or of every part's.
    #[cfg(all(feature = "threading", target_arch = "x86_64"))]
    #[test]
    fn one_sample_split_by_filters_gives_the_same_bits() {
        if crate::kernels::gemm::threads() < 2 || !crate::kernels::isa::isa().avx2() {
            eprintln!("one thread (or no AVX2): nothing to compare");
            return;
        }
        let geometry = |channels, size: usize, padding, dilation, out| ConvGeometry {
            channels,
            height: size,
            width: size,
            kernel: [3, 3],
            stride: [1, 1],
            padding: [padding, padding],
            dilation: [dilation, dilation],
            out_height: out,
            out_width: out,
        };
        let mut split = 0;
        for (g, filters) in [
            (geometry(16, 8, 1, 1, 8), 32),
            (geometry(16, 8, 1, 1, 8), 33),
            (geometry(8, 24, 1, 1, 24), 8),
            (geometry(12, 12, 2, 2, 12), 20),
            (geometry(16, 10, 0, 1, 8), 64),
        ] {
            let (patch, n) = (g.patch_len(), g.positions());
            assert!(filters * patch * n >= FILTERS_PARALLEL_MIN_MACS, "{g:?}");
            let value = |i: usize, s: usize| ((i * s + 7) % 23) as f32 * 0.05 - 0.5;
            let x: Vec<f32> = (0..g.input_len()).map(|i| value(i, 7)).collect();
            let weight: Vec<f32> = (0..filters * patch).map(|i| value(i, 11)).collect();
            let bias: Vec<f32> = (0..filters).map(|i| value(i, 3)).collect();
            let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            let tile = forward_scratch(&g, filters);
            let mut one = vec![0.0; filters * n];
            forward_samples(&g, filters, &x, &weight, Some(&bias), &mut one, &mut vec![0.0; tile]);
            for scratch_len in [tile, 4 * tile] {
                let mut scratch = vec![0.0; scratch_len];
                let mut y = vec![f32::NAN; filters * n];
                if forward_one_by_filters(&g, filters, &x, &weight, Some(&bias), &mut y, &mut scratch) {
                    split += 1;
                    assert_eq!(bits(&y), bits(&one), "{g:?}, {filters} filters, scratch {scratch_len}");
                }
                let mut y = vec![f32::NAN; filters * n];
                forward(&g, filters, &x, &weight, Some(&bias), &mut y, &mut scratch);
                assert_eq!(bits(&y), bits(&one), "{g:?}, {filters} filters, scratch {scratch_len}, forward");
            }
        }
        assert!(split >= 8, "split {split} times");
    }
}
