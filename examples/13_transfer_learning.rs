//! # 13. Transfer learning: reuse a feature extractor, train only a new head
//!
//! Features learned on one task can serve a related one. This example pretrains a
//! digits network on the digits 0 to 4 only, keeps its feature extractor, and reuses
//! it for a new task, the digits 5 to 9, with only 20 labelled images per digit:
//!
//! - the network is a feature extractor used as a layer (`features: Features`, a
//!   network of its own) followed by a head, so its tensors are named
//!   `features.hidden.weight`, `features.hidden.bias`, `head.weight`, `head.bias`;
//! - after pretraining, the extractor alone is saved as a safetensors file
//!   (`LoadOptions::prefix` takes the `features.` tensors out of the pretrained
//!   network), then loaded into a new network for the new task
//!   (`LoadOptions::target_prefix` puts them under its `features.`), whose head keeps
//!   its fresh initial weights;
//! - `Fit::freeze(Select::layer("features"))` trains only the head: the extractor's
//!   33 280 parameters keep their values bit for bit;
//! - the same network trained from scratch on the same 100 images is the baseline,
//!   and a frozen extractor that never trained (random features) is the control.
//!
//! All are tested on every other image of the digits 5 to 9 (796 images).
//!
//! What it shows on these 8x8 digits: the frozen pretrained extractor does as well
//! as training everything from scratch (0.9485 both with the seed below), but not
//! better, and no better than random features. Raw pixels are already good features
//! for this data: 100 images suffice to train the whole network, so transfer has
//! little to add. Other extractors (128-32, 256-128, tanh), shifted-image
//! pretraining, fine-tuning after the head, 5 or 10 images per digit and a
//! convolutional extractor (16 filters of 3x3, max-pooling) did not change that over
//! three to five seeds. Transfer pays off where the new task's data set is too small
//! for the network and raw inputs are poor features, as the pixels of photos are.
//!
//! Run it with `cargo run --release --example 13_transfer_learning`.
use std::path::Path;

use nn_core::data;
use nn_core::io::{from_safetensors_bytes, load_safetensors, save_safetensors, to_safetensors_bytes, LoadOptions};
use nn_core::prelude::*;
use nn_examples::{data_file, timed, JsonObject};

network! {
    /// 64 pixels to 512 features.
    pub struct Features: [64] -> [512] {
        hidden: Dense { units: 512, activation: Relu },
    }

    /// The network pretrained on the digits 0 to 4: features, dropout (so that no
    /// single feature carries a decision, which keeps them useful beyond these five
    /// digits), scores.
    pub struct Pretrain: [64] -> [5] {
        features: Features,
        drop: Dropout { rate: 0.5 },
        head: Dense { units: 5 },
    }

    /// The network for the digits 5 to 9: features, then five scores.
    pub struct FiveDigits: [64] -> [5] {
        features: Features,
        head: Dense { units: 5 },
    }
}

/// The seed of the splits, the initial weights and the shuffling.
pub const SEED: u64 = 13;
/// Labelled images per digit for the new task.
pub const SHOTS: usize = 20;
/// Epochs of pretraining on the digits 0 to 4.
pub const PRETRAIN_EPOCHS: usize = 30;
/// Epochs of training on the few images of the digits 5 to 9.
pub const EPOCHS: usize = 100;

/// What the example measured.
#[derive(Clone, Debug)]
pub struct Report {
    /// Test accuracy on the digits 0 to 4 of the pretrained network (images it did
    /// not train on).
    pub pretrain_accuracy: f32,
    /// Test accuracy on the digits 5 to 9 with the pretrained extractor, frozen.
    pub transfer_accuracy: f32,
    /// Test accuracy on the digits 5 to 9 of the same network trained from scratch.
    pub scratch_accuracy: f32,
    /// Test accuracy on the digits 5 to 9 with a frozen extractor that was never
    /// trained (its random initial weights): what the head alone can do.
    pub random_features_accuracy: f32,
    /// Images of the digits 5 to 9 trained on.
    pub train_samples: usize,
    /// Images of the digits 5 to 9 tested on.
    pub test_samples: usize,
    /// Tensors loaded from the extractor's file into the new network.
    pub loaded: Vec<String>,
    /// Whether the frozen extractor kept its pretrained values bit for bit.
    pub extractor_unchanged: bool,
    /// Seconds spent training (pretraining included).
    pub train_seconds: f64,
}

/// The first `shots` images of each class in `data` (in its order), and the others.
fn few_per_class(data: &Dataset, shots: usize, classes: usize) -> (Dataset, Dataset) {
    let mut taken = vec![0; classes];
    let (mut few, mut others) = (Vec::new(), Vec::new());
    for i in 0..data.len() {
        let class = data.target(i)[0] as usize;
        if taken[class] < shots {
            taken[class] += 1;
            few.push(i);
        } else {
            others.push(i);
        }
    }
    (data.select(&few), data.select(&others))
}

/// A training run with the settings every run shares.
fn fit<L: Layer>(learning_rate: f32, epochs: usize, progress: bool) -> Fit<L, Adam, SparseCategoricalCrossEntropy> {
    Fit::new(Adam::new(learning_rate), SparseCategoricalCrossEntropy::from_logits())
        .epochs(epochs)
        .batch_size(20)
        .seed(SEED)
        .metrics(&[Metric::Accuracy])
        .progress(progress)
}

