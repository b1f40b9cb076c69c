//! The transposed convolution: the convolution's two products read the other way round.
use super::*;

/// Transposed-convolution forward of a batch, PyTorch's `ConvTranspose2d`:
/// `weight[C_in, filters, KH, KW]`, `bias[filters]`, `x[b]` of shape `[C_in, H, W]`,
/// `y[b]` of shape `[filters, OH, OW]`.
///
/// `g` is the geometry of the *convolution* that maps `y`'s shape to `x`'s
/// (`g.channels = filters`, `g.height = OH`, ..., `g.out_height = H`): this forward is
/// that convolution's input gradient, `y = col2im(weight^T x) + bias`.
///
/// # Panics
/// If the geometry is not one ([`ConvGeometry::check`]), `x` is not whole samples,
/// or a slice is too short.
pub fn transpose_forward(
    g: &ConvGeometry,
    in_channels: usize,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    scratch: &mut [f32],
) {
    let ConvSizes { input: out_len, patch, positions: n } = g.check();
    let filters = g.channels;
    let in_len = product("input", in_channels, n);
    let batch = whole_samples("input", x.len(), in_len);
    assert!(bias.is_none_or(|b| b.len() >= filters), "transposed convolution: fewer biases than the {filters} filters");
    let w = MatRef::new(&weight[..product("weight", in_channels, patch)], in_channels, patch);
    for (xb, yb) in x.chunks_exact(in_len).zip(y[..product("output", batch, out_len)].chunks_exact_mut(out_len)) {
        let plane = out_len / filters;
        match bias {
            Some(bias) => yb.chunks_exact_mut(plane).zip(bias).for_each(|(p, &b)| p.fill(b)),
            None => yb.fill(0.0),
        }
        for (start, len) in tiles(n) {
            let x_tile = MatRef { data: &xb[start..], rows: in_channels, cols: len, rs: n, cs: 1 };
            if g.is_pointwise() {
                gemm(1.0, w.t(), x_tile, 1.0, &mut yb[start..], n);
            } else {
                gemm(1.0, w.t(), x_tile, 0.0, scratch, len);
                col2im(g, scratch, start, len, yb);
            }
        }
    }
}

/// Transposed-convolution backward of a batch (see [`transpose_forward`]): adds
/// `dL/dweight` and `dL/dbias`, overwrites `dx` when given.
#[allow(clippy::too_many_arguments)]
pub fn transpose_backward(
    g: &ConvGeometry,
    in_channels: usize,
    x: &[f32],
    weight: &[f32],
    dy: &[f32],
    d_weight: &mut [f32],
    mut d_bias: Option<&mut [f32]>,
    mut dx: Option<&mut [f32]>,
    scratch: &mut [f32],
) {
    let ConvSizes { input: out_len, patch, positions: n } = g.check();
    let filters = g.channels;
    let in_len = product("input", in_channels, n);
    let batch = whole_samples("input", x.len(), in_len);
    let _ = product("output gradient", batch, out_len);
    let w = MatRef::new(&weight[..product("weight", in_channels, patch)], in_channels, patch);
    let d_weight = &mut d_weight[..in_channels * patch];
    for b in 0..batch {
        let xb = &x[b * in_len..][..in_len];
        let dyb = &dy[b * out_len..][..out_len];
        if let Some(db) = d_bias.as_deref_mut() {
            let plane = out_len / filters;
            db.iter_mut().zip(dyb.chunks_exact(plane)).for_each(|(g, p)| *g += p.iter().sum::<f32>());
        }
        let mut dxb = dx.as_deref_mut().map(|dx| &mut dx[b * in_len..][..in_len]);
        for (start, len) in tiles(n) {
            // The column matrix of dy: the gradient with respect to weight^T x.
            let cols = if g.is_pointwise() {
                MatRef { data: &dyb[start..], rows: patch, cols: len, rs: n, cs: 1 }
            } else {
                im2col(g, dyb, start, len, scratch);
                MatRef::new(&scratch[..patch * len], patch, len)
            };
            let x_tile = MatRef { data: &xb[start..], rows: in_channels, cols: len, rs: n, cs: 1 };
            // d_weight[C_in, P] += x[C_in, N] cols^T[N, P]
            gemm(1.0, x_tile, cols.t(), 1.0, d_weight, patch);
            if let Some(dxb) = dxb.as_deref_mut() {
                // dx[C_in, N] = weight[C_in, P] cols[P, N]
                gemm(1.0, w, cols, 0.0, &mut dxb[start..], n);
            }
        }
    }
}
