//! The cell arithmetic shared by every path: one unit of each cell, and one step of a
//! cell over all its units (AVX2 or portable, the same bits).
use super::layout::CellKind;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
use crate::kernels::isa::isa;
#[cfg(target_arch = "x86_64")]
use crate::kernels::isa::Isa;
#[cfg(target_arch = "x86_64")]
use crate::kernels::maths::tanh_lanes_one_scale;
use crate::kernels::maths::{each, sigmoid_lanes, tanh, tanh_lanes};
use crate::kernels::portable::fma;

/// One LSTM unit: from the projections of gates `i, f, g, o` and `c_prev`, returns
/// `(i, f, g, o, c, h)` (activations, new cell state, new hidden state).
#[inline(always)]
pub fn lstm_unit(p: [f32; 4], q: [f32; 4], c_prev: f32) -> [f32; 6] {
    let [i, f, g, o, c, h] = lstm_lanes(p.map(|v| [v]), q.map(|v| [v]), [c_prev]);
    [i[0], f[0], g[0], o[0], c[0], h[0]]
}

/// [`lstm_unit`] of `N` units: gate projections `p[gate][unit]`, `q[gate][unit]`.
#[inline(always)]
fn lstm_lanes<const N: usize>(p: [[f32; N]; 4], q: [[f32; N]; 4], c_prev: [f32; N]) -> [[f32; N]; 6] {
    lstm_lanes_by::<N, false, false>(p, q, c_prev)
}

/// [`lstm_lanes`], its `tanh` by `maths::tanh_lanes_one_scale` where `ONE_SCALE` (on
/// x86-64; the bits of [`tanh_lanes`], two steps fewer), and with `G_FIRST` the gates
/// activated in the order `g`, `i`, `f`, `o` (the same operations on each).
#[inline(always)]
fn lstm_lanes_by<const N: usize, const ONE_SCALE: bool, const G_FIRST: bool>(
    p: [[f32; N]; 4],
    q: [[f32; N]; 4],
    c_prev: [f32; N],
) -> [[f32; N]; 6] {
    let gate = |g: usize| each::<N>(|j| p[g][j] + q[g][j]);
    let (i, f, g);
    if G_FIRST {
        g = tanh_by::<N, ONE_SCALE>(gate(2));
        i = sigmoid_lanes(gate(0));
        f = sigmoid_lanes(gate(1));
    } else {
        i = sigmoid_lanes(gate(0));
        f = sigmoid_lanes(gate(1));
        g = tanh_by::<N, ONE_SCALE>(gate(2));
    }
    let o = sigmoid_lanes(gate(3));
    let c = each::<N>(|j| fma(f[j], c_prev[j], i[j] * g[j]));
    let t = tanh_by::<N, ONE_SCALE>(c);
    let h = each::<N>(|j| o[j] * t[j]);
    [i, f, g, o, c, h]
}

/// [`tanh_lanes`], by `maths::tanh_lanes_one_scale` where `ONE_SCALE` (on x86-64).
#[inline(always)]
fn tanh_by<const N: usize, const ONE_SCALE: bool>(x: [f32; N]) -> [f32; N] {
    #[cfg(target_arch = "x86_64")]
    if ONE_SCALE {
        return tanh_lanes_one_scale(x);
    }
    tanh_lanes(x)
}

/// One GRU unit: from the projections of gates `r, z, n` and `h_prev`, returns
/// `(r, z, n, h)`.
#[inline(always)]
pub fn gru_unit(p: [f32; 3], q: [f32; 3], h_prev: f32) -> [f32; 4] {
    let [r, z, n, h] = gru_lanes(p.map(|v| [v]), q.map(|v| [v]), [h_prev]);
    [r[0], z[0], n[0], h[0]]
}

