//! # 12. A CycleGAN learns a translation it never sees in pairs
//!
//! Two image domains: X, the 8x8 digits as they are, and Y, other digits mirrored
//! left-right with their intensities inverted (white ink becomes black on a white
//! background). No image of X is ever shown with its counterpart in Y: the sets are
//! disjoint and shuffled separately. A CycleGAN still finds the translation. This
//! example teaches:
//!
//! - two generators (`G: X -> Y`, `F: Y -> X`, convolutional encoder-decoders) and two
//!   discriminators, each pair trained adversarially with the least-squares loss
//!   (`GanLoss::least_squares()`);
//! - the cycle-consistency loss `|F(G(x)) - x| + |G(F(y)) - y|` (L1, weight 10), which
//!   rules out translations that lose the content of the image, and the identity loss
//!   `|G(y) - y| + |F(x) - x|`;
//! - the four networks in one custom training step inside `fit`'s loop (Keras's
//!   overridden `train_step`): `CycleGan` implements `TrainStep`, each network is a
//!   `Learner` with its own optimizer, and `CustomFit` runs the epochs over shuffled
//!   batches of domain X while the step draws its batches of Y from its own shuffled
//!   order;
//! - gradients from several losses meeting in one tensor: `G(x)` receives the gradient
//!   of the adversarial loss through `D_Y` (`input_grad`, `D_Y` frozen) and of the
//!   cycle loss through `F` (`backward_with_input_grad`, `F` learning too), added in
//!   `G`'s output gradient; a generator used three times in a step accumulates its
//!   parameter gradients over the three backward passes.
//!
//! On held-out digits the report compares the translation `G(x)` with the true
//! transformation of `x` (which training never uses), next to the error of leaving `x`
//! unchanged. It writes `target/12_cyclegan_translations.png`: held-out digits, their
//! translations, the true transformations and the reconstructions `F(G(x))`, one row
//! each. Run it with `cargo run --release --example 12_cyclegan`.
use std::path::{Path, PathBuf};

use nn_core::data;
use nn_core::prelude::*;
use nn_core::report::ImageGrid;
use nn_core::train::{Batch, CustomFit, EpochLog, History, Learner, StepCtx, TrainError, TrainStep};
use nn_examples::{data_file, timed, JsonObject};

network! {
    /// An image to an image of the other domain: down to `[64, 2, 2]` and back up.
    pub struct Translator: [1, 8, 8] -> [1, 8, 8] {
        down1: Conv2d { filters: 32, kernel: 4, stride: 2, padding: 1 } => [32, 4, 4],
        act1: Relu,
        down2: Conv2d { filters: 64, kernel: 4, stride: 2, padding: 1 } => [64, 2, 2],
        act2: Relu,
        up1: ConvTranspose2d { filters: 32, kernel: 4, stride: 2, padding: 1 } => [32, 4, 4],
        act3: Relu,
        up2: ConvTranspose2d { filters: 1, kernel: 4, stride: 2, padding: 1 } => [1, 8, 8],
        pixels: Tanh,
    }
}

network! {
    /// An image to one score, high for images of its domain.
    pub struct Critic: [1, 8, 8] -> [1] {
        conv1: Conv2d { filters: 32, kernel: 4, stride: 2, padding: 1 } => [32, 4, 4],
        act1: LeakyRelu { alpha: 0.2 },
        conv2: Conv2d { filters: 64, kernel: 4, stride: 2, padding: 1 } => [64, 2, 2],
        act2: LeakyRelu { alpha: 0.2 },
        flat: Flatten,
        score: Dense { units: 1 },
    }
}

/// Epochs of the full run.
pub const EPOCHS: usize = 30;
/// The seed of the full run.
pub const SEED: u64 = 1;
/// Images per step.
const BATCH: usize = 32;
/// Weight of the cycle-consistency loss.
const CYCLE_WEIGHT: f32 = 10.0;
/// Weight of the identity loss.
const IDENTITY_WEIGHT: f32 = 1.0;
/// Pixels per image.
const PIXELS: usize = 64;

