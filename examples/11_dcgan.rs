//! # 11. A DCGAN draws handwritten digits
//!
//! A generative adversarial network is two networks trained against each other: a
//! generator turns random noise into images, a discriminator scores images as real or
//! generated. The discriminator learns to tell them apart; the generator learns, through
//! the discriminator's gradient, to make images it scores as real. This example
//! teaches:
//!
//! - a DCGAN generator: `Dense` from 32 noise values, `Reshape` into `[64, 2, 2]`
//!   feature maps, then `ConvTranspose2d { kernel: 4, stride: 2, padding: 1 }` doubling
//!   the size twice (with batch norm and ReLU between) to an `[1, 8, 8]` image, `Tanh`
//!   for pixels in `[-1, 1]`; a convolutional discriminator with leaky ReLU;
//! - a custom training step inside `fit`'s loop, as Keras's overridden `train_step`:
//!   `Gan` implements `TrainStep` and `CustomFit` runs its epochs of shuffled batches
//!   of real digits, with the history of both losses; each network is a `Learner`
//!   with its own optimizer; the step alternates a discriminator step and a generator
//!   step in which the generator learns through the frozen discriminator (the
//!   discriminator's `input_grad` becomes the generator's output gradient), with
//!   `GanLoss` on logits and one-sided label smoothing;
//! - judging samples: a digits classifier trained on real data labels every generated
//!   image; good samples are recognised with confidence, and all ten classes appear
//!   (a generator that collapsed to a few digits would fail the second test).
//!
//! It writes `target/11_dcgan_progress.png` (the same noise drawn every few epochs, one
//! row per snapshot) during training and `target/11_dcgan_samples.png` (100 samples)
//! at the end. Run it with `cargo run --release --example 11_dcgan`.
use std::path::{Path, PathBuf};

use nn_core::data;
use nn_core::prelude::*;
use nn_core::report::ImageGrid;
use nn_core::train::{Batch, CustomFit, EpochLog, History, Learner, Metric, StepCtx, TrainError, TrainStep};
use nn_examples::{data_file, timed, JsonObject};

/// Noise values per generated image.
pub const NOISE: usize = 32;

network! {
    /// Noise to an 8x8 image in `[-1, 1]`.
    pub struct Generator: [32] -> [1, 8, 8] {
        project: Dense { units: 256 },
        bn0: BatchNorm1d,
        relu0: Relu,
        maps: Reshape { shape: [64, 2, 2] },
        up1: ConvTranspose2d { filters: 32, kernel: 4, stride: 2, padding: 1 } => [32, 4, 4],
        bn1: BatchNorm2d,
        relu1: Relu,
        up2: ConvTranspose2d { filters: 1, kernel: 4, stride: 2, padding: 1 } => [1, 8, 8],
        pixels: Tanh,
    }
}

network! {
    /// An 8x8 image to one score: a logit, high for real.
    pub struct Discriminator: [1, 8, 8] -> [1] {
        conv1: Conv2d { filters: 32, kernel: 4, stride: 2, padding: 1 } => [32, 4, 4],
        act1: LeakyRelu { alpha: 0.2 },
        conv2: Conv2d { filters: 64, kernel: 4, stride: 2, padding: 1 } => [64, 2, 2],
        act2: LeakyRelu { alpha: 0.2 },
        flat: Flatten,
        score: Dense { units: 1 },
    }
}