/// [`gru_unit`] of `N` units: gate projections `p[gate][unit]`, `q[gate][unit]`.
#[inline(always)]
fn gru_lanes<const N: usize>(p: [[f32; N]; 3], q: [[f32; N]; 3], h_prev: [f32; N]) -> [[f32; N]; 4] {
    let r = sigmoid_lanes(each::<N>(|j| p[0][j] + q[0][j]));
    let z = sigmoid_lanes(each::<N>(|j| p[1][j] + q[1][j]));
    let n = tanh_lanes(each::<N>(|j| fma(r[j], q[2][j], p[2][j])));
    // (1 - z) n + z h_prev = n + z (h_prev - n): two operations where three depend.
    let h = each::<N>(|j| fma(z[j], h_prev[j] - n[j], n[j]));
    [r, z, n, h]
}

/// One RNN unit: `act(p + q)`.
#[inline(always)]
pub fn rnn_unit(relu: bool, p: f32, q: f32) -> f32 {
    let a = p + q;
    if relu {
        if a > 0.0 {
            a
        } else {
            0.0
        }
    } else {
        tanh(a)
    }
}

/// One step of one cell, in place: `p` and `q` (`[G H]`) are the projections (`p` is
/// overwritten), `h` and `c` (`[H]`; `c` only for LSTM) hold the previous state on
/// entry and the new one on exit.
///
/// Every unit is computed by the same operations whatever the vector width (fused
/// multiply-adds where the formulas have them, [`fma`] on every target; no
/// reductions), so the AVX-512 and AVX2 copies of the loop agree bit for bit with the
/// portable one and with the training path.
#[inline]
pub fn cell_step(cell: CellKind, p: &mut [f32], q: &[f32], h: &mut [f32], c: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    match isa() {
        // SAFETY: the CPU has AVX-512 F, AVX2 and FMA.
        Isa::Avx512 if h.len() >= AVX512_MIN_UNITS => return unsafe { cell_step_avx512(cell, p, q, h, c) },
        // SAFETY: the CPU has AVX2 and FMA (every `Isa` above `Portable` has them).
        Isa::Avx2Fma | Isa::Avx512 => return unsafe { cell_step_avx2(cell, p, q, h, c) },
        Isa::Portable | Isa::Neon => {}
    }
    #[cfg(target_arch = "aarch64")]
    if isa().neon() {
        // SAFETY: the CPU has NEON; the kernel checks its bounds.
        return unsafe { crate::kernels::neon::cell_step(cell, p, q, h, c) };
    }
    cell_step_portable(cell, p, q, h, c)
}

/// Units from which the AVX-512 cell step is faster than the AVX2 one: below one
/// 16-lane vector per gate the AVX2 step is (a GRU of 8 units: 73 ns against 81 ns per
/// streaming step on an AVX-512 Xeon).
#[cfg(target_arch = "x86_64")]
pub(super) const AVX512_MIN_UNITS: usize = 16;

/// [`cell_step`] compiled for sixteen lanes with `vfmadd`, [`WIDE_LANES`] units at a
/// time first.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
pub(super) unsafe fn cell_step_avx512(cell: CellKind, p: &mut [f32], q: &[f32], h: &mut [f32], c: &mut [f32]) {
    cell_step_lanes::<true>(cell, p, q, h, c)
}

/// [`cell_step`] compiled for eight lanes with `vfmadd`, [`WIDE_LANES`] units at a time
/// first.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
pub(super) unsafe fn cell_step_avx2(cell: CellKind, p: &mut [f32], q: &[f32], h: &mut [f32], c: &mut [f32]) {
    cell_step_lanes::<true>(cell, p, q, h, c)
}

/// [`cell_step`] of `H` units known at compile time, inlined into its caller: a
/// streaming step compiled for AVX2 or AVX-512 (`streaming::step`) keeps the gates in
/// registers, with no call and no loop over chunk sizes. The same operations as
/// [`cell_step_avx2`] (and, compiled for AVX-512, [`cell_step_avx512`]).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(super) fn cell_step_units<const H: usize>(cell: CellKind, p: &mut [f32], q: &[f32], h: &mut [f32], c: &mut [f32]) {
    cell_step_lanes::<true>(cell, p, q, &mut h[..H], c)
}

