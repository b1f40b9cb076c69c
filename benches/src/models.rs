//! The benchmarked networks, the same architectures as `tools/bench/pytorch_bench.py`.
use nn_core::kernels::recurrent;
use nn_core::prelude::*;

network! {
    /// The MLP of `examples/02_mlp_digits.rs`: 64-128-64-10, ReLU, dropout 0.2.
    pub struct DigitMlp: [64] -> [10] {
        hidden1: Dense { units: 128, activation: Relu },
        drop1: Dropout { rate: 0.2 },
        hidden2: Dense { units: 64, activation: Relu },
        drop2: Dropout { rate: 0.2 },
        logits: Dense { units: 10 },
    }
}

network! {
    /// The large MLP: 784-512-512-10, ReLU.
    pub struct BigMlp: [784] -> [10] {
        fc1: Dense { units: 512, activation: Relu },
        fc2: Dense { units: 512, activation: Relu },
        logits: Dense { units: 10 },
    }
}

network! {
    /// The CNN of `examples/05_cnn_digits.rs`: conv 1->16 3x3 same, batch norm, ReLU,
    /// conv 16->32 3x3 same, ReLU, max pool 2, flatten, dense 64 ReLU, dropout 0.3,
    /// dense 10.
    pub struct DigitCnn: [1, 8, 8] -> [10] {
        conv1: Conv2d { filters: 16, kernel: 3, padding: Same },
        bn1: BatchNorm2d,
        relu1: Relu,
        conv2: Conv2d { filters: 32, kernel: 3, padding: Same },
        relu2: Relu,
        pool: MaxPool2d { size: 2 } => [32, 4, 4],
        flat: Flatten,
        fc1: Dense { units: 64, activation: Relu },
        drop: Dropout { rate: 0.3 },
        logits: Dense { units: 10 },
    }
}

network! {
    /// A smaller digits CNN: conv 1->16 3x3 same, ReLU, max pool 2, flatten, dense 64
    /// ReLU, dense 10.
    pub struct SmallCnn: [1, 8, 8] -> [10] {
        conv: Conv2d { filters: 16, kernel: 3, padding: Same },
        relu: Relu,
        pool: MaxPool2d { size: 2 } => [16, 4, 4],
        flat: Flatten,
        hidden: Dense { units: 64, activation: Relu },
        logits: Dense { units: 10 },
    }
}

network! {
    /// One convolution layer: 16 -> 32 channels, 3x3, same padding, on 16x16 images.
    pub struct ConvLayer: [16, 16, 16] -> [32, 16, 16] {
        conv: Conv2d { filters: 32, kernel: 3, padding: Same },
    }
}

/// Features per step of the recurrent benchmarks.
pub const SEQ_FEATURES: usize = 8;

network! {
    /// An LSTM classifier of sequences: LSTM (32 steps of 8 features, 64 units), its
    /// last output, dense 10.
    pub struct LstmNet: [32, 8] -> [10] {
        lstm: Lstm { units: 64 },
        logits: Dense { units: 10 },
    }
}

/// The streaming GRU: 8 features in, 64 units (its sequence length only fixes the
/// whole-sequence shape). Streaming runs on the layer (`network!` types do not stream).
pub type StreamGru = Gru<1, SEQ_FEATURES, 64>;

/// Steps of the encoder's sequences.
pub const ENCODER_STEPS: usize = 32;
/// The encoder's model width.
pub const ENCODER_WIDTH: usize = 64;

network! {
    /// One post-norm Transformer encoder layer over 32 steps of width 64: 4 heads,
    /// feed-forward 256, ReLU, no dropout (as PyTorch's with `dropout=0`).
    pub struct EncoderNet: [32, 64] -> [32, 64] {
        encoder: TransformerEncoderLayer { heads: 4, ff: 256, dropout: 0.0 },
    }
}

/// The digits MLP as plain fixed-size arrays and nested loops: the hand-written
/// reference for batch-1 inference (`weight[out][in]`, PyTorch's layout).
pub struct HandMlp {
    w1: Box<[[f32; 64]; 128]>,
    b1: [f32; 128],
    w2: Box<[[f32; 128]; 64]>,
    b2: [f32; 64],
    w3: Box<[[f32; 64]; 10]>,
    b3: [f32; 10],
}

/// The weights of [`HandMlp`] transposed (`weight[in][out]`).
pub struct HandMlpColumns {
    w1: Box<[[f32; 128]; 64]>,
    w2: Box<[[f32; 64]; 128]>,
    w3: Box<[[f32; 10]; 64]>,
}

