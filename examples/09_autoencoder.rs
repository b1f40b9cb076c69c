//! # 9. Autoencoder: compress digits to a small code, with separate or tied weights
//!
//! An autoencoder learns to reproduce its input through a narrow middle layer, the
//! code: the encoder maps the 64 pixels of an 8x8 digit to [`CODE`] numbers and the
//! decoder maps them back. This example writes two with the graph form of `network!`:
//!
//! - [`Autoencoder`]: encoder and decoder with weights of their own;
//! - [`TiedAutoencoder`]: each decoder layer uses the transpose of the matching encoder
//!   layer's weight (`Dense { tied: enc1 }`), with a bias of its own: half the weights,
//!   and every gradient of a tied layer flows into the one weight.
//!
//! Both are trained on the training digits with the mean squared error of the
//! reconstruction and compared, on the test digits, with PCA keeping as many
//! components as the code has numbers (computed here: the covariance of the training
//! pixels, its eigenvectors by Jacobi rotations). PCA is the best *linear* code; the
//! autoencoders' ReLU layers let them do better.
//!
//! The originals and reconstructions of ten test digits are drawn side by side in
//! `target/09_autoencoder.png` (rows: originals, separate, tied, PCA).
//!
//! Last, the better autoencoder's encoder, frozen, becomes the feature extractor of a
//! classifier ([`Classifier`]: the encoder as a layer, then a small head trained on
//! the labels): how much of what distinguishes the digits the code kept.
//!
//! Run it with `cargo run --release --example 09_autoencoder`.
use std::path::PathBuf;

use nn_core::data;
use nn_core::prelude::*;
use nn_core::report::ImageGrid;
use nn_core::train::{Metric, Select, TrainError};
use nn_examples::{data_file, timed, JsonObject};

/// Numbers in the code.
pub const CODE: usize = 12;

network! {
    /// Separate encoder and decoder weights.
    pub struct Autoencoder: [64] -> [64] graph {
        input x;
        h = enc1(x): Dense { units: 128, activation: Relu };
        code = enc2(h): Dense { units: 12 };
        g = dec2(code): Dense { units: 128, activation: Relu };
        out = dec1(g): Dense { units: 64, activation: Sigmoid };
        output out;
    }

    /// Each decoder layer uses the transpose of the matching encoder layer's weight.
    pub struct TiedAutoencoder: [64] -> [64] graph {
        input x;
        h = enc1(x): Dense { units: 128, activation: Relu };
        code = enc2(h): Dense { units: 12 };
        g = dec2(code): Dense { tied: enc2, activation: Relu };
        out = dec1(g): Dense { tied: enc1, activation: Sigmoid };
        output out;
    }

    /// The encoder alone: the same layer names, so the trained weights copy over.
    pub struct Encoder: [64] -> [12] {
        enc1: Dense { units: 128, activation: Relu },
        enc2: Dense { units: 12 },
    }

    /// A classifier on the code: the encoder (frozen), then a head.
    pub struct Classifier: [64] -> [10] {
        encoder: Encoder,
        hidden: Dense { units: 64, activation: Relu },
        logits: Dense { units: 10 },
    }
}

/// The seed of the split, the initial weights and the shuffling.
pub const SEED: u64 = 9;
/// Epochs of each autoencoder.
pub const EPOCHS: usize = 150;
/// Epochs of the classifier's head.
pub const HEAD_EPOCHS: usize = 60;

/// What the example measured.
#[derive(Clone, Debug)]
pub struct Report {
    /// Test reconstruction MSE (pixels in [0, 1]) of the autoencoder with separate weights.
    pub separate_mse: f64,
    /// The same with tied weights.
    pub tied_mse: f64,
    /// The same for PCA with [`CODE`] components.
    pub pca_mse: f64,
    /// Which autoencoder the classifier's encoder comes from.
    pub encoder_from: &'static str,
    /// Test accuracy of the classifier on the frozen encoder.
    pub frozen_encoder_accuracy: f32,
    /// Whether the frozen encoder kept its weights bit for bit.
    pub encoder_unchanged: bool,
    /// Parameters of each autoencoder.
    pub params: (usize, usize),
    /// Where the picture was written.
    pub picture: PathBuf,
    /// Seconds spent training.
    pub train_seconds: f64,
}

/// The mean squared difference of two equally long slices.
fn mse(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| (x as f64 - y as f64).powi(2)).sum::<f64>() / a.len() as f64
}

/// Principal component analysis: the mean of the rows and the `k` eigenvectors of
/// their covariance with the largest eigenvalues.
pub struct Pca {
    mean: Vec<f64>,
    /// `k` rows of `dim` values, orthonormal.
    components: Vec<Vec<f64>>,
}

