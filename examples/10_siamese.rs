//! # 10. A Siamese network tells whether two digits are the same
//!
//! A Siamese network is one tower (here an MLP from the 64 pixels of an 8x8 digit to
//! a 16-float embedding) applied with the same weights to two inputs; it learns a
//! distance: images of one digit close together, images of different digits far
//! apart. It needs no class to answer "same or different?", and one labelled image per
//! class is enough to classify (one-shot classification). This example teaches:
//!
//! - shared weights through the step API: the first and the second items of a batch
//!   of pairs are stacked into one batch, the tower runs once on it, the pair loss
//!   gives a gradient for each half, and one `backward` adds both uses' contributions
//!   into the parameter gradient (three thirds for triplets);
//! - `ContrastiveLoss` (pairs labelled same/different: similar pairs pulled together,
//!   different ones pushed beyond a margin) and `TripletMarginLoss` (an anchor nearer
//!   to a positive of its class than to a negative of another, by a margin);
//! - verification on pairs of held-out images: the accuracy of "same" for a distance
//!   below a threshold chosen on training pairs, and the ROC AUC (computed exactly,
//!   by ranking), which needs no threshold;
//! - one-shot classification: each held-out image takes the class of the nearest of
//!   ten reference images, one per digit, drawn from the training images;
//! - the same tower in a two-input model trained by `Fit`, as Keras's functional API
//!   builds a siamese classifier: `subtract` and `Abs` give the distance `|ea - eb|` of
//!   the two embeddings, a dense sigmoid head the probability of "same digit", and
//!   binary cross-entropy trains it from a `Dataset::multi` of image pairs; it
//!   answers with `predict_multi((&a, &b))`.
//!
//! The raw-pixel Euclidean distance is the baseline. Over the seeds 1 to 3 both losses
//! reach a test ROC AUC of 0.989 to 0.997 (pixels: 0.86 to 0.88), a verification
//! accuracy of 0.947 to 0.965 (pixels: 0.80) and the triplet tower a one-shot accuracy
//! of 0.948 to 0.954 (pixels: 0.65; chance: 0.1), training in about 2 s. The siamese
//! classifier, 12 epochs of 8000 pairs (as many pairs as a tower's steps), reaches a
//! ROC AUC of 0.975 to 0.984, a verification accuracy (probability above 0.5) of
//! 0.922 to 0.942 and a one-shot accuracy of 0.860 to 0.896, training in about 0.5 s.
//!
//! Run it with `cargo run --release --example 10_siamese` (add `-- 2` for seed 2).
use nn_core::data;
use nn_core::loss::embedding::pairwise_distance;
use nn_core::model::BatchLenError;
use nn_core::multi::InputsError;
use nn_core::prelude::*;
use nn_examples::{data_file, timed, JsonObject};

network! {
    /// 64 pixels to a 16-float embedding; the one tower every input goes through.
    pub struct Tower: [64] -> [16] {
        hidden: Dense { units: 128, activation: Relu },
        embed: Dense { units: 16 },
    }
}

network! {
    /// The Keras-style siamese classifier: the same tower on both images, the
    /// element-wise distance `|ea - eb|` of their embeddings, and a dense sigmoid head
    /// giving the probability that the two images show the same digit.
    pub struct Siamese: ([64], [64]) -> [1] graph {
        input a, b;
        ea = tower(a): Tower;
        eb = tower(b);
        d = subtract(ea, eb);
        distance = abs(d): Abs;
        same = head(distance): Dense { units: 1, activation: Sigmoid };
        output same;
    }
}

