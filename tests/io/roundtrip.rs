//! Saving and loading models as safetensors: bit-exact round trips, PyTorch `state_dict`
//! names, shapes and dtypes, files written by the `safetensors` crate and by PyTorch.
use crate::io_nets;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use io_nets::{bits, tensors, Centered, Classifier, Encoder, Normed, TempDir};
use nn_core::io::{
    from_safetensors_bytes, load_safetensors, save_safetensors, save_safetensors_with, to_safetensors_bytes,
    to_safetensors_bytes_with, Dtype, LoadError, LoadOptions, SaveOptions,
};
use nn_core::{Layer, Model};
use safetensors::tensor::TensorView;
use safetensors::SafeTensors;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("io_fixtures").join(name)
}

/// A classifier whose state also holds the awkward floats: signed zeros, subnormals,
/// the extremes.
fn awkward_classifier() -> Model<Classifier> {
    let mut model = Model::<Classifier>::new(11);
    let specials = [-0.0, 0.0, f32::MIN_POSITIVE, f32::from_bits(1), -f32::from_bits(0x007f_ffff), f32::MAX, f32::MIN];
    for (i, v) in specials.into_iter().enumerate() {
        model.state_mut()[i * 97] = v;
    }
    model
}

#[test]
fn round_trip_through_bytes_is_bit_exact() {
    let model = awkward_classifier();
    let bytes = to_safetensors_bytes(&model);
    let mut loaded = Model::<Classifier>::zeros();
    let report = from_safetensors_bytes(&mut loaded, &bytes, &LoadOptions::default()).unwrap();
    assert_eq!(bits(loaded.state()), bits(model.state()));
    assert_eq!(
        report.loaded,
        [
            "encoder.fc1.weight",
            "encoder.fc1.bias",
            "encoder.fc2.weight",
            "encoder.fc2.bias",
            "head.weight",
            "head.bias"
        ]
    );
    assert!(report.missing.is_empty() && report.unexpected.is_empty() && report.metadata.is_empty());
}

#[test]
fn round_trip_through_a_file_is_bit_exact() {
    let dir = TempDir::new("io-roundtrip");
    let path = dir.join("classifier.safetensors");
    let model = awkward_classifier();
    save_safetensors(&model, &path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), to_safetensors_bytes(&model));
    let mut loaded = Model::<Classifier>::new(99);
    load_safetensors(&mut loaded, &path, &LoadOptions::default()).unwrap();
    assert_eq!(bits(loaded.state()), bits(model.state()));
    // Saving again replaces the file; no temporary file is left behind.
    save_safetensors(&Model::<Classifier>::new(5), &path).unwrap();
    assert_eq!(dir.files(), ["classifier.safetensors"]);
}

#[test]
fn tensors_carry_state_dict_names_shapes_and_little_endian_f32() {
    let model = Model::<Classifier>::new(3);
    let bytes = to_safetensors_bytes(&model);
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let mut names = file.names();
    names.sort();
    assert_eq!(
        names,
        [
            "encoder.fc1.bias",
            "encoder.fc1.weight",
            "encoder.fc2.bias",
            "encoder.fc2.weight",
            "head.bias",
            "head.weight"
        ]
    );
    let expected_shapes: HashMap<&str, Vec<usize>> = HashMap::from([
        ("encoder.fc1.weight", vec![32, 64]),
        ("encoder.fc1.bias", vec![32]),
        ("encoder.fc2.weight", vec![16, 32]),
        ("encoder.fc2.bias", vec![16]),
        ("head.weight", vec![10, 16]),
        ("head.bias", vec![10]),
    ]);
    for (name, shape, range) in tensors(&model) {
        let view = file.tensor(&name).unwrap();
        assert_eq!(view.dtype(), Dtype::F32, "{name}");
        assert_eq!(view.shape(), expected_shapes[name.as_str()].as_slice(), "{name}");
        assert_eq!(shape, view.shape(), "{name}");
        let le: Vec<u8> = model.state()[range].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(view.data(), le.as_slice(), "{name}");
    }
}