/// The LSTM step of [`cell_step`] for `H` units known at compile time (at most
/// [`WIDE_LANES`]), inlined into its caller: the gates' projections copied into arrays
/// by plain loops (where [`lanes`]' `map` is a call out of line), then one
/// [`lstm_lanes`] over all `H` units, its `tanh` by `maths::tanh_lanes_one_scale` (the
/// bits of `tanh`, two steps fewer); with `G_FIRST` the gates activated in the order
/// `g`, `i`, `f`, `o` (for projections that sum `g` first). The same results on every
/// unit.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(super) fn lstm_units<const H: usize, const G_FIRST: bool>(p: &[f32], q: &[f32], h: &mut [f32], c: &mut [f32]) {
    let (p, q, h, c) = (&p[..4 * H], &q[..4 * H], &mut h[..H], &mut c[..H]);
    let mut gates = [[[0.0; H]; 4]; 2];
    for (gates, v) in gates.iter_mut().zip([p, q]) {
        for (gate, v) in gates.iter_mut().zip(v.chunks_exact(H)) {
            gate.copy_from_slice(v);
        }
    }
    let mut c_prev = [0.0; H];
    c_prev.copy_from_slice(c);
    let [p, q] = gates;
    let [.., c_new, h_new] = lstm_lanes_by::<H, true, G_FIRST>(p, q, c_prev);
    c.copy_from_slice(&c_new);
    h.copy_from_slice(&h_new);
}

/// Units `j..j + U` of [`cell_step`] (the same operations, inlined into its caller):
/// `p` and `q` are the projections (`[G H]`, `H = h.len()`), `h` the previous state,
/// `c` (LSTM only) updated in place for those units; returns their new hidden state,
/// leaving `h` to the caller (the other units' projections still read it).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(super) fn cell_units_at<const U: usize>(
    cell: CellKind,
    p: &[f32],
    q: &[f32],
    h: &[f32],
    c: &mut [f32],
    j: usize,
) -> [f32; U] {
    let hd = h.len();
    match cell {
        CellKind::RnnTanh | CellKind::RnnRelu => {
            let relu = cell == CellKind::RnnRelu;
            each::<U>(|k| rnn_unit(relu, p[j + k], q[j + k]))
        }
        CellKind::Lstm => {
            let (p, q, c) = (blocks::<4>(p, hd), blocks::<4>(q, hd), &mut c[..hd]);
            let [.., c_new, h_new] = lstm_lanes(lanes::<4, U>(p, j), lanes::<4, U>(q, j), lanes::<1, U>([&*c], j)[0]);
            c[j..j + U].copy_from_slice(&c_new);
            h_new
        }
        CellKind::Gru => {
            let (p, q) = (blocks::<3>(p, hd), blocks::<3>(q, hd));
            let [.., h_new] = gru_lanes(lanes::<3, U>(p, j), lanes::<3, U>(q, j), lanes::<1, U>([h], j)[0]);
            h_new
        }
    }
}

/// Units `j..j + U` of a GRU step (the same results as [`cell_units_at`]) whose
/// update gate `z` is already activated, in place of its projection in `p`'s second
/// block, and with `r_done` its reset gate `r` too, in `p`'s first block (`p` and `q`
/// are `[3 H]`, `H = h.len()`); returns the units' new hidden state. The candidate's
/// `tanh` by `maths::tanh_lanes_one_scale` (the bits of `tanh`, two steps fewer).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(super) fn gru_units_activated<const U: usize>(p: &[f32], q: &[f32], h: &[f32], j: usize, r_done: bool) -> [f32; U] {
    let hd = h.len();
    let [pr, z, pn] = lanes::<3, U>(blocks::<3>(p, hd), j);
    let [qr, _, qn] = lanes::<3, U>(blocks::<3>(q, hd), j);
    let h_prev = lanes::<1, U>([h], j)[0];
    let r = if r_done { pr } else { sigmoid_lanes(each::<U>(|i| pr[i] + qr[i])) };
    let n = tanh_lanes_one_scale(each::<U>(|i| fma(r[i], qn[i], pn[i])));
    each::<U>(|i| fma(z[i], h_prev[i] - n[i], n[i]))
}

