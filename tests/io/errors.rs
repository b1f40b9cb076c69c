//! Every `LoadError` variant from a crafted file: its fields, a message that names the
//! file, the tensor, and the expected and found shapes or dtypes, and a model state
//! left unchanged.
use crate::io_nets;

use io_nets::{bits, tensors, Classifier, Encoder, TempDir};
use nn_core::io::{
    from_safetensors_bytes, load_safetensors, to_safetensors_bytes, Dtype, LoadError, LoadOptions, SafeTensorError,
};
use nn_core::{Layer, Model};
use safetensors::tensor::TensorView;

/// One tensor of a crafted file.
struct Raw {
    name: String,
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

/// The tensors of `model`, as `F32` little-endian.
fn raw_tensors<L: Layer>(model: &Model<L>) -> Vec<Raw> {
    tensors(model)
        .into_iter()
        .map(|(name, shape, range)| Raw {
            name,
            dtype: Dtype::F32,
            shape,
            bytes: model.state()[range].iter().flat_map(|v| v.to_le_bytes()).collect(),
        })
        .collect()
}

/// A safetensors file of `raw`, written by the `safetensors` crate.
fn serialize(raw: &[Raw]) -> Vec<u8> {
    let views: Vec<(String, TensorView<'_>)> =
        raw.iter().map(|t| (t.name.clone(), TensorView::new(t.dtype, t.shape.clone(), &t.bytes).unwrap())).collect();
    safetensors::serialize(views, None).unwrap()
}

/// The classifier's file with `edit` applied to its tensors.
fn classifier_file(edit: impl FnOnce(&mut Vec<Raw>)) -> Vec<u8> {
    let mut raw = raw_tensors(&Model::<Classifier>::new(21));
    edit(&mut raw);
    serialize(&raw)
}

fn find<'a>(raw: &'a mut [Raw], name: &str) -> &'a mut Raw {
    raw.iter_mut().find(|t| t.name == name).unwrap()
}

/// Loads `bytes` into a classifier, expecting an error and an unchanged state.
fn rejected(bytes: &[u8], options: &LoadOptions) -> LoadError {
    let mut model = Model::<Classifier>::new(5);
    let before = bits(model.state());
    let error = from_safetensors_bytes(&mut model, bytes, options).expect_err("the load should fail");
    assert_eq!(bits(model.state()), before, "a failed load changed the state ({error})");
    error
}

fn assert_mentions(error: &LoadError, parts: &[&str]) {
    let message = error.to_string();
    for part in parts {
        assert!(message.contains(part), "`{message}` does not mention `{part}`");
    }
}

#[test]
fn missing_tensor() {
    let bytes = classifier_file(|raw| raw.retain(|t| t.name != "head.bias"));
    let error = rejected(&bytes, &LoadOptions::default());
    match &error {
        LoadError::MissingTensor { file: None, name, model_name, expected } => {
            assert_eq!(
                (name.as_str(), model_name.as_str(), expected.as_slice()),
                ("head.bias", "head.bias", &[10][..])
            );
        }
        other => panic!("expected MissingTensor, got {other:?}"),
    }
    assert_eq!(error.tensor(), Some("head.bias"));
    assert_mentions(&error, &["tensor `head.bias` is missing", "[10]"]);

    // With `allow_missing` the rest loads and the missing tensor keeps its values.
    let mut model = Model::<Classifier>::new(5);
    let bias_before = model.state()[Classifier::PARAMS - 10..].to_vec();
    let options = LoadOptions { allow_missing: true, ..Default::default() };
    let report = from_safetensors_bytes(&mut model, &bytes, &options).unwrap();
    assert_eq!(report.missing, ["head.bias"]);
    assert_eq!(report.loaded.len(), 5);
    assert_eq!(bits(&model.state()[Classifier::PARAMS - 10..]), bits(&bias_before));
    assert_eq!(bits(&model.state()[..Encoder::PARAMS]), bits(&Model::<Classifier>::new(21).state()[..Encoder::PARAMS]));
}

#[test]
fn unexpected_tensor() {
    let bytes = classifier_file(|raw| {
        raw.push(Raw { name: "head.scale".into(), dtype: Dtype::F32, shape: vec![2, 5], bytes: vec![0; 40] })
    });
    let error = rejected(&bytes, &LoadOptions::default());
    match &error {
        LoadError::UnexpectedTensor { name, shape, dtype, .. } => {
            assert_eq!((name.as_str(), shape.as_slice(), *dtype), ("head.scale", &[2, 5][..], Dtype::F32));
        }
        other => panic!("expected UnexpectedTensor, got {other:?}"),
    }
    assert_mentions(&error, &["unexpected tensor `head.scale`", "F32 [2, 5]", "allow_unexpected"]);

    let mut model = Model::<Classifier>::zeros();
    let options = LoadOptions { allow_unexpected: true, ..Default::default() };
    let report = from_safetensors_bytes(&mut model, &bytes, &options).unwrap();
    assert_eq!(report.unexpected, ["head.scale"]);
    assert_eq!(bits(model.state()), bits(Model::<Classifier>::new(21).state()));
}

