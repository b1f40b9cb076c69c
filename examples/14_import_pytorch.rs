//! # 14. Import a network trained in PyTorch, and export one back
//!
//! A network trained in PyTorch runs here unchanged, and a network trained here runs
//! in PyTorch, because a model file is the `state_dict` of the equivalent
//! `torch.nn.Module` as safetensors: tensor names are the module's attribute paths
//! (`fc1.weight`), layouts are PyTorch's (a dense weight is `[out, in]`). This example
//! teaches:
//!
//! - writing the `network!` that matches a PyTorch module: one layer per submodule,
//!   with the submodule's name (`fc1: Dense { units: 128, activation: Relu }` for
//!   `self.fc1 = nn.Linear(64, 128)` followed by `torch.relu`);
//! - loading PyTorch's file with `nn_core::io::load_safetensors`, which checks that
//!   every tensor is there, with the right shape and dtype and finite values;
//! - checking the import: the network's logits on 359 test images against the logits
//!   PyTorch computed for the same images (committed with the weights), batched and
//!   one image at a time;
//! - the way back: train the same network here, save it with `save_safetensors`, and
//!   check in PyTorch that `load_state_dict(strict=True)` accepts it and gives the
//!   same outputs.
//!
//! The PyTorch side is `tools/interop/torch_digits.py`. Its `export` command trained
//! the committed files `examples/data/torch_digits.safetensors` (the weights) and
//! `examples/data/torch_digits_test.safetensors` (test images, labels, PyTorch's
//! logits and probabilities), on the digits rows whose index is not 4 modulo 5; the
//! other 359 rows are the test images. After this example ran,
//!
//! ```text
//! python3 tools/interop/torch_digits.py check target/14_import_pytorch/trained.safetensors
//! ```
//!
//! loads the network trained here into PyTorch, runs the test images and compares
//! PyTorch's logits with this example's (`trained_outputs.safetensors`, written next
//! to the model).
//!
//! Run it with `cargo run --release --example 14_import_pytorch`.
use std::collections::BTreeMap;
use std::error::Error;
use std::path::{Path, PathBuf};

use nn_core::data;
use nn_core::io::{load_safetensors, save_safetensors, LoadOptions};
use nn_core::prelude::*;
use nn_examples::{data_file, timed, JsonObject};
use safetensors::{Dtype, SafeTensors};

network! {
    /// The PyTorch module `TorchDigits` of `tools/interop/torch_digits.py`:
    /// 64 pixels, two ReLU layers, 10 logits.
    pub struct TorchDigits: [64] -> [10] {
        fc1: Dense { units: 128, activation: Relu },
        fc2: Dense { units: 64, activation: Relu },
        fc3: Dense { units: 10 },
    }
}

/// The weights PyTorch trained (its `state_dict`).
pub const TORCH_WEIGHTS: &str = "torch_digits.safetensors";
/// The test images with PyTorch's outputs on them.
pub const TORCH_TEST: &str = "torch_digits_test.safetensors";
/// The largest absolute difference between our logits and PyTorch's that counts as
/// the same network.
pub const MAX_ABS_DIFF: f32 = 1e-5;
/// Epochs of training the network here.
pub const EPOCHS: usize = 30;
/// The seed of the initial weights and the shuffling of the network trained here.
const SEED: u64 = 14;
/// Every `TEST_EVERY`-th row of the digits file, from row `TEST_EVERY - 1`, is a
/// test image (the split of the PyTorch script).
const TEST_EVERY: usize = 5;

/// What the example measured.
#[derive(Clone, Debug)]
pub struct Report {
    /// The tensors loaded from PyTorch's file, in `state_dict` order.
    pub loaded: Vec<String>,
    /// Test images.
    pub test_samples: usize,
    /// Whether the committed test images and labels are the digits file's test rows.
    pub inputs_match_data: bool,
    /// The largest absolute difference between our logits and PyTorch's, over the
    /// batched and the one-image-at-a-time inference.
    pub max_abs_diff: f32,
    /// The same for the softmax probabilities.
    pub max_abs_diff_probabilities: f32,
    /// The fraction of test images where our most likely digit is PyTorch's.
    pub argmax_agreement: f32,
    /// Our test accuracy with PyTorch's weights.
    pub test_accuracy: f32,
    /// PyTorch's test accuracy (from its committed logits).
    pub pytorch_test_accuracy: f32,
    /// Test accuracy of the network trained here.
    pub trained_accuracy: f32,
    /// The file of the network trained here.
    pub trained_file: PathBuf,
    /// The file of its logits on the test images.
    pub trained_outputs: PathBuf,
    /// Whether the file of the network trained here has exactly the tensor names,
    /// shapes and dtypes of PyTorch's `state_dict` file.
    pub same_names_and_shapes: bool,
    /// Whether that file loads back into the same state and logits, bit for bit.
    pub round_trip_exact: bool,
    /// Seconds spent training here.
    pub train_seconds: f64,
}

