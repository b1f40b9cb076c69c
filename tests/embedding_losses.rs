//! The embedding losses of `nn_core::loss::embedding` (contrastive, cosine embedding,
//! triplet margin): values and gradients against PyTorch fixtures (group
//! `embedding_loss` of `tools/fixtures/generate.py`; PyTorch has no contrastive loss,
//! so that one is written in torch there from its definition), gradients against
//! central differences, the gradient of a shared-weights tower through the step API,
//! degenerate pairs and argument errors.
//!
//! Finite differences: `h = 1e-2` on embeddings of size about 1, tolerance
//! `1e-4 + 1e-3 |expected|` as in `tests/losses.rs`. A difference that moves a pair
//! across a hinge (or a swapped triplet across the swap) straddles a kink and is
//! skipped; the data keeps such cases rare and the test bounds how many.
#[path = "common/fixtures.rs"]
mod fixtures;
#[path = "common/gradcheck.rs"]
mod gradcheck;

use gradcheck::{assert_close_where, central_differences_f32, uniform, Tolerance};
use nn_core::loss::embedding::{cosine_similarity, pairwise_distance};
use nn_core::loss::{ContrastiveLoss, CosineEmbeddingLoss, EmbeddingLossError, PairLoss, TripletMarginLoss};
use nn_core::prelude::*;

/// As `tests/golden.rs`: f32 rounding of sums of a few dozen terms.
const RTOL: f32 = 1e-5;
const ATOL: f32 = 1e-6;
/// The finite-difference step on embeddings.
const H: f32 = 1e-2;
/// Analytic gradient against finite differences of the `f32` loss.
const DIFFERENCES: Tolerance = Tolerance { abs: 1e-4, rel: 1e-3 };

fn embedding_fixtures() -> Vec<fixtures::Fixture> {
    let found: Vec<_> = fixtures::Fixture::all()
        .iter()
        .map(|name| fixtures::Fixture::load(name))
        .filter(|f| f.meta("group") == "embedding_loss")
        .collect();
    assert_eq!(found.len(), 5, "embedding loss fixtures");
    found
}

fn check_pair_fixture<P: PairLoss>(loss: P, f: &fixtures::Fixture) {
    let (first, second, labels) = (f.values("input1"), f.values("input2"), f.values("target"));
    let width = f.shape("input1")[1];
    let mut grads = (vec![f32::NAN; first.len()], vec![f32::NAN; second.len()]);
    let value = loss.compute(first, second, labels, width, Some((&mut grads.0, &mut grads.1))).unwrap();
    fixtures::assert_close(&format!("{}: loss", f.name), &[value], f.values("output"), RTOL, ATOL);
    fixtures::assert_close(&format!("{}: grad input1", f.name), &grads.0, f.values("grad_input1"), RTOL, ATOL);
    fixtures::assert_close(&format!("{}: grad input2", f.name), &grads.1, f.values("grad_input2"), RTOL, ATOL);
    assert_eq!(loss.compute(first, second, labels, width, None), Ok(value), "{}: value without gradient", f.name);
}

fn check_triplet_fixture(loss: TripletMarginLoss, f: &fixtures::Fixture) {
    let (a, p, n) = (f.values("anchor"), f.values("positive"), f.values("negative"));
    let width = f.shape("anchor")[1];
    let mut g = (vec![f32::NAN; a.len()], vec![f32::NAN; p.len()], vec![f32::NAN; n.len()]);
    let value = loss.compute(a, p, n, width, Some((&mut g.0, &mut g.1, &mut g.2))).unwrap();
    fixtures::assert_close(&format!("{}: loss", f.name), &[value], f.values("output"), RTOL, ATOL);
    fixtures::assert_close(&format!("{}: grad anchor", f.name), &g.0, f.values("grad_anchor"), RTOL, ATOL);
    fixtures::assert_close(&format!("{}: grad positive", f.name), &g.1, f.values("grad_positive"), RTOL, ATOL);
    fixtures::assert_close(&format!("{}: grad negative", f.name), &g.2, f.values("grad_negative"), RTOL, ATOL);
    assert_eq!(loss.compute(a, p, n, width, None), Ok(value), "{}: value without gradient", f.name);
}