/// The seed of the split, the initial weights and the pairs.
pub const SEED: u64 = 1;
/// Optimizer steps of each training run.
pub const STEPS: usize = 1500;
/// Pairs (or triplets) per step.
const BATCH: usize = 64;
/// Same-digit pairs (and as many different-digit pairs) the classifier trains on;
/// its epochs see as many pairs as the towers' steps.
const CLASSIFIER_PAIRS: usize = 4000;
/// The contrastive margin: different digits are pushed this far apart.
const CONTRASTIVE_MARGIN: f32 = 1.0;
/// The triplet margin.
const TRIPLET_MARGIN: f32 = 1.0;
/// Same-class and different-class pairs each, for the threshold and for the test.
const EVALUATION_PAIRS: usize = 2000;
/// Draws of the ten reference images for one-shot classification (the mean is
/// reported: one draw depends much on how typical its references are).
const ONE_SHOT_DRAWS: usize = 20;
const CLASSES: usize = 10;
const PIXELS: usize = 64;
const EMBEDDING: usize = 16;

/// Verification scores on pairs of held-out images.
#[derive(Clone, Copy, Debug)]
pub struct Verification {
    /// Accuracy of "same digit" for a distance below the threshold chosen on training
    /// pairs (half the test pairs are of the same digit).
    pub accuracy: f64,
    /// The area under the ROC curve of the distance as a "different" score.
    pub roc_auc: f64,
}

/// What the example measured.
#[derive(Clone, Debug)]
pub struct Report {
    /// The tower trained with the contrastive loss.
    pub contrastive: Verification,
    /// The tower trained with the triplet loss.
    pub triplet: Verification,
    /// The siamese classifier trained by `Fit` (its score: the probability of
    /// "different", one minus its output).
    pub classifier: Verification,
    /// The raw pixels' Euclidean distance.
    pub pixels: Verification,
    /// One-shot accuracy with the triplet tower's embeddings.
    pub one_shot_accuracy: f64,
    /// One-shot accuracy with the contrastive tower's embeddings.
    pub one_shot_contrastive: f64,
    /// One-shot accuracy on raw pixels.
    pub one_shot_pixels: f64,
    /// One-shot accuracy of the classifier: each image takes the class of the
    /// reference it finds most likely the same digit.
    pub one_shot_classifier: f64,
    /// Seconds of training, both towers.
    pub train_seconds: f64,
    /// Seconds of training the classifier.
    pub classifier_seconds: f64,
}

/// Image indices of each class.
fn by_class(set: &Dataset) -> Vec<Vec<usize>> {
    let mut classes = vec![Vec::new(); CLASSES];
    for i in 0..set.len() {
        classes[set.target(i)[0] as usize].push(i);
    }
    classes
}

/// A random image of `class` other than `not`.
fn other_of(rng: &mut Rng, members: &[usize], not: usize) -> usize {
    loop {
        let j = members[rng.below(members.len())];
        if j != not {
            return j;
        }
    }
}

/// A random class other than `class`.
fn other_class(rng: &mut Rng, class: usize) -> usize {
    (class + 1 + rng.below(CLASSES - 1)) % CLASSES
}

/// `count` same-class pairs then `count` different-class pairs of `set`'s images,
/// with their labels (1 same, 0 different).
fn balanced_pairs(set: &Dataset, rng: &mut Rng, count: usize) -> Vec<(usize, usize, f32)> {
    let classes = by_class(set);
    let mut pairs = Vec::with_capacity(2 * count);
    for same in [true, false] {
        for _ in 0..count {
            let i = rng.below(set.len());
            let class = set.target(i)[0] as usize;
            let j = if same {
                other_of(rng, &classes[class], i)
            } else {
                let other = &classes[other_class(rng, class)];
                other[rng.below(other.len())]
            };
            pairs.push((i, j, same as u8 as f32));
        }
    }
    pairs
}

/// Copies the images `indices` of `set` one after the other into `out`.
fn gather(set: &Dataset, indices: impl Iterator<Item = usize>, out: &mut Vec<f32>) {
    for i in indices {
        out.extend_from_slice(set.input(i));
    }
}