/// The f32 tensors of a safetensors file, by name: shape and values.
pub type Tensors = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

/// Reads every tensor of the safetensors file at `path`; every one must be `F32`.
pub fn read_tensors(path: &Path) -> Result<Tensors, Box<dyn Error>> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let file = SafeTensors::deserialize(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut tensors = BTreeMap::new();
    for (name, view) in file.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(format!("{}: tensor `{name}` is {:?}, expected F32", path.display(), view.dtype()).into());
        }
        let values = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        tensors.insert(name, (view.shape().to_vec(), values));
    }
    Ok(tensors)
}

/// The values of tensor `name` of `tensors`, checking its shape.
fn tensor<'a>(tensors: &'a Tensors, name: &str, shape: &[usize]) -> Result<&'a [f32], Box<dyn Error>> {
    match tensors.get(name) {
        Some((found, values)) if found == shape => Ok(values),
        Some((found, _)) => Err(format!("tensor `{name}` has shape {found:?}, expected {shape:?}").into()),
        None => Err(format!("no tensor `{name}`").into()),
    }
}

/// The name, dtype and shape of one tensor of a safetensors file.
pub type TensorHeader = (String, Dtype, Vec<usize>);

/// The name, dtype and shape of every tensor of a safetensors file, sorted by name.
pub fn header_of(path: &Path) -> Result<Vec<TensorHeader>, Box<dyn Error>> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let file = SafeTensors::deserialize(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut header: Vec<_> =
        file.tensors().into_iter().map(|(name, view)| (name, view.dtype(), view.shape().to_vec())).collect();
    header.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(header)
}

/// Softmax of each row of `logits` (`classes` per row).
fn softmax_rows(logits: &[f32], classes: usize) -> Vec<f32> {
    let mut out = logits.to_vec();
    for row in out.chunks_mut(classes) {
        let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        row.iter_mut().for_each(|v| *v = (*v - max).exp());
        let sum: f32 = row.iter().sum();
        row.iter_mut().for_each(|v| *v /= sum);
    }
    out
}

/// The index of the largest value of each row.
fn argmax_rows(values: &[f32], classes: usize) -> Vec<usize> {
    let argmax = |row: &[f32]| (0..row.len()).fold(0, |best, i| if row[i] > row[best] { i } else { best });
    values.chunks(classes).map(argmax).collect()
}