#[test]
fn embedding_losses_match_torch() {
    for f in embedding_fixtures() {
        let margin = f.option_f32("margin");
        match f.meta("kind") {
            "ContrastiveLoss" => {
                assert_eq!(f.option_f32("eps"), 1e-6, "{}", f.name);
                check_pair_fixture(ContrastiveLoss::new(margin), &f);
            }
            "CosineEmbeddingLoss" => check_pair_fixture(CosineEmbeddingLoss::new(margin), &f),
            "TripletMarginLoss" => {
                assert_eq!((f.option("p"), f.option_f32("eps")), (Some("2"), 1e-6), "{}", f.name);
                let swap = f.option("swap") == Some("true");
                check_triplet_fixture(TripletMarginLoss::new(margin).swap(swap), &f);
            }
            other => panic!("{}: no library loss for `{other}`", f.name),
        }
    }
}

/// Checks the gradient of a pair loss with respect to each batch against central
/// differences; `sides` gives, per pair, which side of each kink it is on.
fn check_pair_gradient<P: PairLoss>(
    what: &str,
    loss: &P,
    first: &[f32],
    second: &[f32],
    labels: &[f32],
    width: usize,
    sides: impl Fn(&[f32], &[f32]) -> Vec<bool>,
) {
    let mut grads = (vec![f32::NAN; first.len()], vec![f32::NAN; second.len()]);
    loss.compute(first, second, labels, width, Some((&mut grads.0, &mut grads.1))).unwrap();
    let value = |a: &[f32], b: &[f32]| loss.compute(a, b, labels, width, None).unwrap() as f64;
    let numeric = central_differences_f32(first, H, |a| (value(a, second), sides(a, second)));
    assert_close_where(&format!("{what}: d/dfirst"), &grads.0, &numeric, DIFFERENCES, 2);
    let numeric = central_differences_f32(second, H, |b| (value(first, b), sides(first, b)));
    assert_close_where(&format!("{what}: d/dsecond"), &grads.1, &numeric, DIFFERENCES, 2);
}

#[test]
fn pair_loss_gradients_match_finite_differences() {
    let mut rng = Rng::new(11);
    let (batch, width) = (12, 6);
    let first = uniform(&mut rng, batch * width, -1.0, 1.0);
    let second = uniform(&mut rng, batch * width, -1.0, 1.0);

    // Contrastive: distances are about 1.4, so a margin of 1.6 leaves some dissimilar
    // pairs inside it and some outside.
    let contrastive = ContrastiveLoss::new(1.6);
    let labels: Vec<f32> = (0..batch).map(|i| (i % 2) as f32).collect();
    let inside = |a: &[f32], b: &[f32]| -> Vec<bool> {
        let pairs = a.chunks(width).zip(b.chunks(width)).zip(&labels);
        pairs.map(|((a, b), &l)| l == 0.0 && pairwise_distance(a, b, 1e-6) < contrastive.margin).collect()
    };
    let active = inside(&first, &second).iter().filter(|&&i| i).count();
    assert!((1..batch / 2).contains(&active), "{active} dissimilar pairs inside the margin");
    check_pair_gradient("contrastive", &contrastive, &first, &second, &labels, width, inside);
    check_pair_gradient("contrastive, no eps", &contrastive.no_eps(), &first, &second, &labels, width, inside);

    // Cosine embedding with margins that make some dissimilar pairs active.
    let labels: Vec<f32> = (0..batch).map(|i| if i % 2 == 0 { 1.0 } else { -1.0 }).collect();
    for margin in [0.0, -0.2] {
        let cosine = CosineEmbeddingLoss::new(margin);
        let above = |a: &[f32], b: &[f32]| -> Vec<bool> {
            let pairs = a.chunks(width).zip(b.chunks(width)).zip(&labels);
            pairs.map(|((a, b), &l)| l == -1.0 && cosine_similarity(a, b) >= margin).collect()
        };
        let active = above(&first, &second).iter().filter(|&&i| i).count();
        assert!((1..batch / 2).contains(&active), "margin {margin}: {active} dissimilar pairs active");
        check_pair_gradient(&format!("cosine, margin {margin}"), &cosine, &first, &second, &labels, width, above);
    }
}

