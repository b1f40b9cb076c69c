//! Golden fixtures written by `tools/fixtures/generate.py`: safetensors files of f32
//! tensors and string metadata, read with the `safetensors` crate.
//!
//! A test helper: a missing file, tensor or metadata key is a bug in the test or the
//! fixtures, so it panics with the file and the name it looked for.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use safetensors::{Dtype, SafeTensors};

/// One stored tensor: its PyTorch shape and its values, row-major.
#[derive(Clone, Debug)]
pub struct FixtureTensor {
    /// The shape (`[]` for a scalar).
    pub shape: Vec<usize>,
    /// The values.
    pub values: Vec<f32>,
}

/// The tensors and metadata of one fixture file.
#[derive(Clone, Debug)]
pub struct Fixture {
    /// The file name without `.safetensors`.
    pub name: String,
    tensors: BTreeMap<String, FixtureTensor>,
    metadata: BTreeMap<String, String>,
}

impl Fixture {
    /// The directory of the committed fixtures.
    pub fn dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures")
    }

    /// The names of every fixture file in [`Fixture::dir`], sorted.
    pub fn all() -> Vec<String> {
        let dir = Self::dir();
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        let mut names: Vec<String> = entries
            .map(|entry| entry.unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display())).path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "safetensors"))
            .filter_map(|path| path.file_stem().and_then(|s| s.to_str()).map(str::to_owned))
            .collect();
        names.sort();
        names
    }

    /// Reads `tests/fixtures/<name>.safetensors`.
    pub fn load(name: &str) -> Fixture {
        let path = Self::dir().join(format!("{name}.safetensors"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| {
            panic!("cannot read fixture {}: {e} (regenerate with `python3 tools/fixtures/generate.py`)", path.display())
        });
        let file = SafeTensors::deserialize(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut tensors = BTreeMap::new();
        for (tensor_name, view) in file.tensors() {
            assert_eq!(view.dtype(), Dtype::F32, "{}: tensor `{tensor_name}` is not F32", path.display());
            let values = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            tensors.insert(tensor_name, FixtureTensor { shape: view.shape().to_vec(), values });
        }
        let (_, header) = SafeTensors::read_metadata(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let metadata = header.metadata().clone().unwrap_or_default().into_iter().collect();
        Fixture { name: name.to_owned(), tensors, metadata }
    }

    /// The tensor `name`.
    pub fn tensor(&self, name: &str) -> &FixtureTensor {
        self.tensors.get(name).unwrap_or_else(|| {
            panic!(
                "fixture `{}` has no tensor `{name}`; it has {:?}",
                self.name,
                self.tensors.keys().collect::<Vec<_>>()
            )
        })
    }

    /// The values of tensor `name`.
    pub fn values(&self, name: &str) -> &[f32] {
        &self.tensor(name).values
    }

    /// The shape of tensor `name`.
    pub fn shape(&self, name: &str) -> &[usize] {
        &self.tensor(name).shape
    }

    /// Whether the fixture holds tensor `name`.
    pub fn has(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// The tensor names, sorted.
    pub fn tensor_names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// The metadata value `key`.
    pub fn meta(&self, key: &str) -> &str {
        self.metadata.get(key).map(String::as_str).unwrap_or_else(|| {
            panic!(
                "fixture `{}` has no metadata `{key}`; it has {:?}",
                self.name,
                self.metadata.keys().collect::<Vec<_>>()
            )
        })
    }

    /// The option `key` of the case (metadata `option.<key>`), if present.
    pub fn option(&self, key: &str) -> Option<&str> {
        self.metadata.get(&format!("option.{key}")).map(String::as_str)
    }

    /// The option `key` as a number.
    pub fn option_f32(&self, key: &str) -> f32 {
        let text = self.option(key).unwrap_or_else(|| panic!("fixture `{}` has no option `{key}`", self.name));
        text.parse()
            .unwrap_or_else(|e| panic!("fixture `{}`: option `{key}` = `{text}` is not a number: {e}", self.name))
    }

    /// The batch size recorded in the metadata.
    pub fn batch(&self) -> usize {
        let text = self.meta("batch");
        text.parse().unwrap_or_else(|e| panic!("fixture `{}`: batch `{text}`: {e}", self.name))
    }
}

/// Asserts `|actual - expected| <= atol + rtol * |expected|` elementwise (NaN never
/// passes). On failure it reports the first mismatching index with both values, the
/// number of mismatches and the largest absolute error.
#[track_caller]
pub fn assert_close(name: &str, actual: &[f32], expected: &[f32], rtol: f32, atol: f32) {
    assert_eq!(actual.len(), expected.len(), "{name}: {} values, expected {}", actual.len(), expected.len());
    let mut first = None;
    let mut mismatches = 0;
    let (mut max_err, mut max_at) = (0.0f32, 0);
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        let err = (a - e).abs();
        if err > max_err || err.is_nan() && !max_err.is_nan() {
            (max_err, max_at) = (err, i);
        }
        // False when either side is NaN, so a NaN never passes.
        let within = err <= atol + rtol * e.abs();
        if !within {
            mismatches += 1;
            first.get_or_insert((i, a, e));
        }
    }
    if let Some((i, a, e)) = first {
        panic!(
            "{name}: {mismatches} of {} values differ (rtol {rtol:e}, atol {atol:e}); first at index {i}: \
             actual {a:e}, expected {e:e} (error {:e}); max error {max_err:e} at index {max_at} \
             (actual {:e}, expected {:e})",
            actual.len(),
            (a - e).abs(),
            actual[max_at],
            expected[max_at],
        );
    }
}