network! {
    /// The judge: a small CNN trained on the real digits.
    pub struct Judge: [1, 8, 8] -> [10] {
        conv1: Conv2d { filters: 16, kernel: 3, padding: Same },
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

/// Epochs of the full run.
pub const EPOCHS: usize = 60;
/// The seed of the full run.
pub const SEED: u64 = 1;
/// Images per step.
const BATCH: usize = 64;
/// Generated images the judge labels.
const JUDGED: usize = 1000;
/// The confidence above which a judged image counts as recognised.
pub const CONFIDENCE: f32 = 0.9;

/// What a run measured.
pub struct Report {
    /// Mean discriminator and generator loss of every epoch.
    pub losses: Vec<(f32, f32)>,
    /// The judge's accuracy on held-out real digits.
    pub judge_accuracy: f32,
    /// The share of generated images the judge labels with confidence above 0.9.
    pub confident_share: f32,
    /// The classes among the confidently labelled images.
    pub classes_present: usize,
    /// How many confidently labelled images each class has.
    pub class_counts: [usize; 10],
    /// Training seconds (both networks).
    pub seconds: f64,
}

/// The digits with pixels scaled from `[0, 16]` to `[-1, 1]`.
pub fn digits() -> Result<Dataset, Box<dyn std::error::Error>> {
    let mut digits = data::digits(data_file("digits.csv.gz"))?;
    digits.inputs_mut().iter_mut().for_each(|v| *v = *v / 8.0 - 1.0);
    Ok(digits)
}

/// Fills `noise` with standard normal values.
fn draw_noise(noise: &mut [f32], rng: &mut Rng) {
    noise.iter_mut().for_each(|v| *v = rng.normal());
}

/// The GAN as one training step: the two networks, each with its optimizer, the
/// loss and the noise buffer.
pub struct Gan {
    /// Noise to images.
    pub generator: Learner<Generator, Adam>,
    /// Images to a logit, high for real.
    pub discriminator: Learner<Discriminator, Adam>,
    loss: GanLoss,
    noise: Vec<f32>,
    labels: Labels,
}

/// The targets of the three losses, one per image of a batch.
struct Labels {
    real: Vec<f32>,
    fake: Vec<f32>,
    generator: Vec<f32>,
}

impl Gan {
    /// The two networks from `seed` and `seed + 1`, both trained by Adam with
    /// `beta1 = 0.5`, the logistic loss with real labels smoothed to 0.9.
    pub fn new(seed: u64) -> Self {
        let adam = Adam { beta1: 0.5, ..Adam::new(1e-3) };
        let loss = GanLoss::logistic().label_smoothing(0.1);
        Gan {
            generator: Learner::new(Model::new(seed), adam),
            discriminator: Learner::new(Model::new(seed + 1), adam),
            loss,
            noise: vec![0.0; BATCH * NOISE],
            labels: Labels {
                real: vec![loss.real_label(); BATCH],
                fake: vec![GanLoss::FAKE_LABEL; BATCH],
                generator: vec![GanLoss::GENERATOR_LABEL; BATCH],
            },
        }
    }
}

impl TrainStep for Gan {
    fn names(&self) -> &[&'static str] {
        &["d_loss", "g_loss"]
    }

    fn train_step(&mut self, cx: &mut StepCtx<'_>, batch: Batch<'_>, values: &mut [f32]) -> Result<(), TrainError> {
        let Gan { generator: g, discriminator: d, loss, noise, labels } = self;
        let (real, m) = (batch.inputs, batch.samples);
        let noise = &mut noise[..m * NOISE];

        // Discriminator step: real images towards 0.9, generated ones towards 0.
        draw_noise(noise, cx.rng());
        d.zero_grads();
        d.forward_train(real, cx.rng());
        let d_real = d.loss(loss, &labels.real[..m]);
        d.backward(real);
        g.forward_train(noise, cx.rng());
        d.forward_train(g.output(), cx.rng());
        let d_fake = d.loss(loss, &labels.fake[..m]);
        d.backward(g.output());
        d.step();

        // Generator step through the frozen discriminator: its gradient with respect to
        // the generated images is the generator's output gradient; its own parameters
        // get no gradient and its optimizer does not step.
        draw_noise(noise, cx.rng());
        g.zero_grads();
        g.forward_train(noise, cx.rng());
        d.forward_train(g.output(), cx.rng());
        let g_loss = d.loss(loss, &labels.generator[..m]);
        g.set_output_grad(d.input_grad(g.output()));
        g.backward(noise);
        g.step();

        values.copy_from_slice(&[d_real + d_fake, g_loss]);
        Ok(())
    }

    fn visit_state(&mut self, f: &mut dyn FnMut(&mut [f32])) {
        f(self.generator.model.state_mut());
        f(self.discriminator.model.state_mut());
    }
}

/// Trains the GAN for `epochs` epochs from `seed`, writing the progress picture to
/// `progress` (if given) and the final samples to `samples` (if given), then judges
/// the samples.
pub fn run(
    epochs: usize,
    seed: u64,
    progress: Option<&Path>,
    samples: Option<&Path>,
    verbose: bool,
) -> Result<Report, Box<dyn std::error::Error>> {
    let digits = digits()?;
    let image_len = 64;
    let mut gan = Gan::new(seed);
    // Epochs of shuffled batches of 64 real digits, the last smaller batch skipped.
    let mut fit = CustomFit::new().epochs(epochs).batch_size(BATCH).drop_last(true).seed(seed + 2);

    let mut rng = Rng::new(seed + 4);
    let mut fixed_noise = vec![0.0; 10 * NOISE];
    draw_noise(&mut fixed_noise, &mut rng);
    let mut snapshots: Vec<Vec<f32>> = Vec::new();
    let snapshot_every = (epochs / 8).max(1);
    let mut history = History::default();
    let (trained, seconds) = timed(|| {
        let on_epoch = |gan: &mut Gan, log: &EpochLog| {
            let (epoch, losses) = (log.epoch, (&log.metrics[0].1, &log.metrics[1].1));
            if verbose {
                println!("epoch {epoch:3}: discriminator loss {:.4}, generator loss {:.4}", losses.0, losses.1);
            }
            if epoch % snapshot_every == 0 || epoch == epochs {
                snapshots.push(gan.generator.predict(&fixed_noise).expect("the fixed noise holds whole samples"));
                if let Some(path) = progress {
                    let rows: Vec<&[f32]> = snapshots.iter().map(Vec::as_slice).collect();
                    if let Err(e) = ImageGrid::new(8, 8).range(-1.0, 1.0).write_rows(path, &rows) {
                        eprintln!("could not write {}: {e}", path.display());
                    }
                }
            }
            true
        };
        fit.run_with(&mut gan, &digits, None, on_epoch, &mut history)
    });
    trained?;
    let losses = history.series("d_loss").into_iter().zip(history.series("g_loss")).collect();
    let g = &gan.generator;

    // The judge: trained on 80 % of the real digits, checked on the rest.
    let (train, test) = digits.split(0.2, seed);
    let mut judge = Model::<Judge>::new(seed + 3);
    let judge_loss = SparseCategoricalCrossEntropy::from_logits();
    Fit::new(Adam::new(2e-3), judge_loss).epochs(15).batch_size(32).seed(seed).run(&mut judge, &train, None)?;
    let judge_accuracy = judge.evaluate(&test, &judge_loss, &[Metric::Accuracy])?.metric("accuracy").unwrap_or(0.0);

    let mut judged_noise = vec![0.0; JUDGED * NOISE];
    draw_noise(&mut judged_noise, &mut rng);
    let generated = g.predict(&judged_noise)?;
    let logits = judge.predict(&generated)?;
    let mut class_counts = [0usize; 10];
    for row in logits.chunks_exact(10) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let sum: f32 = row.iter().map(|&z| (z - max).exp()).sum();
        let best = row.iter().position(|&z| z == max).unwrap_or(0);
        if 1.0 / sum > CONFIDENCE {
            class_counts[best] += 1;
        }
    }
    let confident = class_counts.iter().sum::<usize>();
    if let Some(path) = samples {
        ImageGrid::new(8, 8).range(-1.0, 1.0).write(path, &generated[..100 * image_len])?;
    }
    Ok(Report {
        losses,
        judge_accuracy,
        confident_share: confident as f32 / JUDGED as f32,
        classes_present: class_counts.iter().filter(|&&c| c > 0).count(),
        class_counts,
        seconds,
    })
}

/// `target/<name>` in the repository.
pub fn target_file(name: &str) -> PathBuf {
    [env!("CARGO_MANIFEST_DIR"), "target", name].iter().collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seed = std::env::args().nth(1).map_or(Ok(SEED), |s| s.parse())?;
    println!("{}\n\n{}\n", Model::<Generator>::zeros().summary(), Model::<Discriminator>::zeros().summary());
    let (progress, samples) = (target_file("11_dcgan_progress.png"), target_file("11_dcgan_samples.png"));
    let report = run(EPOCHS, seed, Some(&progress), Some(&samples), true)?;
    println!("judge accuracy on held-out real digits: {:.4}", report.judge_accuracy);
    println!("confident samples per class: {:?}", report.class_counts);
    println!("wrote {} and {}", progress.display(), samples.display());
    let (d_loss, g_loss) = report.losses.last().copied().unwrap_or((f32::NAN, f32::NAN));
    let line = JsonObject::new()
        .string("example", "11_dcgan")
        .number("confident_share", report.confident_share.into())
        .integer("classes_present", report.classes_present as i64)
        .number("judge_accuracy", report.judge_accuracy.into())
        .number("final_discriminator_loss", d_loss.into())
        .number("final_generator_loss", g_loss.into())
        .number("train_seconds", report.seconds);
    println!("{line}");
    Ok(())
}