/// Trains a tower with the contrastive loss on random balanced batches of pairs.
fn train_contrastive(train: &Dataset, seed: u64, steps: usize) -> Model<Tower> {
    let mut model = Model::<Tower>::new(seed);
    let mut ws = Workspace::<Tower>::new();
    let mut opt = OptimizerState::new(Adam::new(1e-3));
    let (mut rng, mut forward_rng) = (Rng::new(seed ^ 0xC0), Rng::new(seed));
    let loss = ContrastiveLoss::new(CONTRASTIVE_MARGIN);
    let (mut x, mut labels, mut embeddings) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..steps {
        let pairs = balanced_pairs(train, &mut rng, BATCH / 2);
        // The first items, then the second items: one batch of 2 * BATCH images.
        x.clear();
        gather(train, pairs.iter().map(|p| p.0), &mut x);
        gather(train, pairs.iter().map(|p| p.1), &mut x);
        labels.clear();
        labels.extend(pairs.iter().map(|p| p.2));

        ws.zero_grads();
        embeddings.clear();
        embeddings.extend_from_slice(model.forward_train(&mut ws, &x, &mut forward_rng));
        let (first, second) = embeddings.split_at(BATCH * EMBEDDING);
        let (grad_first, grad_second) = ws.output_grad_mut().split_at_mut(BATCH * EMBEDDING);
        loss.compute(first, second, &labels, EMBEDDING, Some((grad_first, grad_second)))
            .expect("pairs and labels of one batch");
        model.backward(&mut ws, &x, None);
        opt.step(model.params_mut(), ws.grads());
    }
    model
}

/// Trains a tower with the triplet loss on random triplets (anchor, another image of
/// its digit, an image of another digit).
fn train_triplet(train: &Dataset, seed: u64, steps: usize) -> Model<Tower> {
    let classes = by_class(train);
    let mut model = Model::<Tower>::new(seed);
    let mut ws = Workspace::<Tower>::new();
    let mut opt = OptimizerState::new(Adam::new(1e-3));
    let (mut rng, mut forward_rng) = (Rng::new(seed ^ 0x3E), Rng::new(seed));
    let loss = TripletMarginLoss::new(TRIPLET_MARGIN);
    let (mut x, mut triplets, mut embeddings) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..steps {
        triplets.clear();
        for _ in 0..BATCH {
            let anchor = rng.below(train.len());
            let class = train.target(anchor)[0] as usize;
            let positive = other_of(&mut rng, &classes[class], anchor);
            let negatives = &classes[other_class(&mut rng, class)];
            triplets.push([anchor, positive, negatives[rng.below(negatives.len())]]);
        }
        // Anchors, positives, negatives: one batch of 3 * BATCH images.
        x.clear();
        for k in 0..3 {
            gather(train, triplets.iter().map(|t| t[k]), &mut x);
        }

        ws.zero_grads();
        embeddings.clear();
        embeddings.extend_from_slice(model.forward_train(&mut ws, &x, &mut forward_rng));
        let (anchors, rest) = embeddings.split_at(BATCH * EMBEDDING);
        let (positives, negatives) = rest.split_at(BATCH * EMBEDDING);
        let (grad_anchors, rest) = ws.output_grad_mut().split_at_mut(BATCH * EMBEDDING);
        let (grad_positives, grad_negatives) = rest.split_at_mut(BATCH * EMBEDDING);
        loss.compute(anchors, positives, negatives, EMBEDDING, Some((grad_anchors, grad_positives, grad_negatives)))
            .expect("triplets of one batch");
        model.backward(&mut ws, &x, None);
        opt.step(model.params_mut(), ws.grads());
    }
    model
}

