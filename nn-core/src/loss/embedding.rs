//! Losses on embeddings: pairs and triplets of outputs of one network (a Siamese
//! tower), for metric learning.
//!
//! | loss | embeddings | label per pair | reference |
//! |---|---|---|---|
//! | [`ContrastiveLoss`] | two | `1` similar, `0` dissimilar | Hadsell, Chopra and LeCun (2006) |
//! | [`CosineEmbeddingLoss`] | two | `1` similar, `-1` dissimilar | PyTorch's `CosineEmbeddingLoss` |
//! | [`TripletMarginLoss`] | anchor, positive, negative | none | PyTorch's `TripletMarginLoss` (`p = 2`) |
//!
//! A pair or triplet loss reads several batches of embeddings rather than one output
//! and one target, so these do not implement [`Loss`](super::Loss). Each `compute`
//! takes batches of `width` floats per embedding, row-major (`batch * width` floats
//! each), returns the mean over the batch and, when asked, writes `dL/d(embedding)`
//! for each batch (already divided by the batch size). A length that does not fit or
//! a label the loss does not know is an [`EmbeddingLossError`].
//!
//! With shared weights, one tower embeds every batch: forward it on the first items
//! and on the second items (or once on both batches stacked, as below), compute the
//! loss, put each embedding gradient into the matching output gradient and run
//! `backward`. `backward` adds into the parameter gradients, so they end up as the sum
//! over every use of the shared weights, which is the gradient of the loss.
//!
//! ```
//! use nn_core::prelude::*;
//! network! {
//!     pub struct Tower: [4] -> [2] {
//!         embed: Dense { units: 2 },
//!     }
//! }
//! let mut model = Model::<Tower>::new(3);
//! let mut ws = Workspace::<Tower>::new();
//! let mut rng = Rng::new(0);
//! // Two pairs: the first items, then the second items, stacked in one batch of 4.
//! let x = [0.1, 0.2, 0.3, 0.4, 0.9, 0.1, 0.0, 0.2, /* second items */ 0.1, 0.2, 0.3, 0.5, 0.0, 0.8, 0.7, 0.1];
//! let similar = [1.0, 0.0];
//! let loss = ContrastiveLoss::new(1.0);
//! ws.zero_grads();
//! let embeddings = model.forward_train(&mut ws, &x, &mut rng).to_vec();
//! let (first, second) = embeddings.split_at(2 * 2);
//! let (grad_first, grad_second) = ws.output_grad_mut().split_at_mut(2 * 2);
//! let value = loss.compute(first, second, &similar, 2, Some((grad_first, grad_second))).unwrap();
//! model.backward(&mut ws, &x, None);
//! assert!(value >= 0.0 && ws.grads().iter().any(|&g| g != 0.0));
//! ```

/// What is wrong with the arguments of an embedding loss.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum EmbeddingLossError {
    /// The embedding width is 0.
    ZeroWidth,
    /// A slice whose length does not fit the first batch: `expected` floats (or, for
    /// the first batch, a multiple of the width), `found` given.
    Length {
        /// Which slice: `"first"`, `"second"`, `"labels"`, `"anchor"`, `"grad second"`...
        what: &'static str,
        /// The length it must have.
        expected: usize,
        /// The length given.
        found: usize,
    },
    /// A label this loss does not accept.
    Label {
        /// The pair's index in the batch.
        index: usize,
        /// The value found.
        label: f32,
    },
}