#[test]
fn wrong_shape() {
    // The transposed layout: the same number of values, the wrong shape.
    let bytes = classifier_file(|raw| find(raw, "head.weight").shape = vec![16, 10]);
    let error = rejected(&bytes, &LoadOptions::default());
    match &error {
        LoadError::ShapeMismatch { name, model_name, expected, found, .. } => {
            assert_eq!(name, "head.weight");
            assert_eq!(model_name, "head.weight");
            assert_eq!((expected.as_slice(), found.as_slice()), (&[10, 16][..], &[16, 10][..]));
        }
        other => panic!("expected ShapeMismatch, got {other:?}"),
    }
    assert_mentions(&error, &["tensor `head.weight` has shape [16, 10], expected [10, 16]"]);

    // A different number of values, and a different rank.
    let bytes = classifier_file(|raw| {
        let t = find(raw, "encoder.fc1.bias");
        t.shape = vec![33];
        t.bytes.extend_from_slice(&[0; 4]);
    });
    assert_mentions(&rejected(&bytes, &LoadOptions::default()), &["`encoder.fc1.bias` has shape [33], expected [32]"]);
    let bytes = classifier_file(|raw| find(raw, "encoder.fc1.bias").shape = vec![4, 8]);
    assert_mentions(&rejected(&bytes, &LoadOptions::default()), &["has shape [4, 8], expected [32]"]);
}

#[test]
fn wrong_dtype() {
    for (dtype, width) in [(Dtype::F16, 2), (Dtype::BF16, 2), (Dtype::F64, 8), (Dtype::I64, 8), (Dtype::U8, 1)] {
        let bytes = classifier_file(|raw| {
            let t = find(raw, "head.bias");
            t.dtype = dtype;
            t.bytes = vec![0; 10 * width];
        });
        let error = rejected(&bytes, &LoadOptions::default());
        match &error {
            LoadError::DtypeMismatch { name, expected, found, .. } => {
                assert_eq!((name.as_str(), *expected, *found), ("head.bias", Dtype::F32, dtype));
            }
            other => panic!("expected DtypeMismatch, got {other:?}"),
        }
        assert_mentions(&error, &[&format!("tensor `head.bias` has dtype {dtype}, expected F32")]);
        // Only the float types convert, and only when asked to.
        let convert = LoadOptions { convert_dtypes: true, ..Default::default() };
        let mut model = Model::<Classifier>::new(5);
        let converted = from_safetensors_bytes(&mut model, &bytes, &convert);
        if matches!(dtype, Dtype::F16 | Dtype::BF16 | Dtype::F64 | Dtype::I64) {
            converted.unwrap();
            assert!(model.state()[Classifier::PARAMS - 10..].iter().all(|&v| v == 0.0));
        } else {
            assert!(matches!(converted, Err(LoadError::DtypeMismatch { .. })), "{dtype}");
        }
    }
}

#[test]
fn non_finite_values() {
    for (value, shown) in [(f32::NAN, "NaN"), (f32::INFINITY, "inf"), (f32::NEG_INFINITY, "-inf")] {
        // Element 37 of `encoder.fc2.weight [16, 32]` is at [1, 5]; a later one is bad too.
        let bytes = classifier_file(|raw| {
            let t = find(raw, "encoder.fc2.weight");
            t.bytes[37 * 4..38 * 4].copy_from_slice(&value.to_le_bytes());
            t.bytes[100 * 4..101 * 4].copy_from_slice(&f32::NAN.to_le_bytes());
        });
        let error = rejected(&bytes, &LoadOptions::default());
        match &error {
            LoadError::NonFinite { name, shape, index, value: found, .. } => {
                assert_eq!((name.as_str(), shape.as_slice(), *index), ("encoder.fc2.weight", &[16, 32][..], 37));
                assert_eq!(found.to_bits(), value.to_bits());
            }
            other => panic!("expected NonFinite, got {other:?}"),
        }
        assert_mentions(
            &error,
            &[&format!("tensor `encoder.fc2.weight` (shape [16, 32]) holds {shown} at element 37 (index [1, 5])")],
        );

        let mut model = Model::<Classifier>::zeros();
        let options = LoadOptions { allow_non_finite: true, ..Default::default() };
        from_safetensors_bytes(&mut model, &bytes, &options).unwrap();
        let start = tensors(&model).into_iter().find(|t| t.0 == "encoder.fc2.weight").unwrap().2.start;
        assert_eq!(model.state()[start + 37].to_bits(), value.to_bits());
    }
}