/// What a run measured on the held-out digits (mean absolute pixel errors, pixels in
/// `[-1, 1]`).
pub struct Report {
    /// `|F(G(x)) - x|`.
    pub cycle_error: f32,
    /// `|G(x) - T(x)|`, `T` the true transformation.
    pub translation_error: f32,
    /// `|x - T(x)|`: leaving the image unchanged.
    pub identity_error: f32,
    /// Mean generator and discriminator losses of every epoch.
    pub losses: Vec<(f32, f32)>,
    /// Held-out images.
    pub test_images: usize,
    /// Training seconds.
    pub seconds: f64,
}

/// The transformation from X to Y: mirrored left-right, intensity inverted.
pub fn transform(image: &[f32], out: &mut [f32]) {
    for (row_in, row_out) in image.chunks_exact(8).zip(out.chunks_exact_mut(8)) {
        for (j, v) in row_out.iter_mut().enumerate() {
            *v = -row_in[7 - j];
        }
    }
}

/// Mean absolute difference.
fn mean_abs(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.len() as f32
}

/// Copies the images `indices` of `from` into `batch`.
fn gather(from: &[f32], indices: &[usize], batch: &mut [f32]) {
    for (slot, &i) in batch.chunks_exact_mut(PIXELS).zip(indices) {
        slot.copy_from_slice(&from[i * PIXELS..(i + 1) * PIXELS]);
    }
}

/// A generator or a discriminator, with its optimizer.
type Net<L> = Learner<L, Adam>;

/// A discriminator step: `real` towards 1, `fake` towards 0, with the least-squares
/// loss halved as in CycleGAN. Returns the loss.
fn critic_step(d: &mut Net<Critic>, real: &[f32], fake: &[f32], labels: &Labels, rng: &mut Rng) -> f32 {
    d.zero_grads();
    let mut total = 0.0;
    let m = real.len() / PIXELS;
    for (images, targets) in [(real, &labels.real[..m]), (fake, &labels.fake[..m])] {
        d.forward_train(images, rng);
        total += 0.5 * d.loss(&labels.loss, targets);
        d.output_grad_mut().iter_mut().for_each(|g| *g *= 0.5);
        d.backward(images);
    }
    d.step();
    total
}

/// One half of a generator step: `there = G(here)`, scored by `D_there` (the frozen
/// discriminator of the other domain), and `back = F(there)` compared with `here`.
/// Adds the parameter gradients of `g` and `f`; returns the adversarial and the cycle
/// loss.
fn cycle_half(
    g: &mut Net<Translator>,
    f: &mut Net<Translator>,
    d_there: &mut Net<Critic>,
    here: &[f32],
    labels: &Labels,
    rng: &mut Rng,
) -> (f32, f32) {
    g.forward_train(here, rng);
    // Cycle: F(G(x)) against x; F learns, and its gradient with respect to G(x) is
    // G's output gradient.
    f.forward_train(g.output(), rng);
    let cycle = f.loss(&MeanAbsoluteError, here);
    f.output_grad_mut().iter_mut().for_each(|d| *d *= CYCLE_WEIGHT);
    g.set_output_grad(f.backward_with_input_grad(g.output()));
    // Adversarial: D_Y(G(x)) towards "real", D_Y frozen; its input gradient is added
    // to the cycle's.
    d_there.forward_train(g.output(), rng);
    let adversarial = d_there.loss(&labels.loss, &labels.generator[..here.len() / PIXELS]);
    g.add_output_grad(d_there.input_grad(g.output()));
    g.backward(here);
    (adversarial, cycle)
}

/// The identity term of `g`: `G(y)` against `y` for an image `y` already in G's target
/// domain. Adds the parameter gradients; returns the loss.
fn identity(g: &mut Net<Translator>, target_domain: &[f32], rng: &mut Rng) -> f32 {
    g.forward_train(target_domain, rng);
    let value = g.loss(&MeanAbsoluteError, target_domain);
    g.output_grad_mut().iter_mut().for_each(|d| *d *= IDENTITY_WEIGHT);
    g.backward(target_domain);
    value
}