#[test]
fn triplet_gradients_match_finite_differences() {
    let mut rng = Rng::new(12);
    let (batch, width) = (12, 6);
    let anchor = uniform(&mut rng, batch * width, -1.0, 1.0);
    let positive: Vec<f32> = anchor.iter().map(|&a| a + rng.uniform_in(-0.6, 0.6)).collect();
    let negative: Vec<f32> = positive.iter().map(|&p| p + rng.uniform_in(-0.9, 0.9)).collect();
    // Margins that leave some triplets on each side of the hinge.
    for (swap, margin) in [(false, 1.0), (true, 0.5)] {
        let loss = TripletMarginLoss::new(margin).swap(swap);
        // Per triplet: whether the hinge is active and whether d(p, n) is taken.
        let sides = |a: &[f32], p: &[f32], n: &[f32]| -> Vec<bool> {
            let mut out = Vec::new();
            for i in 0..batch {
                let r = i * width..(i + 1) * width;
                let d_pos = pairwise_distance(&a[r.clone()], &p[r.clone()], loss.eps);
                let d_an = pairwise_distance(&a[r.clone()], &n[r.clone()], loss.eps);
                let d_pn = if swap { pairwise_distance(&p[r.clone()], &n[r], loss.eps) } else { f32::INFINITY };
                out.push(d_pos - d_an.min(d_pn) + loss.margin >= 0.0);
                out.push(d_pn < d_an);
            }
            out
        };
        let pattern = sides(&anchor, &positive, &negative);
        let active = pattern.iter().step_by(2).filter(|&&s| s).count();
        assert!((1..batch).contains(&active), "swap {swap}: {active} active triplets");
        if swap {
            let swapped = pattern.chunks(2).filter(|s| s[0] && s[1]).count();
            assert!(swapped > 0, "no active triplet takes d(p, n)");
        }

        let mut g = (vec![f32::NAN; anchor.len()], vec![f32::NAN; anchor.len()], vec![f32::NAN; anchor.len()]);
        loss.compute(&anchor, &positive, &negative, width, Some((&mut g.0, &mut g.1, &mut g.2))).unwrap();
        let value = |a: &[f32], p: &[f32], n: &[f32]| loss.compute(a, p, n, width, None).unwrap() as f64;
        let what = format!("triplet, swap {swap}");
        let numeric =
            central_differences_f32(&anchor, H, |a| (value(a, &positive, &negative), sides(a, &positive, &negative)));
        assert_close_where(&format!("{what}: d/danchor"), &g.0, &numeric, DIFFERENCES, 2);
        let numeric =
            central_differences_f32(&positive, H, |p| (value(&anchor, p, &negative), sides(&anchor, p, &negative)));
        assert_close_where(&format!("{what}: d/dpositive"), &g.1, &numeric, DIFFERENCES, 2);
        let numeric =
            central_differences_f32(&negative, H, |n| (value(&anchor, &positive, n), sides(&anchor, &positive, n)));
        assert_close_where(&format!("{what}: d/dnegative"), &g.2, &numeric, DIFFERENCES, 2);
    }
}

network! {
    /// A small smooth tower: 5 inputs to a 3-float embedding.
    pub struct Tower: [5] -> [3] {
        hidden: Dense { units: 7, activation: Tanh },
        embed: Dense { units: 3 },
    }
}