/// Trains the siamese classifier with `Fit`, as Keras would
/// (`model.fit([a, b], same)`): a fixed set of balanced pairs of training images,
/// shuffled every epoch, binary cross-entropy on the probability of "same".
fn train_classifier(train: &Dataset, seed: u64, steps: usize) -> Result<Model<Siamese>, Box<dyn std::error::Error>> {
    let mut rng = Rng::new(seed ^ 0x5A);
    let pairs = balanced_pairs(train, &mut rng, CLASSIFIER_PAIRS);
    let (mut first, mut second) = (Vec::new(), Vec::new());
    gather(train, pairs.iter().map(|p| p.0), &mut first);
    gather(train, pairs.iter().map(|p| p.1), &mut second);
    let same: Vec<f32> = pairs.iter().map(|p| p.2).collect();
    let data = Dataset::multi::<Siamese>((&first, &second), (&same,))?;
    let mut model = Model::<Siamese>::new(seed);
    let epochs = (steps * BATCH).div_ceil(pairs.len()).max(1);
    let mut fit = Fit::new(Adam::new(1e-3), BinaryCrossEntropy::new()).epochs(epochs).batch_size(BATCH).seed(seed);
    fit.run(&mut model, &data, None)?;
    Ok(model)
}

/// The probability of "same digit" of each pair of `set`'s images.
fn same_probability(
    model: &Model<Siamese>,
    set: &Dataset,
    pairs: &[(usize, usize, f32)],
) -> Result<Vec<f32>, InputsError> {
    let (mut first, mut second) = (Vec::new(), Vec::new());
    gather(set, pairs.iter().map(|p| p.0), &mut first);
    gather(set, pairs.iter().map(|p| p.1), &mut second);
    Ok(model.predict_multi((&first, &second))?.0)
}

/// Verification and one-shot accuracy of the classifier on the test pairs: "same"
/// above probability 0.5, and each test image of the one-shot draws classified as
/// the reference it finds most likely the same digit.
fn classifier_scores(
    model: &Model<Siamese>,
    (train, test): (&Dataset, &Dataset),
    test_pairs: &[(usize, usize, f32)],
    seed: u64,
) -> Result<(Verification, f64), InputsError> {
    let p = same_probability(model, test, test_pairs)?;
    let correct = p.iter().zip(test_pairs).filter(|&(&p, pair)| (p > 0.5) == (pair.2 == 1.0)).count();
    let different: Vec<bool> = test_pairs.iter().map(|pair| pair.2 == 0.0).collect();
    let score: Vec<f32> = p.iter().map(|p| 1.0 - p).collect();
    let verification =
        Verification { accuracy: correct as f64 / test_pairs.len() as f64, roc_auc: roc_auc(&score, &different) };

    let classes = by_class(train);
    let mut rng = Rng::new(seed ^ 0x1507);
    let mut hits = 0usize;
    let (mut images, mut references) = (Vec::new(), Vec::new());
    for _ in 0..ONE_SHOT_DRAWS {
        let refs: Vec<usize> = classes.iter().map(|members| members[rng.below(members.len())]).collect();
        images.clear();
        references.clear();
        for i in 0..test.len() {
            for &r in &refs {
                images.extend_from_slice(test.input(i));
                references.extend_from_slice(train.input(r));
            }
        }
        let (p,) = model.predict_multi((&images, &references))?;
        for (i, row) in p.chunks_exact(CLASSES).enumerate() {
            let best = (0..CLASSES).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap_or(0);
            hits += (best == test.target(i)[0] as usize) as usize;
        }
    }
    Ok((verification, hits as f64 / (ONE_SHOT_DRAWS * test.len()) as f64))
}

/// The distance of each pair, `vectors` holding one `width`-float vector per image.
fn distances(vectors: &[f32], width: usize, pairs: &[(usize, usize, f32)]) -> Vec<f32> {
    let row = |i: usize| &vectors[i * width..(i + 1) * width];
    pairs.iter().map(|&(i, j, _)| pairwise_distance(row(i), row(j), 0.0)).collect()
}