impl Pca {
    /// Fits `k` components to `rows` of `dim` values.
    pub fn fit(data: &[f32], dim: usize, k: usize) -> Pca {
        let n = data.len() / dim;
        let mut mean = vec![0.0; dim];
        for row in data.chunks_exact(dim) {
            mean.iter_mut().zip(row).for_each(|(m, &v)| *m += v as f64 / n as f64);
        }
        let mut cov = vec![vec![0.0; dim]; dim];
        for row in data.chunks_exact(dim) {
            let centred: Vec<f64> = row.iter().zip(&mean).map(|(&v, m)| v as f64 - m).collect();
            for i in 0..dim {
                for j in 0..dim {
                    cov[i][j] += centred[i] * centred[j] / n as f64;
                }
            }
        }
        let (values, vectors) = jacobi_eigen(cov);
        let mut order: Vec<usize> = (0..dim).collect();
        order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
        let components = order[..k].iter().map(|&c| (0..dim).map(|i| vectors[i][c]).collect()).collect();
        Pca { mean, components }
    }

    /// Projects each row onto the components and back.
    pub fn reconstruct(&self, data: &[f32]) -> Vec<f32> {
        let dim = self.mean.len();
        let mut out = Vec::with_capacity(data.len());
        for row in data.chunks_exact(dim) {
            let centred: Vec<f64> = row.iter().zip(&self.mean).map(|(&v, m)| v as f64 - m).collect();
            let mut back = self.mean.clone();
            for c in &self.components {
                let t: f64 = c.iter().zip(&centred).map(|(a, b)| a * b).sum();
                back.iter_mut().zip(c).for_each(|(b, v)| *b += t * v);
            }
            out.extend(back.iter().map(|&v| v as f32));
        }
        out
    }
}

/// The eigenvalues and eigenvectors (as columns) of a symmetric matrix, by cyclic
/// Jacobi rotations until the off-diagonal part is negligible.
fn jacobi_eigen(mut a: Vec<Vec<f64>>) -> (Vec<f64>, Vec<Vec<f64>>) {
    let n = a.len();
    let mut v: Vec<Vec<f64>> = (0..n).map(|i| (0..n).map(|j| if i == j { 1.0 } else { 0.0 }).collect()).collect();
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i][j] * a[i][j])
            .sum();
        let diag: f64 = (0..n).map(|i| a[i][i] * a[i][i]).sum();
        if off <= 1e-22 * diag {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                if a[p][q].abs() < 1e-300 {
                    continue;
                }
                // The rotation that zeroes a[p][q].
                let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for row in a.iter_mut() {
                    let (akp, akq) = (row[p], row[q]);
                    row[p] = c * akp - s * akq;
                    row[q] = s * akp + c * akq;
                }
                let (head, tail) = a.split_at_mut(q);
                for (apk, aqk) in head[p].iter_mut().zip(tail[0].iter_mut()) {
                    let (x, y) = (*apk, *aqk);
                    *apk = c * x - s * y;
                    *aqk = s * x + c * y;
                }
                for row in v.iter_mut() {
                    let (vkp, vkq) = (row[p], row[q]);
                    row[p] = c * vkp - s * vkq;
                    row[q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..n).map(|i| a[i][i]).collect(), v)
}

/// Trains an autoencoder to reproduce `train`'s inputs; returns it.
fn train_autoencoder<L: Network>(train: &Dataset, epochs: usize, progress: bool) -> Result<Model<L>, TrainError> {
    let mut model = Model::<L>::new(SEED);
    let mut fit =
        Fit::new(Adam::new(2e-3), MeanSquaredError).epochs(epochs).batch_size(32).seed(SEED).progress(progress);
    fit.run(&mut model, train, None)?;
    Ok(model)
}

/// Copies the tensors `enc1.*` and `enc2.*` of an autoencoder into the classifier's
/// `encoder.enc1.*` and `encoder.enc2.*`.
fn copy_encoder<A: Network>(from: &Model<A>, to: &mut Model<Classifier>) -> usize {
    let mut source = Vec::new();
    from.visit_tensors(&mut |t| {
        let name = t.path.to_string();
        if name.starts_with("enc") {
            source.push((format!("encoder.{name}"), from.params()[t.offset..t.offset + t.len].to_vec()));
        }
    });
    let mut targets = Vec::new();
    to.visit_tensors(&mut |t| targets.push((t.path.to_string(), t.offset, t.len)));
    let params = to.params_mut();
    let mut copied = 0;
    for (name, values) in &source {
        if let Some((_, offset, len)) = targets.iter().find(|(n, _, _)| n == name) {
            assert_eq!(*len, values.len(), "{name}");
            params[*offset..*offset + len].copy_from_slice(values);
            copied += 1;
        }
    }
    copied
}