/// The Siamese step of the examples: one forward of the tower on both batches stacked,
/// the pair loss, both embedding gradients into the output gradient, one backward. The
/// parameter gradient must be that of `loss(tower(first), tower(second))` with the
/// weights shared, checked against central differences in `f64` of the parameters.
#[test]
fn shared_tower_gradient_is_the_sum_over_both_uses() {
    let mut rng = Rng::new(13);
    let batch = 6;
    let mut model = Model::<Tower>::new(5);
    let first = uniform(&mut rng, batch * 5, -1.0, 1.0);
    let second = uniform(&mut rng, batch * 5, -1.0, 1.0);
    let stacked: Vec<f32> = first.iter().chain(&second).copied().collect();
    let labels: Vec<f32> = (0..batch).map(|i| (i % 2) as f32).collect();
    let loss = ContrastiveLoss::new(2.0);

    let mut ws = Workspace::<Tower>::new();
    ws.zero_grads();
    let embeddings = model.forward_train(&mut ws, &stacked, &mut Rng::new(0)).to_vec();
    let (e1, e2) = embeddings.split_at(batch * 3);
    let (g1, g2) = ws.output_grad_mut().split_at_mut(batch * 3);
    loss.compute(e1, e2, &labels, 3, Some((g1, g2))).unwrap();
    model.backward(&mut ws, &stacked, None);
    let grads = ws.grads().to_vec();

    // Every dissimilar pair inside the margin: no hinge to cross.
    let (p1, p2) = (model.predict(&first).unwrap(), model.predict(&second).unwrap());
    for i in (1..batch).step_by(2) {
        let d = pairwise_distance(&p1[i * 3..i * 3 + 3], &p2[i * 3..i * 3 + 3], loss.eps);
        assert!(d < loss.margin - 0.1, "pair {i} at distance {d}");
    }
    let params = model.params().to_vec();
    let numeric = central_differences_f32(&params, H, |p| {
        model.params_mut().copy_from_slice(p);
        let value =
            loss.compute(&model.predict(&first).unwrap(), &model.predict(&second).unwrap(), &labels, 3, None).unwrap();
        (value as f64, Vec::new())
    });
    // Through two dense layers the third derivatives are larger than the losses' alone.
    assert_close_where("tower parameters", &grads, &numeric, Tolerance { abs: 2e-4, rel: 2e-3 }, 0);
    // One use alone gives a different gradient: both must be summed.
    model.params_mut().copy_from_slice(&params);
    let mut ws1 = Workspace::<Tower>::new();
    ws1.zero_grads();
    let e1 = model.forward_train(&mut ws1, &first, &mut Rng::new(0)).to_vec();
    let mut g1 = vec![0.0; e1.len()];
    let mut g2 = vec![0.0; e1.len()];
    loss.compute(&e1, &p2, &labels, 3, Some((&mut g1, &mut g2))).unwrap();
    ws1.output_grad_mut().copy_from_slice(&g1);
    model.backward(&mut ws1, &first, None);
    let differs = ws1.grads().iter().zip(&grads).filter(|(a, b)| (*a - *b).abs() > 1e-4).count();
    assert!(differs > grads.len() / 2, "only {differs} of {} gradients differ from one use alone", grads.len());
}