/// The threshold on the distance ("same" below it) with the best accuracy on the
/// given pairs: the midpoint between two consecutive sorted distances.
fn best_threshold(distances: &[f32], pairs: &[(usize, usize, f32)]) -> f32 {
    let mut order: Vec<usize> = (0..distances.len()).collect();
    order.sort_by(|&a, &b| distances[a].total_cmp(&distances[b]));
    // Correct answers with the threshold below every distance: every different pair.
    let mut correct = pairs.iter().filter(|p| p.2 == 0.0).count() as i64;
    let (mut best, mut threshold) = (correct, distances[order[0]] - 1.0);
    for (k, &i) in order.iter().enumerate() {
        // Moving the threshold past pair i makes it "same".
        correct += if pairs[i].2 == 1.0 { 1 } else { -1 };
        let next = order.get(k + 1).map_or(distances[i] + 1.0, |&n| distances[n]);
        if correct > best && next > distances[i] {
            best = correct;
            threshold = (distances[i] + next) / 2.0;
        }
    }
    threshold
}

/// The ROC AUC of `score` for the positives `positive[i]`: the probability that a
/// random positive scores above a random negative, ties counting half (the
/// Mann-Whitney statistic from the average ranks of the scores).
pub fn roc_auc(score: &[f32], positive: &[bool]) -> f64 {
    let mut order: Vec<usize> = (0..score.len()).collect();
    order.sort_by(|&a, &b| score[a].total_cmp(&score[b]));
    let mut rank_sum = 0.0f64;
    let mut start = 0;
    while start < order.len() {
        // A run of tied scores shares the average of its ranks (1-based).
        let mut end = start + 1;
        while end < order.len() && score[order[end]] == score[order[start]] {
            end += 1;
        }
        let rank = (start + end + 1) as f64 / 2.0;
        rank_sum += rank * order[start..end].iter().filter(|&&i| positive[i]).count() as f64;
        start = end;
    }
    let positives = positive.iter().filter(|&&p| p).count() as f64;
    let negatives = score.len() as f64 - positives;
    (rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives)
}

/// Verification with `vectors` of the training images (for the threshold) and of the
/// test images.
fn verify(
    (train, train_pairs): (&[f32], &[(usize, usize, f32)]),
    (test, test_pairs): (&[f32], &[(usize, usize, f32)]),
    width: usize,
) -> Verification {
    let threshold = best_threshold(&distances(train, width, train_pairs), train_pairs);
    let d = distances(test, width, test_pairs);
    let correct = d.iter().zip(test_pairs).filter(|&(&d, p)| (d < threshold) == (p.2 == 1.0)).count();
    // "Different" is the positive class of the distance.
    let different: Vec<bool> = test_pairs.iter().map(|p| p.2 == 0.0).collect();
    Verification { accuracy: correct as f64 / test_pairs.len() as f64, roc_auc: roc_auc(&d, &different) }
}

/// Mean one-shot accuracy over `draws` of one reference training image per class:
/// every test image takes the class of its nearest reference.
fn one_shot(train: (&Dataset, &[f32]), test: (&Dataset, &[f32]), width: usize, seed: u64) -> f64 {
    let (train, train_vectors) = train;
    let (test, test_vectors) = test;
    let classes = by_class(train);
    let mut rng = Rng::new(seed ^ 0x1507);
    let mut correct = 0usize;
    for _ in 0..ONE_SHOT_DRAWS {
        let references: Vec<&[f32]> = classes
            .iter()
            .map(|members| {
                let i = members[rng.below(members.len())];
                &train_vectors[i * width..(i + 1) * width]
            })
            .collect();
        for (i, v) in test_vectors.chunks_exact(width).enumerate() {
            let nearest = (0..CLASSES)
                .min_by(|&a, &b| {
                    pairwise_distance(v, references[a], 0.0).total_cmp(&pairwise_distance(v, references[b], 0.0))
                })
                .unwrap_or(0);
            correct += (nearest == test.target(i)[0] as usize) as usize;
        }
    }
    correct as f64 / (ONE_SHOT_DRAWS * test.len()) as f64
}