fn accuracy<L: Layer>(model: &Model<L>, data: &Dataset) -> Result<f32, TrainError> {
    let evaluation = model.evaluate(data, &SparseCategoricalCrossEntropy::from_logits(), &[Metric::Accuracy])?;
    Ok(evaluation.metric("accuracy").unwrap_or(f32::NAN))
}

/// Pretrains on the digits 0 to 4 for `pretrain_epochs`, saves the extractor into
/// `folder`, then trains on [`SHOTS`] images per digit 5 to 9 for `epochs`: with the
/// pretrained extractor frozen, from scratch, and with a frozen random extractor
/// (with a progress bar when `progress`).
pub fn run(
    pretrain_epochs: usize,
    epochs: usize,
    folder: &Path,
    progress: bool,
) -> Result<Report, Box<dyn std::error::Error>> {
    let mut digits = data::digits(data_file("digits.csv.gz"))?;
    digits.scale_inputs(1.0 / 16.0);
    // The source task: the digits 0 to 4, 80 % to pretrain on, 20 % to check it.
    let (train, test) = digits.split(0.2, SEED);
    let (source_train, source_test) = (train.filter(|_, t| t[0] < 5.0), test.filter(|_, t| t[0] < 5.0));
    // The target task: the digits 5 to 9 as classes 0 to 4. Pretraining never saw
    // them, so every image but the few labelled ones is a test image.
    let mut target = digits.split(0.0, SEED).0.filter(|_, t| t[0] >= 5.0);
    target.map_targets(|t| *t -= 5.0);
    let (target_train, target_test) = few_per_class(&target, SHOTS, 5);

    let (outcome, train_seconds) = timed(|| -> Result<_, Box<dyn std::error::Error>> {
        // 1. Pretrain on the digits 0 to 4.
        let mut pretrained = Model::<Pretrain>::new(SEED);
        fit(1e-3, pretrain_epochs, progress).run(&mut pretrained, &source_train, None)?;
        let pretrain_accuracy = accuracy(&pretrained, &source_test)?;

        // 2. Save the extractor alone, under its own names (`hidden.weight`, ...):
        //    `prefix` takes the `features.` tensors of the pretrained network.
        let mut extractor = Model::<Features>::zeros();
        let features_of_pretrained = LoadOptions { prefix: Some("features.".into()), ..Default::default() };
        from_safetensors_bytes(&mut extractor, &to_safetensors_bytes(&pretrained), &features_of_pretrained)?;
        let file = folder.join("13_transfer_learning_features.safetensors");
        std::fs::create_dir_all(folder)?;
        save_safetensors(&extractor, &file)?;

        // 3. A new network for the digits 5 to 9: `target_prefix` loads the file into
        //    its `features.` tensors; its head keeps its initial weights. Only the
        //    head trains, with a larger rate (it starts from nothing).
        let mut transfer = Model::<FiveDigits>::new(SEED + 1);
        let into_features = LoadOptions { target_prefix: Some("features.".into()), ..Default::default() };
        let loaded = load_safetensors(&mut transfer, &file, &into_features)?.loaded;
        let pretrained_features = transfer.params()[..Features::PARAMS].to_vec();
        let head_only = || fit(1e-2, epochs, progress).freeze(Select::layer("features"));
        head_only().run(&mut transfer, &target_train, None)?;
        let extractor_unchanged = transfer.params()[..Features::PARAMS] == pretrained_features[..];

        // 4. The same network from scratch on the same images: every layer trains.
        let mut scratch = Model::<FiveDigits>::new(SEED + 1);
        fit(1e-3, epochs, progress).run(&mut scratch, &target_train, None)?;

        // 5. The control: the head alone on a frozen extractor that never trained.
        let mut random = Model::<FiveDigits>::new(SEED + 1);
        head_only().run(&mut random, &target_train, None)?;

        Ok(Report {
            pretrain_accuracy,
            transfer_accuracy: accuracy(&transfer, &target_test)?,
            scratch_accuracy: accuracy(&scratch, &target_test)?,
            random_features_accuracy: accuracy(&random, &target_test)?,
            train_samples: target_train.len(),
            test_samples: target_test.len(),
            loaded,
            extractor_unchanged,
            train_seconds: 0.0,
        })
    });
    Ok(Report { train_seconds, ..outcome? })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    let report = run(PRETRAIN_EPOCHS, EPOCHS, &folder, true)?;
    println!("pretrained on the digits 0-4: test accuracy {:.4}", report.pretrain_accuracy);
    println!("loaded into the new network: {}", report.loaded.join(", "));
    println!("digits 5-9 from {} labelled images, tested on {}:", report.train_samples, report.test_samples);
    println!("  pretrained extractor, frozen  {:.4}", report.transfer_accuracy);
    println!("  from scratch                  {:.4}", report.scratch_accuracy);
    println!("  random extractor, frozen      {:.4}", report.random_features_accuracy);
    println!("trained in {:.2} s", report.train_seconds);
    let line = JsonObject::new()
        .string("example", "13_transfer_learning")
        .number("transfer_accuracy", report.transfer_accuracy.into())
        .number("scratch_accuracy", report.scratch_accuracy.into());
    println!("{line}");
    Ok(())
}