#[test]
fn degenerate_pairs_have_finite_values_and_gradients() {
    // Equal embeddings, plain distance 0: a similar pair costs 0, a dissimilar one
    // margin^2 / 2, and neither has a direction to move in.
    let a = [0.5, -1.0, 2.0];
    let loss = ContrastiveLoss::new(2.0).no_eps();
    for (label, expected) in [(1.0, 0.0), (0.0, 2.0)] {
        let mut g = ([f32::NAN; 3], [f32::NAN; 3]);
        let value = loss.compute(&a, &a, &[label], 3, Some((&mut g.0, &mut g.1))).unwrap();
        assert_eq!(value, expected, "label {label}");
        assert_eq!((g.0, g.1), ([0.0; 3], [0.0; 3]), "label {label}");
    }
    // A zero embedding: cosine 0 (PyTorch's 1e-12 keeps the norms positive).
    let mut g = ([f32::NAN; 3], [f32::NAN; 3]);
    let value = CosineEmbeddingLoss::new(0.0).compute(&[0.0; 3], &a, &[1.0], 3, Some((&mut g.0, &mut g.1))).unwrap();
    assert_eq!(value, 1.0);
    assert!(g.0.iter().chain(&g.1).all(|v| v.is_finite()));
    // Anchor, positive and negative equal: d = ||eps||, hinge = margin.
    let mut g = ([f32::NAN; 3], [f32::NAN; 3], [f32::NAN; 3]);
    let value = TripletMarginLoss::new(0.3).compute(&a, &a, &a, 3, Some((&mut g.0, &mut g.1, &mut g.2))).unwrap();
    assert!((value - 0.3).abs() < 1e-6, "{value}");
    assert!(g.0.iter().chain(&g.1).chain(&g.2).all(|v| v.is_finite()));
    // An empty batch is a loss of 0, as no pair contributes.
    assert_eq!(ContrastiveLoss::new(1.0).compute(&[], &[], &[], 3, None), Ok(0.0));
}

#[test]
fn bad_arguments_are_typed_errors() {
    let (a, b) = ([0.0f32; 6], [1.0f32; 6]);
    let contrastive = ContrastiveLoss::new(1.0);
    assert_eq!(contrastive.compute(&a, &b, &[1.0, 0.0], 0, None), Err(EmbeddingLossError::ZeroWidth));
    assert_eq!(
        contrastive.compute(&a, &b, &[1.0, 0.0], 4, None),
        Err(EmbeddingLossError::Length { what: "first", expected: 4, found: 6 })
    );
    assert_eq!(
        contrastive.compute(&a, &b[..3], &[1.0, 0.0], 3, None),
        Err(EmbeddingLossError::Length { what: "second", expected: 6, found: 3 })
    );
    assert_eq!(
        contrastive.compute(&a, &b, &[1.0], 3, None),
        Err(EmbeddingLossError::Length { what: "labels", expected: 2, found: 1 })
    );
    let (mut g1, mut g2) = ([0.0; 6], [0.0; 5]);
    assert_eq!(
        contrastive.compute(&a, &b, &[1.0, 0.0], 3, Some((&mut g1, &mut g2))),
        Err(EmbeddingLossError::Length { what: "grad second", expected: 6, found: 5 })
    );
    assert_eq!(
        contrastive.compute(&a, &b, &[1.0, -1.0], 3, None),
        Err(EmbeddingLossError::Label { index: 1, label: -1.0 })
    );
    assert_eq!(
        CosineEmbeddingLoss::new(0.0).compute(&a, &b, &[0.0, 1.0], 3, None),
        Err(EmbeddingLossError::Label { index: 0, label: 0.0 })
    );
    assert_eq!(
        CosineEmbeddingLoss::new(0.0).compute(&a, &b, &[1.0, f32::NAN], 3, None).map_err(|e| e.to_string()),
        Err("pair 1 has label NaN, which this loss does not accept".to_owned())
    );
    let triplet = TripletMarginLoss::new(1.0);
    assert_eq!(
        triplet.compute(&a, &b, &b[..5], 3, None),
        Err(EmbeddingLossError::Length { what: "negative", expected: 6, found: 5 })
    );
    let mut g = ([0.0; 6], [0.0; 6], [0.0; 3]);
    assert_eq!(
        triplet.compute(&a, &b, &b, 3, Some((&mut g.0, &mut g.1, &mut g.2))),
        Err(EmbeddingLossError::Length { what: "grad negative", expected: 6, found: 3 })
    );
    assert_eq!(
        EmbeddingLossError::Length { what: "anchor", expected: 4, found: 6 }.to_string(),
        "`anchor` has 6 floats, expected 4"
    );
}