/// Loads the digits, trains a contrastive and a triplet tower for `steps` steps each
/// and evaluates both on pairs of held-out images.
pub fn run(seed: u64, steps: usize) -> Result<Report, Box<dyn std::error::Error>> {
    let mut digits = data::digits(data_file("digits.csv.gz"))?;
    digits.scale_inputs(1.0 / 16.0);
    let (train, test) = digits.split(0.2, seed);

    let ((contrastive, triplet), train_seconds) =
        timed(|| (train_contrastive(&train, seed, steps), train_triplet(&train, seed, steps)));

    let mut rng = Rng::new(seed ^ 0xE7A1);
    let train_pairs = balanced_pairs(&train, &mut rng, EVALUATION_PAIRS);
    let test_pairs = balanced_pairs(&test, &mut rng, EVALUATION_PAIRS);
    let evaluate = |width: usize, train_vectors: &[f32], test_vectors: &[f32]| {
        let verification = verify((train_vectors, &train_pairs), (test_vectors, &test_pairs), width);
        let accuracy = one_shot((&train, train_vectors), (&test, test_vectors), width, seed);
        (verification, accuracy)
    };
    let (pixels, one_shot_pixels) = evaluate(PIXELS, train.inputs(), test.inputs());
    let embed = |model: &Model<Tower>| -> Result<_, BatchLenError> {
        Ok(evaluate(EMBEDDING, &model.predict(train.inputs())?, &model.predict(test.inputs())?))
    };
    let (contrastive, one_shot_contrastive) = embed(&contrastive)?;
    let (triplet, one_shot_accuracy) = embed(&triplet)?;
    let (classifier, classifier_seconds) = timed(|| train_classifier(&train, seed, steps));
    let (classifier, one_shot_classifier) = classifier_scores(&classifier?, (&train, &test), &test_pairs, seed)?;
    Ok(Report {
        contrastive,
        triplet,
        classifier,
        pixels,
        one_shot_accuracy,
        one_shot_contrastive,
        one_shot_pixels,
        one_shot_classifier,
        train_seconds,
        classifier_seconds,
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("{}\n", Model::<Tower>::zeros().summary());
    println!("{}\n", Model::<Siamese>::zeros().summary());
    // An optional first argument replaces the seed: `-- 2`.
    let seed = match std::env::args().nth(1) {
        Some(text) => text.parse().map_err(|e| format!("seed `{text}`: {e}"))?,
        None => SEED,
    };
    let report = run(seed, STEPS)?;
    println!("{STEPS} steps of {BATCH} pairs or triplets per tower, {:.2} s", report.train_seconds);
    println!("siamese classifier: Fit on {} pairs, {:.2} s", 2 * CLASSIFIER_PAIRS, report.classifier_seconds);
    println!("test pairs ({EVALUATION_PAIRS} same digit, {EVALUATION_PAIRS} different), held-out images:");
    for (name, v) in [
        ("contrastive", report.contrastive),
        ("triplet", report.triplet),
        ("classifier", report.classifier),
        ("raw pixels", report.pixels),
    ] {
        println!("  {name:<12} verification accuracy {:.4}, ROC AUC {:.4}", v.accuracy, v.roc_auc);
    }
    println!(
        "one-shot accuracy (one reference image per digit, mean of {ONE_SHOT_DRAWS} draws): triplet {:.4}, \
         contrastive {:.4}, classifier {:.4}, raw pixels {:.4}",
        report.one_shot_accuracy, report.one_shot_contrastive, report.one_shot_classifier, report.one_shot_pixels
    );

    let scores =
        |v: Verification| JsonObject::new().number("verification_accuracy", v.accuracy).number("roc_auc", v.roc_auc);
    let line = JsonObject::new()
        .string("example", "10_siamese")
        .object("contrastive", scores(report.contrastive))
        .object("triplet", scores(report.triplet))
        .number("one_shot_accuracy", report.one_shot_accuracy)
        .object("classifier", scores(report.classifier).number("one_shot_accuracy", report.one_shot_classifier))
        .object("pixels", scores(report.pixels).number("one_shot_accuracy", report.one_shot_pixels))
        .number("train_seconds", report.train_seconds)
        .number("classifier_seconds", report.classifier_seconds);
    println!("{line}");
    Ok(())
}