/// The adversarial loss and its targets, one per image of a batch.
struct Labels {
    loss: GanLoss,
    real: Vec<f32>,
    fake: Vec<f32>,
    generator: Vec<f32>,
}

/// The CycleGAN as one training step over batches of domain X: the batch of Y comes
/// from the step's own shuffled order of domain Y, unpaired with X.
pub struct CycleGan {
    /// `G: X -> Y`.
    pub g_xy: Net<Translator>,
    /// `F: Y -> X`.
    pub g_yx: Net<Translator>,
    d_x: Net<Critic>,
    d_y: Net<Critic>,
    labels: Labels,
    domain_y: Vec<f32>,
    order_y: Vec<usize>,
    y: Vec<f32>,
    fake_x: Vec<f32>,
    fake_y: Vec<f32>,
}

impl CycleGan {
    /// The four networks from `seed` to `seed + 3`, all trained by Adam with
    /// `beta1 = 0.5`, against the images of `domain_y`.
    pub fn new(seed: u64, domain_y: Vec<f32>) -> Self {
        let adam = Adam { beta1: 0.5, ..Adam::new(1e-3) };
        let loss = GanLoss::least_squares();
        CycleGan {
            g_xy: Learner::new(Model::new(seed), adam),
            g_yx: Learner::new(Model::new(seed + 1), adam),
            d_x: Learner::new(Model::new(seed + 2), adam),
            d_y: Learner::new(Model::new(seed + 3), adam),
            labels: Labels {
                loss,
                real: vec![loss.real_label(); BATCH],
                fake: vec![GanLoss::FAKE_LABEL; BATCH],
                generator: vec![GanLoss::GENERATOR_LABEL; BATCH],
            },
            order_y: (0..domain_y.len() / PIXELS).collect(),
            domain_y,
            y: vec![0.0; BATCH * PIXELS],
            fake_x: vec![0.0; BATCH * PIXELS],
            fake_y: vec![0.0; BATCH * PIXELS],
        }
    }
}

impl TrainStep for CycleGan {
    fn names(&self) -> &[&'static str] {
        &["g_loss", "d_loss", "cycle_loss"]
    }

    fn train_step(&mut self, cx: &mut StepCtx<'_>, batch: Batch<'_>, values: &mut [f32]) -> Result<(), TrainError> {
        let CycleGan { g_xy, g_yx, d_x, d_y, labels, domain_y, order_y, y, fake_x, fake_y } = self;
        let (x, m) = (batch.inputs, batch.samples);
        // Domain Y in its own order, shuffled at the start of every epoch (it has at
        // least as many images as X).
        if cx.batch() == 1 {
            cx.rng().shuffle(order_y);
        }
        let iy = &order_y[(cx.batch() - 1) * BATCH..][..m];
        let (y, fake_x, fake_y) = (&mut y[..m * PIXELS], &mut fake_x[..m * PIXELS], &mut fake_y[..m * PIXELS]);
        gather(domain_y, iy, y);

        // Generator step, both discriminators frozen.
        g_xy.zero_grads();
        g_yx.zero_grads();
        let id = identity(g_xy, y, cx.rng()) + identity(g_yx, x, cx.rng());
        let (adv_y, cycle_x) = cycle_half(g_xy, g_yx, d_y, x, labels, cx.rng());
        fake_y.copy_from_slice(g_xy.output());
        let (adv_x, cycle_y) = cycle_half(g_yx, g_xy, d_x, y, labels, cx.rng());
        fake_x.copy_from_slice(g_yx.output());
        g_xy.step();
        g_yx.step();

        // Discriminator steps on this step's translations.
        let d_loss = critic_step(d_x, x, fake_x, labels, cx.rng()) + critic_step(d_y, y, fake_y, labels, cx.rng());

        let g_loss = adv_x + adv_y + CYCLE_WEIGHT * (cycle_x + cycle_y) + IDENTITY_WEIGHT * id;
        values.copy_from_slice(&[g_loss, d_loss, cycle_x + cycle_y]);
        Ok(())
    }

