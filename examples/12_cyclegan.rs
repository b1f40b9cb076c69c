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
//! - gradients from several losses meeting in one tensor: `G(x)` receives the gradient
//!   of the adversarial loss through `D_Y` and of the cycle loss through `F`, added in
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
use nn_core::layer::Frozen;
use nn_core::prelude::*;
use nn_core::report::ImageGrid;
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

/// One generator with its workspace and optimizer.
struct Generator {
    model: Model<Translator>,
    ws: Workspace<Translator>,
    opt: OptimizerState<Adam>,
}

/// One discriminator with its workspace and optimizer, and room for the gradient of
/// its loss with respect to its input (a batch of images) in generator steps.
struct Discriminator {
    model: Model<Critic>,
    ws: Workspace<Critic>,
    opt: OptimizerState<Adam>,
    input_grad: Vec<f32>,
}

/// Every parameter of a discriminator: frozen in generator steps, where only its
/// input gradient is wanted.
const CRITIC_FROZEN: std::ops::Range<usize> = 0..<Critic as Layer>::PARAMS;

impl Discriminator {
    /// A discriminator step: `real` towards 1, `fake` towards 0, with the
    /// least-squares loss halved as in CycleGAN. Returns the loss.
    fn step(&mut self, real: &[f32], fake: &[f32], loss: &GanLoss, labels: (&[f32], &[f32]), rng: &mut Rng) -> f32 {
        let d = &mut self.model;
        self.ws.zero_grads();
        let mut total = 0.0;
        for (images, labels) in [(real, labels.0), (fake, labels.1)] {
            d.forward_train(&mut self.ws, images, rng);
            total += 0.5 * self.ws.loss(loss, labels);
            self.ws.output_grad_mut().iter_mut().for_each(|g| *g *= 0.5);
            d.backward(&mut self.ws, images, None);
        }
        self.opt.step(d.params_mut(), self.ws.grads());
        total
    }
}

/// One half of a generator step: `there = G(here)`, scored by `D_there` (the frozen
/// discriminator of the other domain), and `back = F(there)` compared with `here`.
/// Adds the parameter gradients of `g` and `f`; returns the adversarial and the cycle
/// loss.
fn cycle_half(
    g: &mut Generator,
    f: &mut Generator,
    d_there: &mut Discriminator,
    here: &[f32],
    loss: &GanLoss,
    generator_labels: &[f32],
    rng: &mut Rng,
) -> (f32, f32) {
    g.model.forward_train(&mut g.ws, here, rng);
    // Cycle: F(G(x)) against x; the gradient with respect to G(x) goes into G's output
    // gradient.
    f.model.forward_train(&mut f.ws, g.ws.output(), rng);
    let cycle = f.ws.loss(&MeanAbsoluteError, here);
    f.ws.output_grad_mut().iter_mut().for_each(|d| *d *= CYCLE_WEIGHT);
    let (there, there_grad) = g.ws.output_and_grad_mut();
    f.model.backward(&mut f.ws, there, Some(there_grad));
    // Adversarial: D_Y(G(x)) towards "real"; its input gradient is added to the cycle's.
    d_there.model.forward_train(&mut d_there.ws, g.ws.output(), rng);
    let adversarial = d_there.ws.loss(loss, generator_labels);
    let adversarial_grad = &mut d_there.input_grad[..here.len()];
    let frozen = Frozen::new(std::slice::from_ref(&CRITIC_FROZEN));
    d_there.model.backward_frozen(&mut d_there.ws, g.ws.output(), Some(adversarial_grad), frozen);
    for (total, a) in g.ws.output_grad_mut().iter_mut().zip(&d_there.input_grad) {
        *total += a;
    }
    g.model.backward(&mut g.ws, here, None);
    (adversarial, cycle)
}