/// `y = relu?(W x + b)` with compile-time sizes.
#[inline(always)]
fn hand_dense<const I: usize, const O: usize>(w: &[[f32; I]; O], b: &[f32; O], x: &[f32; I], relu: bool) -> [f32; O] {
    let mut y = [0.0; O];
    for o in 0..O {
        let mut acc = b[o];
        for i in 0..I {
            acc += w[o][i] * x[i];
        }
        y[o] = if relu && acc < 0.0 { 0.0 } else { acc };
    }
    y
}

/// `y = relu?(W x + b)` from the transposed weights `wt[in][out]`, as fixed-size
/// real-time code stores them: the loop over outputs is the inner one, each output
/// its own sum, so the compiler vectorises it without reordering any sum; compiled
/// for AVX2 and FMA like the library's kernels.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
fn hand_dense_columns<const I: usize, const O: usize>(
    wt: &[[f32; O]; I],
    b: &[f32; O],
    x: &[f32; I],
    relu: bool,
) -> [f32; O] {
    let mut y = *b;
    for (column, &xi) in wt.iter().zip(x) {
        for (yo, &w) in y.iter_mut().zip(column) {
            *yo = w.mul_add(xi, *yo);
        }
    }
    if relu {
        for yo in &mut y {
            *yo = yo.max(0.0);
        }
    }
    y
}

impl HandMlp {
    /// The same weights as `model`.
    pub fn from_model(model: &Model<DigitMlp>) -> Self {
        let mut p = model.params();
        let mut take = |n: usize| {
            let (head, rest) = p.split_at(n);
            p = rest;
            head
        };
        fn rows<const I: usize, const O: usize>(v: &[f32]) -> Box<[[f32; I]; O]> {
            let mut w = Box::new([[0.0; I]; O]);
            for (row, src) in w.iter_mut().zip(v.chunks_exact(I)) {
                row.copy_from_slice(src);
            }
            w
        }
        let w1 = rows::<64, 128>(take(128 * 64));
        let b1 = take(128).try_into().unwrap();
        let w2 = rows::<128, 64>(take(64 * 128));
        let b2 = take(64).try_into().unwrap();
        let w3 = rows::<64, 10>(take(10 * 64));
        let b3 = take(10).try_into().unwrap();
        HandMlp { w1, b1, w2, b2, w3, b3 }
    }

    /// The logits of one sample.
    #[inline(never)]
    pub fn forward(&self, x: &[f32; 64]) -> [f32; 10] {
        let h1 = hand_dense(&self.w1, &self.b1, x, true);
        let h2 = hand_dense(&self.w2, &self.b2, &h1, true);
        hand_dense(&self.w3, &self.b3, &h2, false)
    }

    /// The logits of one sample by [`hand_dense_columns`] over `t`, the transposed
    /// weights, or `None` without AVX2 and FMA.
    #[inline(never)]
    pub fn forward_columns(&self, t: &HandMlpColumns, x: &[f32; 64]) -> Option<[f32; 10]> {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX2 and FMA.
            return Some(unsafe {
                let h1 = hand_dense_columns(&t.w1, &self.b1, x, true);
                let h2 = hand_dense_columns(&t.w2, &self.b2, &h1, true);
                hand_dense_columns(&t.w3, &self.b3, &h2, false)
            });
        }
        let _ = (t, x);
        None
    }

    /// The weights transposed, for [`HandMlp::forward_columns`].
    pub fn columns(&self) -> HandMlpColumns {
        fn transpose<const I: usize, const O: usize>(w: &[[f32; I]; O]) -> Box<[[f32; O]; I]> {
            let mut t = Box::new([[0.0; O]; I]);
            for (o, row) in w.iter().enumerate() {
                for (i, &v) in row.iter().enumerate() {
                    t[i][o] = v;
                }
            }
            t
        }
        HandMlpColumns { w1: transpose(&self.w1), w2: transpose(&self.w2), w3: transpose(&self.w3) }
    }
}

network! {
    /// The smallest real-time layer: Dense 8 -> 8, no activation.
    pub struct Dense8: [8] -> [8] {
        fc: Dense { units: 8 },
    }
}

/// The streaming GRU 8 -> 8.
pub type StreamGru8 = Gru<1, 8, 8>;
/// The streaming LSTM 16 -> 16.
pub type StreamLstm16 = Lstm<1, 16, 16>;
/// The streaming LSTM 8 -> 64.
pub type StreamLstm64 = Lstm<1, SEQ_FEATURES, 64>;

/// Dense 8 -> 8 as fixed-size code over transposed weights (`weight[in][out]`): the
/// hand-written reference for `dense8_8_b1`.
pub struct HandDense8 {
    wt: [[f32; 8]; 8],
    b: [f32; 8],
}

impl HandDense8 {
    /// The layer of `params` (`weight [8, 8]`, `bias [8]`, PyTorch's layout).
    pub fn from_params(params: &[f32]) -> Self {
        let (w, b) = params.split_at(64);
        HandDense8 { wt: *transpose::<8, 8>(w), b: b[..8].try_into().unwrap() }
    }