/// [`cell_step`] for the baseline instruction set: unit by unit, the smallest code (the
/// path of `no_std` firmware without AVX2).
#[inline(always)]
fn cell_step_portable(cell: CellKind, p: &mut [f32], q: &[f32], h: &mut [f32], c: &mut [f32]) {
    cell_step_lanes::<false>(cell, p, q, h, c)
}

/// [`cell_step`], with `WIDE` first [`WIDE_LANES`], then 16, then 8 units at a time,
/// then unit by unit. Every unit gets the same operations either way.
#[inline(always)]
fn cell_step_lanes<const WIDE: bool>(cell: CellKind, p: &mut [f32], q: &[f32], h: &mut [f32], c: &mut [f32]) {
    let hd = h.len();
    match cell {
        CellKind::RnnTanh | CellKind::RnnRelu => {
            let relu = cell == CellKind::RnnRelu;
            for ((h, &p), &q) in h.iter_mut().zip(&p[..hd]).zip(&q[..hd]) {
                *h = rnn_unit(relu, p, q);
            }
        }
        CellKind::Lstm => {
            let (p, q, c) = (blocks::<4>(p, hd), blocks::<4>(q, hd), &mut c[..hd]);
            let mut j = 0;
            if WIDE {
                j = lstm_chunks::<WIDE_LANES>(p, q, c, h, j);
                j = lstm_chunks::<16>(p, q, c, h, j);
                j = lstm_chunks::<8>(p, q, c, h, j);
            }
            for j in j..hd {
                let u = lstm_unit(p.map(|g| g[j]), q.map(|g| g[j]), c[j]);
                c[j] = u[4];
                h[j] = u[5];
            }
        }
        CellKind::Gru => {
            let (p, q) = (blocks::<3>(p, hd), blocks::<3>(q, hd));
            let mut j = 0;
            if WIDE {
                j = gru_chunks::<WIDE_LANES>(p, q, h, j);
                j = gru_chunks::<16>(p, q, h, j);
                j = gru_chunks::<8>(p, q, h, j);
            }
            for j in j..hd {
                h[j] = gru_unit(p.map(|g| g[j]), q.map(|g| g[j]), h[j])[3];
            }
        }
    }
}

/// Units a cell step evaluates at once where it can: eight AVX2 vectors' worth. Each
/// function is a chain of some sixty dependent operations; eight independent chains
/// side by side keep the vector units busy where one would leave them waiting (a
/// 64-unit GRU step: 0.22 µs against 0.31 µs eight units at a time).
const WIDE_LANES: usize = 64;

/// LSTM units from `j` on, `L` at a time while `L` remain; returns the first unit left.
#[inline(always)]
fn lstm_chunks<const L: usize>(p: [&[f32]; 4], q: [&[f32]; 4], c: &mut [f32], h: &mut [f32], mut j: usize) -> usize {
    while j + L <= c.len() {
        let [.., c_new, h_new] = lstm_lanes(lanes::<4, L>(p, j), lanes::<4, L>(q, j), lanes::<1, L>([&*c], j)[0]);
        c[j..j + L].copy_from_slice(&c_new);
        h[j..j + L].copy_from_slice(&h_new);
        j += L;
    }
    j
}