impl core::fmt::Display for EmbeddingLossError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            EmbeddingLossError::ZeroWidth => f.write_str("embedding width is 0"),
            EmbeddingLossError::Length { what, expected, found } => {
                write!(f, "`{what}` has {found} floats, expected {expected}")
            }
            EmbeddingLossError::Label { index, label } => {
                write!(f, "pair {index} has label {label}, which this loss does not accept")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for EmbeddingLossError {}

/// The batch size of `first` (`first.len() / width`), checking every other slice has
/// `batch * width` floats (`batch` for `"labels"`).
fn batch_of(
    width: usize,
    first: (&'static str, usize),
    others: &[(&'static str, usize)],
) -> Result<usize, EmbeddingLossError> {
    if width == 0 {
        return Err(EmbeddingLossError::ZeroWidth);
    }
    let (what, found) = first;
    if found % width != 0 {
        return Err(EmbeddingLossError::Length { what, expected: (found / width) * width, found });
    }
    let batch = found / width;
    for &(what, found) in others {
        let expected = if what == "labels" { batch } else { batch * width };
        if found != expected {
            return Err(EmbeddingLossError::Length { what, expected, found });
        }
    }
    Ok(batch)
}

/// PyTorch's `pairwise_distance` with `p = 2`: `||a - b + eps||`, and `u = a - b + eps`
/// written into `diff`.
fn distance_into(a: &[f32], b: &[f32], eps: f32, diff: &mut [f32]) -> f32 {
    let mut sum = 0.0f32;
    for ((u, &a), &b) in diff.iter_mut().zip(a).zip(b) {
        *u = a - b + eps;
        sum += *u * *u;
    }
    libm::sqrtf(sum)
}

/// The Euclidean distance `||a - b + eps||` of PyTorch's `pairwise_distance` (`p = 2`;
/// `eps = 1e-6` there, `0.0` for the plain distance). `a` and `b` have equal lengths.
pub fn pairwise_distance(a: &[f32], b: &[f32], eps: f32) -> f32 {
    let sum: f32 = a.iter().zip(b).map(|(&a, &b)| (a - b + eps) * (a - b + eps)).sum();
    libm::sqrtf(sum)
}

/// The cosine similarity of `a` and `b` as PyTorch's `CosineEmbeddingLoss` computes it:
/// `a.b / sqrt((|a|^2 + 1e-12) (|b|^2 + 1e-12))`.
pub fn cosine_similarity(a: &[f32], b: &[f32]) -> f32 {
    let (dot, aa, bb) = dot_products(a, b);
    dot / libm::sqrtf(aa * bb)
}

/// `(a.b, |a|^2 + 1e-12, |b|^2 + 1e-12)`.
fn dot_products(a: &[f32], b: &[f32]) -> (f32, f32, f32) {
    const EPSILON: f32 = 1e-12;
    let (mut dot, mut aa, mut bb) = (0.0f32, 0.0f32, 0.0f32);
    for (&a, &b) in a.iter().zip(b) {
        dot += a * b;
        aa += a * a;
        bb += b * b;
    }
    (dot, aa + EPSILON, bb + EPSILON)
}

/// A loss on pairs of embeddings with one label per pair; `compute` checks the
/// arguments and averages [`PairLoss::pair`] over the batch.
pub trait PairLoss {
    /// The name shown in reports.
    const NAME: &'static str;

    /// Whether `label` is a label of this loss.
    fn accepts(&self, label: f32) -> bool;

    /// The loss of one pair `(a, b)` of equal lengths with an accepted `label`. When
    /// `grads` is `(grad_a, grad_b, scale)`, writes `scale * dl/da` and `scale * dl/db`.
    fn pair(&self, a: &[f32], b: &[f32], label: f32, grads: Option<(&mut [f32], &mut [f32], f32)>) -> f32;

    /// The mean loss over a batch of pairs: `first` and `second` hold `batch * width`
    /// floats, `labels` one per pair. When `grads` is given, writes `dL/dfirst` and
    /// `dL/dsecond` into it (same lengths as `first` and `second`).
    fn compute(
        &self,
        first: &[f32],
        second: &[f32],
        labels: &[f32],
        width: usize,
        mut grads: Option<(&mut [f32], &mut [f32])>,
    ) -> Result<f32, EmbeddingLossError> {
        let mut sizes = [("second", second.len()), ("labels", labels.len()), ("grad first", 0), ("grad second", 0)];
        let checked = match &grads {
            Some((ga, gb)) => {
                sizes[2].1 = ga.len();
                sizes[3].1 = gb.len();
                &sizes[..]
            }
            None => &sizes[..2],
        };
        let batch = batch_of(width, ("first", first.len()), checked)?;
        if let Some(index) = labels.iter().position(|&l| !self.accepts(l)) {
            return Err(EmbeddingLossError::Label { index, label: labels[index] });
        }
        let scale = 1.0 / batch as f32;
        let mut sum = 0.0f64;
        for (i, &label) in labels.iter().enumerate() {
            let r = i * width..(i + 1) * width;
            let g = grads.as_mut().map(|(ga, gb)| (&mut ga[r.clone()], &mut gb[r.clone()], scale));
            sum += self.pair(&first[r.clone()], &second[r], label, g) as f64;
        }
        Ok((sum / batch.max(1) as f64) as f32)
    }
}

/// The contrastive loss of Hadsell, Chopra and LeCun (2006) on the Euclidean distance
/// `d = ||a - b + eps||` of two embeddings:
/// `l = y d^2 / 2 + (1 - y) max(0, margin - d)^2 / 2`, with `y = 1` for a similar pair
/// and `y = 0` for a dissimilar one; the mean over the batch.
///
/// Similar pairs are pulled together, dissimilar pairs pushed apart until they are
/// `margin` away. `eps = 1e-6` as in PyTorch's `pairwise_distance` keeps the gradient
/// of `d` defined when `a = b` (at `d = 0` exactly it is taken as 0).
///
/// ```
/// use nn_core::loss::{ContrastiveLoss, PairLoss};
/// let loss = ContrastiveLoss::new(2.0);
/// // A similar pair at distance 1 costs 1/2; a dissimilar one at 1.5, (2 - 1.5)^2 / 2.
/// let first = [0.0, 0.0, 0.0, 0.0];
/// let second = [1.0, 0.0, 0.0, 1.5];
/// let value = loss.no_eps().compute(&first, &second, &[1.0, 0.0], 2, None).unwrap();
/// assert!((value - (0.5 + 0.125) / 2.0).abs() < 1e-6);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ContrastiveLoss {
    /// The distance beyond which a dissimilar pair costs nothing.
    pub margin: f32,
    /// Added to every difference before the norm, as PyTorch's `pairwise_distance`.
    pub eps: f32,
}

impl Default for ContrastiveLoss {
    fn default() -> Self {
        ContrastiveLoss::new(1.0)
    }
}

impl ContrastiveLoss {
    /// With `margin` and `eps = 1e-6`.
    pub const fn new(margin: f32) -> Self {
        ContrastiveLoss { margin, eps: 1e-6 }
    }

    /// The same loss on the plain distance `||a - b||` (`eps = 0`).
    pub const fn no_eps(self) -> Self {
        ContrastiveLoss { eps: 0.0, ..self }
    }
}

impl PairLoss for ContrastiveLoss {
    const NAME: &'static str = "contrastive";

    fn accepts(&self, label: f32) -> bool {
        label == 0.0 || label == 1.0
    }

    fn pair(&self, a: &[f32], b: &[f32], label: f32, grads: Option<(&mut [f32], &mut [f32], f32)>) -> f32 {
        let Some((ga, gb, scale)) = grads else {
            let d = pairwise_distance(a, b, self.eps);
            let hinge = (self.margin - d).max(0.0);
            return if label == 1.0 { d * d / 2.0 } else { hinge * hinge / 2.0 };
        };
        // `ga` holds u = a - b + eps; dl/da = (dl/dd) u / d = -dl/db.
        let d = distance_into(a, b, self.eps, ga);
        let (loss, factor) = if label == 1.0 {
            // d (u / d) = u, defined at d = 0 too.
            (d * d / 2.0, scale)
        } else {
            let hinge = (self.margin - d).max(0.0);
            let factor = if d > 0.0 { -scale * hinge / d } else { 0.0 };
            (hinge * hinge / 2.0, factor)
        };
        for (ga, gb) in ga.iter_mut().zip(gb.iter_mut()) {
            *ga *= factor;
            *gb = -*ga;
        }
        loss
    }
}

/// PyTorch's `CosineEmbeddingLoss`: with `c` the [`cosine_similarity`] of the pair,
/// `l = 1 - c` for a similar pair (`y = 1`) and `max(0, c - margin)` for a dissimilar
/// one (`y = -1`); the mean over the batch.
///
/// ```
/// use nn_core::loss::{CosineEmbeddingLoss, PairLoss};
/// let loss = CosineEmbeddingLoss::new(0.0);
/// // Orthogonal vectors: 1 - 0 when similar, max(0, 0) when dissimilar.
/// let value = loss.compute(&[1.0, 0.0, 1.0, 0.0], &[0.0, 2.0, 0.0, 2.0], &[1.0, -1.0], 2, None).unwrap();
/// assert!((value - 0.5).abs() < 1e-6);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CosineEmbeddingLoss {
    /// The similarity below which a dissimilar pair costs nothing (PyTorch suggests
    /// `0` to `0.5`).
    pub margin: f32,
}

impl CosineEmbeddingLoss {
    /// With `margin`.
    pub const fn new(margin: f32) -> Self {
        CosineEmbeddingLoss { margin }
    }
}

impl PairLoss for CosineEmbeddingLoss {
    const NAME: &'static str = "cosine_embedding";

    fn accepts(&self, label: f32) -> bool {
        label == 1.0 || label == -1.0
    }

    fn pair(&self, a: &[f32], b: &[f32], label: f32, grads: Option<(&mut [f32], &mut [f32], f32)>) -> f32 {
        let (dot, aa, bb) = dot_products(a, b);
        let norms = libm::sqrtf(aa * bb);
        let c = dot / norms;
        // dl/dc; PyTorch's clamp passes the gradient where `c - margin >= 0`.
        let (loss, slope) = if label == 1.0 {
            (1.0 - c, -1.0)
        } else if c - self.margin >= 0.0 {
            (c - self.margin, 1.0)
        } else {
            (0.0, 0.0)
        };
        if let Some((ga, gb, scale)) = grads {
            // dc/da = b / norms - c a / |a|^2, dc/db = a / norms - c b / |b|^2.
            let s = scale * slope;
            for (((ga, gb), &a), &b) in ga.iter_mut().zip(gb.iter_mut()).zip(a).zip(b) {
                *ga = s * (b / norms - c * a / aa);
                *gb = s * (a / norms - c * b / bb);
            }
        }
        loss
    }
}

/// PyTorch's `TripletMarginLoss` with `p = 2`:
/// `l = max(0, d(a, p) - d(a, n) + margin)` with `d(x, y) = ||x - y + eps||`, the mean
/// over the batch. With `swap` (the distance swap of Balntas et al., 2016) the
/// negative distance is `min(d(a, n), d(p, n))`.
///
/// ```
/// use nn_core::loss::TripletMarginLoss;
/// let loss = TripletMarginLoss::new(1.0);
/// // d(a, p) = 1 and d(a, n) = 1.5: 1 - 1.5 + 1.
/// let value = loss.compute(&[0.0, 0.0], &[1.0, 0.0], &[0.0, 1.5], 2, None).unwrap();
/// assert!((value - 0.5).abs() < 1e-5);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TripletMarginLoss {
    /// How much closer the positive must be than the negative.
    pub margin: f32,
    /// Added to every difference before the norm, as PyTorch's `pairwise_distance`.
    pub eps: f32,
    /// Whether the negative distance is the smaller of `d(a, n)` and `d(p, n)`.
    pub swap: bool,
}

impl Default for TripletMarginLoss {
    fn default() -> Self {
        TripletMarginLoss::new(1.0)
    }
}

impl TripletMarginLoss {
    /// With `margin`, `eps = 1e-6` and no swap (PyTorch's defaults but the margin).
    pub const fn new(margin: f32) -> Self {
        TripletMarginLoss { margin, eps: 1e-6, swap: false }
    }

    /// With the distance swap.
    pub const fn swap(self, swap: bool) -> Self {
        TripletMarginLoss { swap, ..self }
    }

    /// The mean loss over a batch of triplets (`batch * width` floats each). When
    /// `grads` is given, writes `dL/danchor`, `dL/dpositive` and `dL/dnegative` into it.
    pub fn compute(
        &self,
        anchor: &[f32],
        positive: &[f32],
        negative: &[f32],
        width: usize,
        mut grads: Option<(&mut [f32], &mut [f32], &mut [f32])>,
    ) -> Result<f32, EmbeddingLossError> {
        let mut sizes = [
            ("positive", positive.len()),
            ("negative", negative.len()),
            ("grad anchor", 0),
            ("grad positive", 0),
            ("grad negative", 0),
        ];
        let checked = match &grads {
            Some((ga, gp, gn)) => {
                sizes[2].1 = ga.len();
                sizes[3].1 = gp.len();
                sizes[4].1 = gn.len();
                &sizes[..]
            }
            None => &sizes[..2],
        };
        let batch = batch_of(width, ("anchor", anchor.len()), checked)?;
        let scale = 1.0 / batch as f32;
        let mut sum = 0.0f64;
        for i in 0..batch {
            let r = i * width..(i + 1) * width;
            let (a, p, n) = (&anchor[r.clone()], &positive[r.clone()], &negative[r.clone()]);
            let d_pos = pairwise_distance(a, p, self.eps);
            let d_an = pairwise_distance(a, n, self.eps);
            let d_pn = if self.swap { pairwise_distance(p, n, self.eps) } else { f32::INFINITY };
            // The negative distance and whether it is d(p, n).
            let (d_neg, swapped) = if d_pn < d_an { (d_pn, true) } else { (d_an, false) };
            let z = d_pos - d_neg + self.margin;
            sum += z.max(0.0) as f64;
            let Some((ga, gp, gn)) = grads.as_mut() else { continue };
            let (ga, gp, gn) = (&mut ga[r.clone()], &mut gp[r.clone()], &mut gn[r]);
            ga.fill(0.0);
            gp.fill(0.0);
            gn.fill(0.0);
            // PyTorch's clamp passes the gradient where `z >= 0`.
            if z < 0.0 {
                continue;
            }
            // d(x, y) = ||u||, u = x - y + eps: dd/dx = u / d = -dd/dy (0 at d = 0).
            // +d(a, p): anchor += u/d, positive -= u/d.
            add_distance_gradient(a, p, self.eps, d_pos, scale, ga, gp);
            // -d_neg: the same with -scale, on (a, n) or (p, n).
            if swapped {
                add_distance_gradient(p, n, self.eps, d_neg, -scale, gp, gn);
            } else {
                add_distance_gradient(a, n, self.eps, d_neg, -scale, ga, gn);
            }
        }
        Ok((sum / batch.max(1) as f64) as f32)
    }
}

/// Adds `scale * dd/dx` to `gx` and `scale * dd/dy` to `gy`, where
/// `d = ||x - y + eps||` (given): `dd/dx = (x - y + eps) / d = -dd/dy`, 0 at `d = 0`.
fn add_distance_gradient(x: &[f32], y: &[f32], eps: f32, d: f32, scale: f32, gx: &mut [f32], gy: &mut [f32]) {
    if d == 0.0 {
        return;
    }
    let factor = scale / d;
    for (((gx, gy), &x), &y) in gx.iter_mut().zip(gy.iter_mut()).zip(x).zip(y) {
        let g = factor * (x - y + eps);
        *gx += g;
        *gy -= g;
    }
}