    /// One sample, or `None` without AVX2 and FMA.
    #[inline(never)]
    pub fn forward(&self, x: &[f32; 8]) -> Option<[f32; 8]> {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX2 and FMA.
            return Some(unsafe { hand_dense_columns(&self.wt, &self.b, x, false) });
        }
        let _ = x;
        None
    }
}

/// `w [O, I]` (row-major, PyTorch's layout) transposed to `[I][O]`.
fn transpose<const I: usize, const O: usize>(w: &[f32]) -> Box<[[f32; O]; I]> {
    let mut t = Box::new([[0.0; O]; I]);
    for (o, row) in w.chunks_exact(I).take(O).enumerate() {
        for (i, &v) in row.iter().enumerate() {
            t[i][o] = v;
        }
    }
    t
}

/// A streaming recurrent step as fixed-size loops: the hand-written reference for the
/// `*_step_b1` cases, the in-repo stand-in for RTNeural's compile-time `ModelT`. `I`
/// inputs, `H` units, `GH` gate rows (`3 H` for a GRU, `4 H` for an LSTM). The
/// projections run over transposed weights (`weight[in][out]`), 64 outputs at a time
/// (eight registers), each output one FMA chain over the inputs, as real-time C++ code
/// writes them; the gate arithmetic is the library's (`kernels::recurrent::cell_step`),
/// so that the two differ in the projections and the per-call work only.
pub struct HandRecurrent<const I: usize, const H: usize, const GH: usize> {
    cell: recurrent::CellKind,
    wt_ih: Box<[[f32; GH]; I]>,
    wt_hh: Box<[[f32; GH]; H]>,
    b_ih: [f32; GH],
    b_hh: [f32; GH],
    h: [f32; H],
    c: [f32; H],
}

/// The hand-written GRU step of `I` inputs and `H` units (`GH = 3 H`).
pub type HandGru<const I: usize, const H: usize, const GH: usize> = HandRecurrent<I, H, GH>;
/// The hand-written LSTM step of `I` inputs and `H` units (`GH = 4 H`).
pub type HandLstm<const I: usize, const H: usize, const GH: usize> = HandRecurrent<I, H, GH>;

impl<const I: usize, const H: usize, const GH: usize> HandRecurrent<I, H, GH> {
    /// The cell `cell` of `params` (one layer's `weight_ih [GH, I]`, `weight_hh [GH, H]`,
    /// `bias_ih`, `bias_hh`, PyTorch's layout), from a zero state.
    pub fn from_params(cell: recurrent::CellKind, params: &[f32]) -> Self {
        assert_eq!(GH, cell.gates() * H, "{cell:?}: {GH} gate rows for {H} units");
        let (ih, rest) = params.split_at(GH * I);
        let (hh, rest) = rest.split_at(GH * H);
        let (b_ih, b_hh) = rest.split_at(GH);
        HandRecurrent {
            cell,
            wt_ih: transpose::<I, GH>(ih),
            wt_hh: transpose::<H, GH>(hh),
            b_ih: b_ih.try_into().unwrap(),
            b_hh: b_hh[..GH].try_into().unwrap(),
            h: [0.0; H],
            c: [0.0; H],
        }
    }

    /// One step: the new hidden state, or `None` without AVX2 and FMA.
    #[inline(never)]
    pub fn step(&mut self, x: &[f32; I]) -> Option<[f32; H]> {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX2 and FMA.
            return Some(unsafe { self.step_avx2(x) });
        }
        let _ = x;
        None
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn step_avx2(&mut self, x: &[f32; I]) -> [f32; H] {
        let mut p = project_columns(&self.wt_ih, &self.b_ih, x);
        let q = project_columns(&self.wt_hh, &self.b_hh, &self.h);
        recurrent::cell_step(self.cell, &mut p, &q, &mut self.h, &mut self.c);
        self.h
    }
}

/// `b + W x` from the transposed weights `wt[in][out]`: blocks of (up to) 64 outputs,
/// each a sum over the inputs in order.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
fn project_columns<const I: usize, const O: usize>(wt: &[[f32; O]; I], b: &[f32; O], x: &[f32; I]) -> [f32; O] {
    const BLOCK: usize = 64;
    let mut y = [0.0; O];
    for base in (0..O).step_by(BLOCK) {
        let n = BLOCK.min(O - base);
        let mut acc = [0.0f32; BLOCK];
        for (column, &xi) in wt.iter().zip(x) {
            for (a, &w) in acc[..n].iter_mut().zip(&column[base..base + n]) {
                *a = w.mul_add(xi, *a);
            }
        }
        for ((y, a), b) in y[base..base + n].iter_mut().zip(acc).zip(&b[base..base + n]) {
            *y = a + b;
        }
    }
    y
}