/// GRU units from `j` on, `L` at a time while `L` remain; returns the first unit left.
#[inline(always)]
fn gru_chunks<const L: usize>(p: [&[f32]; 3], q: [&[f32]; 3], h: &mut [f32], mut j: usize) -> usize {
    while j + L <= h.len() {
        let [.., h_new] = gru_lanes(lanes::<3, L>(p, j), lanes::<3, L>(q, j), lanes::<1, L>([&*h], j)[0]);
        h[j..j + L].copy_from_slice(&h_new);
        j += L;
    }
    j
}

/// Units `j..j + L` of each of `G` gate blocks.
#[inline(always)]
fn lanes<const G: usize, const L: usize>(blocks: [&[f32]; G], j: usize) -> [[f32; L]; G] {
    blocks.map(|b| b[j..j + L].try_into().unwrap_or([0.0; L]))
}

/// The first `N` blocks of `width` floats of `v` (the gates of a gate vector), each
/// exactly `width` long so that loops over them need no bounds checks.
#[inline(always)]
pub(super) fn blocks<const N: usize>(v: &[f32], width: usize) -> [&[f32]; N] {
    core::array::from_fn(|k| &v[k * width..][..width])
}

/// [`blocks`], mutable.
#[inline(always)]
pub(super) fn blocks_mut<const N: usize>(v: &mut [f32], width: usize) -> [&mut [f32]; N] {
    let mut rest = &mut v[..N * width];
    core::array::from_fn(|_| {
        let (block, tail) = core::mem::take(&mut rest).split_at_mut(width);
        rest = tail;
        block
    })
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// A form of [`cell_step`].
    type Form = fn(CellKind, &mut [f32], &[f32], &mut [f32], &mut [f32]);

    /// The AVX-512 and AVX2 cell steps give the portable one's bits for every cell, for
    /// widths that use every chunk size (64, 16, 8 and single units), over inputs from
    /// the saturated ends through `tanh`'s polynomial range to zero.
    #[test]
    fn every_instruction_set_gives_the_portable_bits() {
        let mut rng = Rng::new(3);
        let special = [0.0, -0.0, 0.624_999_9, -0.625, 0.625, 1e-30, -87.5, 88.8, 100.0, -100.0];
        let mut value = |k: usize| {
            if k.is_multiple_of(7) {
                special[k / 7 % special.len()]
            } else {
                rng.uniform_in(-12.0, 12.0)
            }
        };
        for cell in [CellKind::Lstm, CellKind::Gru, CellKind::RnnTanh, CellKind::RnnRelu] {
            for hidden in [1, 7, 8, 13, 16, 24, 40, 64, 77, 130] {
                let gh = cell.gates() * hidden;
                let p: Vec<f32> = (0..gh).map(&mut value).collect();
                let q: Vec<f32> = (0..gh).map(|k| value(k + 3)).collect();
                let h: Vec<f32> = (0..hidden).map(|k| value(k + 5).clamp(-1.0, 1.0)).collect();
                let c: Vec<f32> = (0..hidden).map(|k| value(k + 1)).collect();
                let run = |form: Form| {
                    let (mut p, mut h, mut c) = (p.clone(), h.clone(), c.clone());
                    form(cell, &mut p, &q, &mut h, &mut c);
                    let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                    (bits(&h), bits(&c))
                };
                let portable = run(cell_step_portable);
                if isa().avx2() {
                    // SAFETY: the CPU has AVX2 and FMA.
                    let avx2 = run(|cell, p, q, h, c| unsafe { cell_step_avx2(cell, p, q, h, c) });
                    assert_eq!(avx2, portable, "{cell:?}, {hidden} units: AVX2");
                }
                if isa().avx512() {
                    // SAFETY: the CPU has AVX-512 F, AVX2 and FMA.
                    let avx512 = run(|cell, p, q, h, c| unsafe { cell_step_avx512(cell, p, q, h, c) });
                    assert_eq!(avx512, portable, "{cell:?}, {hidden} units: AVX-512");
                }
            }
        }
    }
}