#[test]
fn truncated_and_corrupt_files() {
    let good = to_safetensors_bytes(&Model::<Classifier>::new(3));
    let header_len = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("7 bytes", good[..7].to_vec()),
        ("header cut", good[..8 + header_len / 2].to_vec()),
        ("data cut", good[..good.len() - 1].to_vec()),
        ("one byte more", [&good[..], &[0]].concat()),
        ("header length 2^64 - 1", [&u64::MAX.to_le_bytes()[..], &good[8..]].concat()),
        ("header length 100 MB + 1", [&100_000_001u64.to_le_bytes()[..], &good[8..]].concat()),
        ("not JSON", [&8u64.to_le_bytes()[..], b"not json"].concat()),
        ("not UTF-8", [&8u64.to_le_bytes()[..], &[0xff; 8]].concat()),
    ];
    let mut bad_offset = good.clone();
    let text = std::str::from_utf8(&good[8..8 + header_len]).unwrap();
    let at = 8 + text.find("\"data_offsets\":[0,").unwrap() + "\"data_offsets\":[".len();
    bad_offset[at] = b'4';
    cases.push(("offsets not from 0", bad_offset));
    // Offsets whose sum is nearly 2^64: `safetensors` 0.8's own reader overflows here.
    let span = (1u64 << 61) - 1;
    let mut header = String::from("{");
    for i in 0..8u64 {
        let sep = if i > 0 { "," } else { "" };
        header += &format!(
            r#"{sep}"t{i}":{{"dtype":"U8","shape":[{span}],"data_offsets":[{},{}]}}"#,
            i * span,
            (i + 1) * span
        );
    }
    header.push('}');
    cases.push(("offsets summing to 2^64 - 8", [&(header.len() as u64).to_le_bytes()[..], header.as_bytes()].concat()));

    for (case, bytes) in cases {
        let error = rejected(&bytes, &LoadOptions::default());
        match &error {
            LoadError::Format { source, .. } => {
                assert!(std::error::Error::source(&error).is_some(), "{case}");
                if case == "header length 2^64 - 1" || case == "header length 100 MB + 1" {
                    assert!(matches!(source, SafeTensorError::HeaderTooLarge), "{case}: {source:?}");
                }
            }
            other => panic!("{case}: expected Format, got {other:?}"),
        }
        assert_mentions(&error, &["not a valid safetensors file"]);
    }
}

#[test]
fn io_errors_and_file_names() {
    let dir = TempDir::new("io-errors");
    let path = dir.join("missing.safetensors");
    let mut model = Model::<Classifier>::new(5);
    let error = load_safetensors(&mut model, &path, &LoadOptions::default()).unwrap_err();
    match &error {
        LoadError::Io { file, source } => {
            assert_eq!(file.as_deref(), Some(path.as_path()));
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected Io, got {other:?}"),
    }
    assert_mentions(&error, &[&path.display().to_string(), "cannot read the file"]);

    // Errors about the contents of a file name the file too.
    let path = dir.join("encoder.safetensors");
    std::fs::write(&path, to_safetensors_bytes(&Model::<Encoder>::new(1))).unwrap();
    let before = bits(model.state());
    let error = load_safetensors(&mut model, &path, &LoadOptions::default()).unwrap_err();
    assert_eq!(error.file(), Some(path.as_path()));
    assert_eq!(bits(model.state()), before);
    let message = error.to_string();
    assert!(message.starts_with(&format!("{}: tensor `encoder.fc1.weight` is missing", path.display())), "{message}");
}

/// The first problem in `state_dict` order is reported, whatever the file's order.
#[test]
fn the_first_problem_in_state_dict_order_is_reported() {
    let bytes = classifier_file(|raw| {
        find(raw, "head.weight").shape = vec![160];
        raw.retain(|t| t.name != "encoder.fc2.bias");
        let t = find(raw, "encoder.fc1.weight");
        t.bytes[..4].copy_from_slice(&f32::NAN.to_le_bytes());
    });
    assert!(matches!(rejected(&bytes, &LoadOptions::default()), LoadError::NonFinite { index: 0, .. }));
    let lenient = LoadOptions { allow_non_finite: true, ..Default::default() };
    assert!(matches!(rejected(&bytes, &lenient), LoadError::MissingTensor { .. }));
    let lenient = LoadOptions { allow_missing: true, ..lenient };
    assert!(matches!(rejected(&bytes, &lenient), LoadError::ShapeMismatch { .. }));
}

#[test]
fn errors_are_std_errors() {
    fn is_error<E: std::error::Error + Send + Sync + 'static>() {}
    is_error::<LoadError>();
    is_error::<nn_core::io::SaveError>();
}