    fn visit_state(&mut self, f: &mut dyn FnMut(&mut [f32])) {
        for g in [&mut self.g_xy, &mut self.g_yx] {
            f(g.model.state_mut());
        }
        for d in [&mut self.d_x, &mut self.d_y] {
            f(d.model.state_mut());
        }
    }
}

/// Trains the CycleGAN for `epochs` epochs from `seed` and measures it on held-out
/// digits; writes the translations picture to `picture` if given.
pub fn run(
    epochs: usize,
    seed: u64,
    picture: Option<&Path>,
    verbose: bool,
) -> Result<Report, Box<dyn std::error::Error>> {
    let mut digits = data::digits(data_file("digits.csv.gz"))?;
    digits.inputs_mut().iter_mut().for_each(|v| *v = *v / 8.0 - 1.0);
    let (train, test) = digits.split(0.2, seed);
    // Unpaired domains: the first half of the training digits as X, the other half
    // transformed as Y.
    let half = train.len() / 2;
    let mut domain_y = vec![0.0; (train.len() - half) * PIXELS];
    for (image, out) in train.inputs()[half * PIXELS..].chunks_exact(PIXELS).zip(domain_y.chunks_exact_mut(PIXELS)) {
        transform(image, out);
    }

    let domain_x = train.select(&(0..half).collect::<Vec<_>>());
    let mut gan = CycleGan::new(seed, domain_y);
    // Epochs of shuffled batches of X, the last smaller batch skipped; the loop's
    // random source shuffles X, then the step shuffles Y.
    let mut fit = CustomFit::new().epochs(epochs).batch_size(BATCH).drop_last(true).seed(seed + 4);
    let mut history = History::default();
    let (trained, seconds) = timed(|| {
        let on_epoch = |_: &mut CycleGan, log: &EpochLog| {
            if verbose {
                let [(_, g), (_, d), (_, cycle)] = log.metrics[..] else { return true };
                println!("epoch {:3}: generator loss {g:.4} (cycle {cycle:.4}), discriminator loss {d:.4}", log.epoch);
            }
            true
        };
        fit.run_with(&mut gan, &domain_x, None, on_epoch, &mut history)
    });
    trained?;
    let losses = history.series("g_loss").into_iter().zip(history.series("d_loss")).collect();

    // Held-out digits: translation against the true transformation.
    let test_x = test.inputs();
    let mut truth = vec![0.0; test_x.len()];
    for (image, out) in test_x.chunks_exact(PIXELS).zip(truth.chunks_exact_mut(PIXELS)) {
        transform(image, out);
    }
    let translated = gan.g_xy.predict(test_x)?;
    let reconstructed = gan.g_yx.predict(&translated)?;
    let report = Report {
        cycle_error: mean_abs(&reconstructed, test_x),
        translation_error: mean_abs(&translated, &truth),
        identity_error: mean_abs(test_x, &truth),
        losses,
        test_images: test.len(),
        seconds,
    };
    if let Some(path) = picture {
        let shown = 10 * PIXELS;
        let rows = [&test_x[..shown], &translated[..shown], &truth[..shown], &reconstructed[..shown]];
        ImageGrid::new(8, 8).range(-1.0, 1.0).write_rows(path, &rows)?;
    }
    Ok(report)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seed = std::env::args().nth(1).map_or(Ok(SEED), |s| s.parse())?;
    println!("{}\n\n{}\n", Model::<Translator>::zeros().summary(), Model::<Critic>::zeros().summary());
    let picture: PathBuf = [env!("CARGO_MANIFEST_DIR"), "target", "12_cyclegan_translations.png"].iter().collect();
    let report = run(EPOCHS, seed, Some(&picture), true)?;
    println!("held-out digits: {}; wrote {}", report.test_images, picture.display());
    let line = JsonObject::new()
        .string("example", "12_cyclegan")
        .number("cycle_error", report.cycle_error.into())
        .number("translation_error", report.translation_error.into())
        .number("identity_error", report.identity_error.into())
        .number("train_seconds", report.seconds);
    println!("{line}");
    Ok(())
}