/// The identity term of `g`: `G(y)` against `y` for an image `y` already in G's target
/// domain. Adds the parameter gradients; returns the loss.
fn identity(g: &mut Generator, target_domain: &[f32], rng: &mut Rng) -> f32 {
    g.model.forward_train(&mut g.ws, target_domain, rng);
    let value = g.ws.loss(&MeanAbsoluteError, target_domain);
    g.ws.output_grad_mut().iter_mut().for_each(|d| *d *= IDENTITY_WEIGHT);
    g.model.backward(&mut g.ws, target_domain, None);
    value
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
    let domain_x = &train.inputs()[..half * PIXELS];
    let mut domain_y = vec![0.0; (train.len() - half) * PIXELS];
    for (image, out) in train.inputs()[half * PIXELS..].chunks_exact(PIXELS).zip(domain_y.chunks_exact_mut(PIXELS)) {
        transform(image, out);
    }

    let adam = Adam { beta1: 0.5, ..Adam::new(1e-3) };
    let generator = |s| Generator { model: Model::new(s), ws: Workspace::new(), opt: OptimizerState::new(adam) };
    let discriminator = |s| Discriminator {
        model: Model::new(s),
        ws: Workspace::new(),
        opt: OptimizerState::new(adam),
        input_grad: vec![0.0; BATCH * PIXELS],
    };
    let (mut g_xy, mut g_yx) = (generator(seed), generator(seed + 1));
    let (mut d_x, mut d_y) = (discriminator(seed + 2), discriminator(seed + 3));
    let loss = GanLoss::least_squares();
    let real_labels = vec![loss.real_label(); BATCH];
    let fake_labels = vec![GanLoss::FAKE_LABEL; BATCH];
    let generator_labels = vec![GanLoss::GENERATOR_LABEL; BATCH];

    let mut rng = Rng::new(seed + 4);
    let mut order_x: Vec<usize> = (0..domain_x.len() / PIXELS).collect();
    let mut order_y: Vec<usize> = (0..domain_y.len() / PIXELS).collect();
    let (mut x, mut y) = (vec![0.0; BATCH * PIXELS], vec![0.0; BATCH * PIXELS]);
    let (mut fake_x, mut fake_y) = (vec![0.0; BATCH * PIXELS], vec![0.0; BATCH * PIXELS]);
    let mut losses = Vec::with_capacity(epochs);
    let ((), seconds) = timed(|| {
        for epoch in 1..=epochs {
            rng.shuffle(&mut order_x);
            rng.shuffle(&mut order_y);
            let (mut g_sum, mut d_sum, mut cycle_sum, mut steps) = (0.0, 0.0, 0.0, 0);
            for (ix, iy) in order_x.chunks_exact(BATCH).zip(order_y.chunks_exact(BATCH)) {
                gather(domain_x, ix, &mut x);
                gather(&domain_y, iy, &mut y);

                // Generator step, both discriminators frozen.
                g_xy.ws.zero_grads();
                g_yx.ws.zero_grads();
                let id = identity(&mut g_xy, &y, &mut rng) + identity(&mut g_yx, &x, &mut rng);
                let (adv_y, cycle_x) =
                    cycle_half(&mut g_xy, &mut g_yx, &mut d_y, &x, &loss, &generator_labels, &mut rng);
                fake_y.copy_from_slice(g_xy.ws.output());
                let (adv_x, cycle_y) =
                    cycle_half(&mut g_yx, &mut g_xy, &mut d_x, &y, &loss, &generator_labels, &mut rng);
                fake_x.copy_from_slice(g_yx.ws.output());
                for g in [&mut g_xy, &mut g_yx] {
                    g.opt.step(g.model.params_mut(), g.ws.grads());
                }

                // Discriminator steps on this step's translations.
                let d_loss = d_x.step(&x, &fake_x, &loss, (&real_labels, &fake_labels), &mut rng)
                    + d_y.step(&y, &fake_y, &loss, (&real_labels, &fake_labels), &mut rng);

                g_sum += adv_x + adv_y + CYCLE_WEIGHT * (cycle_x + cycle_y) + IDENTITY_WEIGHT * id;
                d_sum += d_loss;
                cycle_sum += cycle_x + cycle_y;
                steps += 1;
            }
            let n = steps as f32;
            losses.push((g_sum / n, d_sum / n));
            if verbose {
                println!(
                    "epoch {epoch:3}: generator loss {:.4} (cycle {:.4}), discriminator loss {:.4}",
                    g_sum / n,
                    cycle_sum / n,
                    d_sum / n
                );
            }
        }
    });

    // Held-out digits: translation against the true transformation.
    let test_x = test.inputs();
    let mut truth = vec![0.0; test_x.len()];
    for (image, out) in test_x.chunks_exact(PIXELS).zip(truth.chunks_exact_mut(PIXELS)) {
        transform(image, out);
    }
    let translated = g_xy.model.predict(test_x)?;
    let reconstructed = g_yx.model.predict(&translated)?;
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