/// Trains both autoencoders for `epochs` and the classifier's head for `head_epochs`.
pub fn run(epochs: usize, head_epochs: usize, progress: bool) -> Result<Report, Box<dyn std::error::Error>> {
    let mut digits = data::digits(data_file("digits.csv.gz"))?;
    digits.scale_inputs(1.0 / 16.0);
    let (train, test) = digits.split(0.2, SEED);
    // Autoencoder data: the targets are the inputs.
    let reproduce = |d: &Dataset| Dataset::new(d.inputs().to_vec(), 64, d.inputs().to_vec(), 64);
    let (ae_train, ae_test) = (reproduce(&train)?, reproduce(&test)?);

    let (trained, train_seconds) = timed(|| -> Result<_, TrainError> {
        let separate = train_autoencoder::<Autoencoder>(&ae_train, epochs, progress)?;
        let tied = train_autoencoder::<TiedAutoencoder>(&ae_train, epochs, progress)?;
        Ok((separate, tied))
    });
    let (separate, tied) = trained?;
    let separate_out = separate.predict(ae_test.inputs())?;
    let tied_out = tied.predict(ae_test.inputs())?;
    let pca = Pca::fit(ae_train.inputs(), 64, CODE);
    let pca_out = pca.reconstruct(ae_test.inputs());
    let (separate_mse, tied_mse, pca_mse) =
        (mse(&separate_out, ae_test.inputs()), mse(&tied_out, ae_test.inputs()), mse(&pca_out, ae_test.inputs()));

    // Ten test digits: originals, then each reconstruction.
    let shown = 10 * 64;
    let picture: PathBuf = [env!("CARGO_MANIFEST_DIR"), "target", "09_autoencoder.png"].iter().collect();
    ImageGrid::new(8, 8).scale(4).range(0.0, 1.0).write_rows(
        &picture,
        &[&ae_test.inputs()[..shown], &separate_out[..shown], &tied_out[..shown], &pca_out[..shown]],
    )?;

    // The better encoder, frozen, under a classifier's head.
    let mut classifier = Model::<Classifier>::new(SEED);
    let (encoder_from, copied) = if separate_mse <= tied_mse {
        ("separate", copy_encoder(&separate, &mut classifier))
    } else {
        ("tied", copy_encoder(&tied, &mut classifier))
    };
    assert_eq!(copied, 4, "the encoder's four tensors");
    let encoder_len = <Encoder as Layer>::PARAMS;
    let before = classifier.params()[..encoder_len].to_vec();
    let mut fit = Fit::new(Adam::new(2e-3), SparseCategoricalCrossEntropy::from_logits())
        .epochs(head_epochs)
        .batch_size(32)
        .seed(SEED)
        .freeze(Select::layer("encoder"))
        .progress(progress);
    fit.run(&mut classifier, &train, None)?;
    let encoder_unchanged = classifier.params()[..encoder_len] == before[..];
    let evaluation = classifier.evaluate(&test, &fit.loss, &[Metric::Accuracy])?;
    let frozen_encoder_accuracy = evaluation.metric("accuracy").unwrap_or(f32::NAN);

    Ok(Report {
        separate_mse,
        tied_mse,
        pca_mse,
        encoder_from,
        frozen_encoder_accuracy,
        encoder_unchanged,
        params: (<Autoencoder as Layer>::PARAMS, <TiedAutoencoder as Layer>::PARAMS),
        picture,
        train_seconds,
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let report = run(EPOCHS, HEAD_EPOCHS, true)?;
    println!(
        "parameters: separate {}, tied {}; trained in {:.1} s",
        report.params.0, report.params.1, report.train_seconds
    );
    println!(
        "test reconstruction MSE: separate {:.5}, tied {:.5}, PCA ({CODE} components) {:.5}",
        report.separate_mse, report.tied_mse, report.pca_mse
    );
    println!(
        "classifier on the frozen {} encoder: test accuracy {:.4} (encoder unchanged: {})",
        report.encoder_from, report.frozen_encoder_accuracy, report.encoder_unchanged
    );
    println!("originals and reconstructions: {}", report.picture.display());
    let line = JsonObject::new()
        .string("example", "09_autoencoder")
        .object(
            "mse",
            JsonObject::new()
                .number("separate", report.separate_mse)
                .number("tied", report.tied_mse)
                .number("pca", report.pca_mse),
        )
        .number("frozen_encoder_accuracy", report.frozen_encoder_accuracy as f64);
    println!("{line}");
    Ok(())
}