fn largest_difference(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// The fraction of equal values.
fn agreement(a: &[usize], b: &[usize]) -> f32 {
    a.iter().zip(b).filter(|(x, y)| x == y).count() as f32 / a.len() as f32
}

/// The logits of every image of `inputs`, one image at a time (`predict_one`).
fn logits_one_by_one(model: &Model<TorchDigits>, inputs: &[f32]) -> Vec<f32> {
    let mut logits = Vec::with_capacity(inputs.len() / 64 * 10);
    for image in inputs.chunks(64) {
        let mut x = Tensor::<Shape1<64>>::zeros();
        x.as_mut_slice().copy_from_slice(image);
        logits.extend_from_slice(model.predict_one(&x).as_slice());
    }
    logits
}

/// Writes `logits` (`[rows, 10]`) as the one tensor `logits` of a safetensors file.
fn save_logits(logits: &[f32], path: &Path) -> Result<(), Box<dyn Error>> {
    let bytes: Vec<u8> = logits.iter().flat_map(|v| v.to_le_bytes()).collect();
    let view = safetensors::tensor::TensorView::new(Dtype::F32, vec![logits.len() / 10, 10], &bytes)?;
    std::fs::write(path, safetensors::serialize([("logits", view)], None)?)?;
    Ok(())
}

/// Imports PyTorch's network and checks it on the test images, then trains the same
/// network here for `epochs` epochs on the training images and saves it (and its
/// test logits) into `folder`.
pub fn run(epochs: usize, folder: &Path) -> Result<Report, Box<dyn Error>> {
    let mut digits = data::digits(data_file("digits.csv.gz"))?;
    digits.scale_inputs(1.0 / 16.0);
    let test_rows: Vec<usize> = (0..digits.len()).filter(|i| i % TEST_EVERY == TEST_EVERY - 1).collect();
    let train_rows: Vec<usize> = (0..digits.len()).filter(|i| i % TEST_EVERY != TEST_EVERY - 1).collect();
    let (train, test) = (digits.select(&train_rows), digits.select(&test_rows));

    // PyTorch's test images, labels and outputs.
    let n = test.len();
    let committed = read_tensors(&data_file(TORCH_TEST))?;
    let inputs = tensor(&committed, "inputs", &[n, 64])?;
    let labels = tensor(&committed, "labels", &[n])?;
    let rows = tensor(&committed, "rows", &[n])?;
    let torch_logits = tensor(&committed, "logits", &[n, 10])?;
    let torch_probabilities = tensor(&committed, "probabilities", &[n, 10])?;
    let inputs_match_data = inputs == test.inputs()
        && labels == test.targets()
        && rows.iter().zip(&test_rows).all(|(&r, &i)| r as usize == i);

    // 1. PyTorch to here: load the state_dict, compare the outputs.
    let mut model = Model::<TorchDigits>::zeros();
    let loaded = load_safetensors(&mut model, data_file(TORCH_WEIGHTS), &LoadOptions::default())?.loaded;
    let logits = model.predict(inputs)?;
    let max_abs_diff = largest_difference(&logits, torch_logits)
        .max(largest_difference(&logits_one_by_one(&model, inputs), torch_logits));
    let max_abs_diff_probabilities = largest_difference(&softmax_rows(&logits, 10), torch_probabilities);
    let ours = argmax_rows(&logits, 10);
    let theirs = argmax_rows(torch_logits, 10);
    let truth: Vec<usize> = labels.iter().map(|&l| l as usize).collect();

    // 2. Here to PyTorch: train, save, check what can be checked without PyTorch
    //    (the script checks the rest).
    let mut ours_trained = Model::<TorchDigits>::new(SEED);
    let loss = SparseCategoricalCrossEntropy::from_logits();
    let mut fit = Fit::new(Adam::new(1e-3), loss).epochs(epochs).batch_size(32).seed(SEED);
    let (trained, train_seconds) = timed(|| fit.run(&mut ours_trained, &train, None));
    trained?;
    let trained_logits = ours_trained.predict(inputs)?;
    std::fs::create_dir_all(folder)?;
    let trained_file = folder.join("trained.safetensors");
    let trained_outputs = folder.join("trained_outputs.safetensors");
    save_safetensors(&ours_trained, &trained_file)?;
    save_logits(&trained_logits, &trained_outputs)?;
    let same_names_and_shapes = header_of(&trained_file)? == header_of(&data_file(TORCH_WEIGHTS))?;
    let mut reloaded = Model::<TorchDigits>::zeros();
    load_safetensors(&mut reloaded, &trained_file, &LoadOptions::default())?;
    let round_trip_exact = reloaded.state() == ours_trained.state() && reloaded.predict(inputs)? == trained_logits;

    Ok(Report {
        loaded,
        test_samples: n,
        inputs_match_data,
        max_abs_diff,
        max_abs_diff_probabilities,
        argmax_agreement: agreement(&ours, &theirs),
        test_accuracy: agreement(&ours, &truth),
        pytorch_test_accuracy: agreement(&theirs, &truth),
        trained_accuracy: agreement(&argmax_rows(&trained_logits, 10), &truth),
        trained_file,
        trained_outputs,
        same_names_and_shapes,
        round_trip_exact,
        train_seconds,
    })
}

fn main() -> Result<(), Box<dyn Error>> {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("target").join("14_import_pytorch");
    let report = run(EPOCHS, &folder)?;
    println!("loaded from PyTorch: {}", report.loaded.join(", "));
    println!(
        "{} test images (the committed ones are the data file's: {})",
        report.test_samples, report.inputs_match_data
    );
    println!(
        "largest logit difference to PyTorch {:.3e} (probabilities {:.3e})",
        report.max_abs_diff, report.max_abs_diff_probabilities
    );
    println!("same most likely digit as PyTorch: {:.4}", report.argmax_agreement);
    println!("test accuracy {:.4} (PyTorch {:.4})", report.test_accuracy, report.pytorch_test_accuracy);
    println!(
        "trained here for {EPOCHS} epochs in {:.2} s: test accuracy {:.4}",
        report.train_seconds, report.trained_accuracy
    );
    println!(
        "saved {} (names, shapes and dtypes of PyTorch's state_dict: {}, reloads exactly: {})",
        report.trained_file.display(),
        report.same_names_and_shapes,
        report.round_trip_exact
    );
    println!("check it in PyTorch: python3 tools/interop/torch_digits.py check {}", report.trained_file.display());
    let line = JsonObject::new()
        .string("example", "14_import_pytorch")
        .exact_number("max_abs_diff", report.max_abs_diff.into())
        .number("argmax_agreement", report.argmax_agreement.into())
        .number("test_accuracy", report.test_accuracy.into())
        .number("pytorch_test_accuracy", report.pytorch_test_accuracy.into())
        .number("trained_here_accuracy", report.trained_accuracy.into());
    println!("{line}");
    Ok(())
}