#[test]
fn buffers_are_saved_and_loaded_under_their_state_dict_names() {
    let model = Model::<Centered>::new(4);
    assert_eq!(Centered::PARAMS, 8 + 24 + 3);
    assert_eq!(Centered::BUFFERS, 8);
    let bytes = to_safetensors_bytes(&model);
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let mean = file.tensor("norm.running_mean").unwrap();
    assert_eq!(mean.shape(), [8]);
    let buffers: Vec<u8> = model.buffers().iter().flat_map(|v| v.to_le_bytes()).collect();
    assert_eq!(mean.data(), buffers.as_slice());

    let mut loaded = Model::<Centered>::zeros();
    let report = from_safetensors_bytes(&mut loaded, &bytes, &LoadOptions::default()).unwrap();
    assert_eq!(report.loaded, ["norm.weight", "norm.running_mean", "fc.weight", "fc.bias"]);
    assert_eq!(bits(loaded.buffers()), bits(model.buffers()));
    assert_eq!(bits(loaded.params()), bits(model.params()));
}

/// The `safetensors` crate's own serialisation of the model's tensors.
fn crate_serialize(model: &Model<Classifier>, metadata: Option<HashMap<String, String>>) -> Vec<u8> {
    let data: Vec<(String, Vec<usize>, Vec<u8>)> = tensors(model)
        .into_iter()
        .map(|(name, shape, range)| (name, shape, model.state()[range].iter().flat_map(|v| v.to_le_bytes()).collect()))
        .collect();
    let views: Vec<(String, TensorView<'_>)> = data
        .iter()
        .map(|(name, shape, bytes)| (name.clone(), TensorView::new(Dtype::F32, shape.clone(), bytes).unwrap()))
        .collect();
    safetensors::serialize(views, metadata).unwrap()
}

#[test]
fn bytes_are_those_the_safetensors_crate_writes() {
    let model = Model::<Classifier>::new(8);
    assert_eq!(to_safetensors_bytes(&model), crate_serialize(&model, None));
    let options = SaveOptions { metadata: BTreeMap::from([("format".into(), "pt".into())]), ..Default::default() };
    assert_eq!(
        to_safetensors_bytes_with(&model, &options).unwrap(),
        crate_serialize(&model, Some(HashMap::from([("format".into(), "pt".into())])))
    );
}

#[test]
fn metadata_is_saved_sorted_and_read_back() {
    let model = Model::<Encoder>::new(1);
    let metadata = BTreeMap::from([
        ("format".to_string(), "pt".to_string()),
        ("epochs".to_string(), "12".to_string()),
        ("note".to_string(), "quotes \" and \\ and unicode \u{e9}\n".to_string()),
    ]);
    let options = SaveOptions { metadata: metadata.clone(), ..Default::default() };
    let bytes = to_safetensors_bytes_with(&model, &options).unwrap();
    // The same model and metadata always give the same bytes.
    assert_eq!(bytes, to_safetensors_bytes_with(&model, &options).unwrap());
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    assert_eq!(header_len % 8, 0);
    let header = std::str::from_utf8(&bytes[8..8 + header_len]).unwrap();
    assert!(header.starts_with(r#"{"__metadata__":{"epochs":"12","format":"pt","note":"#), "{header}");

    let file = SafeTensors::read_metadata(&bytes).unwrap().1;
    let read: BTreeMap<String, String> = file.metadata().clone().unwrap().into_iter().collect();
    assert_eq!(read, metadata);

    let mut loaded = Model::<Encoder>::zeros();
    let report = from_safetensors_bytes(&mut loaded, &bytes, &LoadOptions::default()).unwrap();
    assert_eq!(report.metadata, metadata);

    let dir = TempDir::new("io-metadata");
    let path = dir.join("encoder.safetensors");
    save_safetensors_with(&model, &path, &options).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[test]
fn save_prefix_names_the_model_as_a_sub_module() {
    let model = Model::<Encoder>::new(2);
    for prefix in ["encoder", "encoder."] {
        let options = SaveOptions { prefix: Some(prefix.into()), ..Default::default() };
        let bytes = to_safetensors_bytes_with(&model, &options).unwrap();
        let file = SafeTensors::deserialize(&bytes).unwrap();
        let mut names = file.names();
        names.sort();
        assert_eq!(names, ["encoder.fc1.bias", "encoder.fc1.weight", "encoder.fc2.bias", "encoder.fc2.weight"]);
    }
}

/// A file laid out as Python's `safetensors.torch.save_file(module.state_dict(), ..)`
/// writes it (the crate's serialiser, `{"format": "pt"}` metadata, tensors given in
/// an arbitrary order), with independently generated values.
#[test]
fn file_in_the_python_save_file_convention_loads() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let shapes: [(&str, &[usize]); 6] = [
        ("head.bias", &[10]),
        ("encoder.fc2.weight", &[16, 32]),
        ("encoder.fc1.bias", &[32]),
        ("head.weight", &[10, 16]),
        ("encoder.fc1.weight", &[32, 64]),
        ("encoder.fc2.bias", &[16]),
    ];
    let values: BTreeMap<&str, Vec<f32>> =
        shapes.iter().map(|(name, shape)| (*name, (0..shape.iter().product()).map(|_| next()).collect())).collect();
    let bytes: BTreeMap<&str, Vec<u8>> =
        values.iter().map(|(name, v)| (*name, v.iter().flat_map(|x| x.to_le_bytes()).collect())).collect();
    let views: Vec<(&str, TensorView<'_>)> = shapes
        .iter()
        .map(|(name, shape)| (*name, TensorView::new(Dtype::F32, shape.to_vec(), &bytes[name]).unwrap()))
        .collect();
    let file = safetensors::serialize(views, Some(HashMap::from([("format".into(), "pt".into())]))).unwrap();

    let mut model = Model::<Classifier>::new(1);
    let report = from_safetensors_bytes(&mut model, &file, &LoadOptions::default()).unwrap();
    assert_eq!(report.metadata["format"], "pt");
    for (name, _, range) in tensors(&model) {
        assert_eq!(bits(&model.state()[range]), bits(&values[name.as_str()]), "{name}");
    }
}

/// A file PyTorch wrote (`tests/io_fixtures/generate.py`): the `state_dict` of the
/// same classifier loads, and the model then predicts what PyTorch predicted.
#[test]
fn file_written_by_pytorch_loads_and_predicts_as_pytorch() {
    let mut model = Model::<Classifier>::zeros();
    let report =
        load_safetensors(&mut model, fixture("torch_classifier.safetensors"), &LoadOptions::default()).unwrap();
    assert_eq!(report.loaded.len(), 6);
    assert_eq!(report.metadata, BTreeMap::from([("format".into(), "pt".into())]));

    let io = read_all(&fixture("torch_classifier_io.safetensors"));
    let (x, expected) = (&io["input"], &io["output"]);
    let mut y = vec![0.0; 3 * 10];
    let mut scratch = vec![0.0; 3 * Classifier::SCRATCH];
    model.forward_slices(x, &mut y, &mut scratch);
    for (i, (&got, &want)) in y.iter().zip(expected).enumerate() {
        assert!((got - want).abs() <= 1e-5 * (1.0 + want.abs()), "output {i}: {got} vs PyTorch {want}");
    }
}

fn load_prefixed(prefix: &str, options: LoadOptions) -> Result<Model<Centered>, LoadError> {
    let mut model = Model::<Centered>::zeros();
    let options = LoadOptions { prefix: Some(prefix.into()), ..options };
    load_safetensors(&mut model, fixture("torch_dtypes.safetensors"), &options)?;
    Ok(model)
}

/// F16, BF16 and F64 tensors written by PyTorch load with `convert_dtypes` to exactly
/// the floats PyTorch's own `.to(torch.float32)` gives.
#[test]
fn f16_bf16_and_f64_convert_as_pytorch_converts_them() {
    let convert = LoadOptions { convert_dtypes: true, ..Default::default() };
    for tag in ["bf16", "f64"] {
        let converted = load_prefixed(&format!("{tag}."), convert.clone()).unwrap();
        let reference = load_prefixed(&format!("{tag}_as_f32."), LoadOptions::default()).unwrap();
        assert_eq!(bits(converted.state()), bits(reference.state()), "{tag}");
    }
    // The halves include 1e30 and 123456.789, which overflow F16 to infinity.
    let allow = LoadOptions { allow_non_finite: true, ..convert.clone() };
    let converted = load_prefixed("f16.", allow.clone()).unwrap();
    let reference = load_prefixed("f16_as_f32.", allow).unwrap();
    assert_eq!(bits(converted.state()), bits(reference.state()));
    assert!(converted.state().iter().any(|v| *v != 0.0 && v.abs() < 1e-7), "subnormal halves are kept");

    match load_prefixed("f16.", convert) {
        Err(LoadError::NonFinite { name, index, value, .. }) => {
            assert_eq!((name.as_str(), index, value), ("f16.fc.weight", 13, f32::INFINITY));
        }
        other => panic!("expected NonFinite, got {other:?}"),
    }
    for (tag, dtype) in [("f16", Dtype::F16), ("bf16", Dtype::BF16), ("f64", Dtype::F64)] {
        match load_prefixed(&format!("{tag}."), LoadOptions::default()) {
            Err(e @ LoadError::DtypeMismatch { .. }) => {
                let message = e.to_string();
                assert!(message.contains(&format!("{tag}.norm.weight")), "{message}");
                assert!(message.contains(&format!("has dtype {dtype}, expected F32")), "{message}");
                assert!(message.contains("convert_dtypes"), "{message}");
            }
            other => panic!("expected DtypeMismatch for {tag}, got {other:?}"),
        }
    }
}

/// PyTorch's batch norm keeps `num_batches_tracked` as an `I64` scalar; the model keeps
/// it as an `f32`. Strict loading reports the dtype; `convert_dtypes` converts it, and
/// the model then predicts (in inference mode, from the running statistics) what
/// PyTorch predicted.
#[test]
fn pytorch_batch_norm_state_loads_with_its_integer_counter_converted() {
    let path = fixture("torch_batchnorm.safetensors");
    let mut model = Model::<Normed>::new(1);
    let before = bits(model.state());
    match load_safetensors(&mut model, &path, &LoadOptions::default()) {
        Err(e @ LoadError::DtypeMismatch { found: Dtype::I64, .. }) => {
            assert_eq!(e.tensor(), Some("bn.num_batches_tracked"));
            assert!(e.to_string().contains("has dtype I64, expected F32 (set `LoadOptions::convert_dtypes`"), "{e}");
        }
        other => panic!("expected DtypeMismatch, got {other:?}"),
    }
    assert_eq!(bits(model.state()), before);

    let convert = LoadOptions { convert_dtypes: true, ..Default::default() };
    let report = load_safetensors(&mut model, &path, &convert).unwrap();
    assert_eq!(
        report.loaded,
        ["bn.weight", "bn.bias", "bn.running_mean", "bn.running_var", "bn.num_batches_tracked", "fc.weight", "fc.bias"]
    );
    assert_eq!(model.buffers()[8], 3.0, "num_batches_tracked");

    let file = read_all(&path);
    let (x, expected) = (&file["__input"], &file["__output"]);
    let mut y = vec![0.0; 5 * 2];
    let mut scratch = vec![0.0; 5 * Normed::SCRATCH];
    model.forward_slices(x, &mut y, &mut scratch);
    for (i, (&got, &want)) in y.iter().zip(expected).enumerate() {
        assert!((got - want).abs() <= 1e-5 * (1.0 + want.abs()), "output {i}: {got} vs PyTorch {want}");
    }
}

/// The `F32` tensors of a safetensors file, skipping the others.
fn read_all(path: &std::path::Path) -> BTreeMap<String, Vec<f32>> {
    let bytes = std::fs::read(path).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    file.tensors()
        .into_iter()
        .filter(|(_, view)| view.dtype() == Dtype::F32)
        .map(|(name, view)| {
            (name, view.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect())
        })
        .collect()
}
