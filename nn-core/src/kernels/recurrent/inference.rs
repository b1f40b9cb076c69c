//! Whole-sequence inference: every projection one fixed-order dot product, sample by
//! sample and step by step.
use super::cells::cell_step;
use super::layout::{batch_of, CellKind, Config, Merge, States, StatesMut};
use crate::kernels::gemm::{self, MatRef};

/// `out[o] = dot(weight[o, :], x) (+ bias[o])` for a row-major `weight [out.len(), x.len()]`,
/// as one matrix-vector product whose rows are rounded as [`gemm::dot`] rounds them.
///
/// Every element is one fixed-order dot product, so the result does not
/// depend on which other rows or samples are computed: the inference and streaming
/// paths both use it and agree bit for bit.
#[inline]
pub fn project(weight: &[f32], bias: Option<&[f32]>, x: &[f32], out: &mut [f32]) {
    // One matrix-vector product (rows sharing every load of `x`); each row's sum is
    // rounded as `dot` rounds it, and `b + dot` is `dot + b`.
    let rows = out.len();
    let beta = match bias {
        Some(bias) => {
            out.copy_from_slice(&bias[..rows]);
            1.0
        }
        None => 0.0,
    };
    gemm::gemv(1.0, MatRef::new(&weight[..rows * x.len()], rows, x.len()), x, beta, out);
}

/// Merges the two directions' hidden states `hf`, `hb` into `out`.
#[inline]
pub(super) fn merge_into(merge: Merge, hf: &[f32], hb: &[f32], out: &mut [f32]) {
    let n = hf.len();
    match merge {
        Merge::Concat => {
            out[..n].copy_from_slice(hf);
            out[n..2 * n].copy_from_slice(hb);
        }
        Merge::Sum => out.iter_mut().zip(hf.iter().zip(hb)).for_each(|(o, (a, b))| *o = a + b),
        Merge::Mean => out.iter_mut().zip(hf.iter().zip(hb)).for_each(|(o, (a, b))| *o = (a + b) * 0.5),
        Merge::Multiply => out.iter_mut().zip(hf.iter().zip(hb)).for_each(|(o, (a, b))| *o = a * b),
    }
}

/// Writes the output of one sample from the last layer's sequence `seq [T, D H]`.
pub(super) fn write_output(cfg: &Config, seq: &[f32], y: &mut [f32]) {
    let (t, hd, dh, ow) = (cfg.steps, cfg.hidden, cfg.directions * cfg.hidden, cfg.output_width());
    if cfg.return_sequences {
        for (row, out) in seq.chunks_exact(dh).zip(y.chunks_exact_mut(ow)).take(t) {
            if cfg.directions == 1 {
                out.copy_from_slice(row);
            } else {
                merge_into(cfg.merge, &row[..hd], &row[hd..], out);
            }
        }
    } else if cfg.directions == 1 {
        y[..hd].copy_from_slice(&seq[(t - 1) * dh..][..hd]);
    } else {
        // The final states: forward after the last step, backward after the first.
        merge_into(cfg.merge, &seq[(t - 1) * dh..][..hd], &seq[hd..2 * hd], &mut y[..ow]);
    }
}

/// Inference over a batch `x [B, T, F]`, writing `y`. `initial` (optional) gives
/// `h_0` / `c_0` (zeros otherwise); `final_state` (optional) receives `h_n` / `c_n`.
/// `scratch` holds at least [`Config::scratch_len`] floats (one sample's worth).
///
/// Sample by sample, layer by layer, step by step, with [`project`] and [`cell_step`]:
/// the same operations as [`step`](super::step).
pub fn forward(
    cfg: &Config,
    params: &[f32],
    x: &[f32],
    initial: Option<States<'_>>,
    y: &mut [f32],
    mut final_state: Option<StatesMut<'_>>,
    scratch: &mut [f32],
) {
    let batch = batch_of(cfg, x, y);
    let (t, f, hd, gh) = (cfg.steps, cfg.features, cfg.hidden, cfg.gate_width());
    let (nl, nd) = (cfg.layers, cfg.directions);
    let dh = nd * hd;
    let (seq_a, rest) = scratch.split_at_mut(t * dh);
    let (seq_b, rest) = rest.split_at_mut(t * dh);
    let (p, rest) = rest.split_at_mut(gh);
    let (q, rest) = rest.split_at_mut(gh);
    let (h, rest) = rest.split_at_mut(hd);
    let c = &mut rest[..hd];
    let lstm = cfg.cell == CellKind::Lstm;
    let ol = cfg.output_len();
    for b in 0..batch {
        let xs = &x[b * t * f..(b + 1) * t * f];
        for l in 0..nl {
            let (cur, prev): (&mut [f32], &[f32]) =
                if l % 2 == 0 { (&mut *seq_a, &*seq_b) } else { (&mut *seq_b, &*seq_a) };
            let input: &[f32] = if l == 0 { xs } else { prev };
            let iw = cfg.input_width(l);
            for d in 0..nd {
                let w = cfg.weights(params, l, d);
                let si = (b * nl * nd + l * nd + d) * hd;
                match initial {
                    Some(s) => {
                        h.copy_from_slice(&s.h[si..si + hd]);
                        if lstm {
                            c.copy_from_slice(&s.c[si..si + hd]);
                        }
                    }
                    None => {
                        h.fill(0.0);
                        c.fill(0.0);
                    }
                }
                for s in 0..t {
                    let ti = cfg.time(d, s);
                    project(w.ih, Some(w.b_ih), &input[ti * iw..(ti + 1) * iw], p);
                    project(w.hh, Some(w.b_hh), h, q);
                    cell_step(cfg.cell, p, q, h, c);
                    cur[ti * dh + d * hd..][..hd].copy_from_slice(h);
                }
                if let Some(fs) = final_state.as_mut() {
                    fs.h[si..si + hd].copy_from_slice(h);
                    if lstm {
                        fs.c[si..si + hd].copy_from_slice(c);
                    }
                }
            }
        }
        let last: &[f32] = if (nl - 1) % 2 == 0 { seq_a } else { seq_b };
        write_output(cfg, last, &mut y[b * ol..(b + 1) * ol]);
    }
}
