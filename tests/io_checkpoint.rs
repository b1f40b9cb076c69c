//! Checkpoints: model, optimizer state and counters in one safetensors file; resuming
//! is bit-exact; a save that fails or crashes midway never destroys the previous
//! checkpoint; files that are not checkpoints are rejected without touching the model.
#[path = "common/io_nets.rs"]
mod io_nets;

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};

use io_nets::{bits, tensors, Centered, Classifier, Encoder, TempDir};
use nn_core::io::{
    from_safetensors_bytes, load_safetensors, write_file_atomically, Checkpoint, Dtype, LoadError, LoadOptions,
    SaveError,
};
use nn_core::prelude::*;
use safetensors::tensor::TensorView;
use safetensors::SafeTensors;

/// A deterministic stand-in for a gradient: depends on the parameters, the step and
/// the seed word, so that a resumed run only matches if all three were restored.
fn gradient(params: &[f32], step: u64, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed ^ step.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    params.iter().map(|&p| 0.1 * p.sin() + 0.01 * rng.normal()).collect()
}

/// Runs `steps` Adam steps on `model`.
fn train(model: &mut Model<Classifier>, optimizer: &mut OptimizerState<Adam>, seed: u64, steps: u64) {
    for _ in 0..steps {
        let g = gradient(model.params(), optimizer.steps(), seed);
        optimizer.step(model.params_mut(), &g);
    }
}

#[test]
fn resuming_from_a_checkpoint_continues_bit_exactly() {
    let dir = TempDir::new("io-ckpt-resume");
    let path = dir.join("run.ckpt.safetensors");
    let seed = 0xfeed_beef;
    let mut model = Model::<Classifier>::new(1);
    let mut optimizer = OptimizerState::new(Adam::new(0.01));
    train(&mut model, &mut optimizer, seed, 7);

    let metadata = BTreeMap::from([("run".to_string(), "resume-test".to_string())]);
    let checkpoint = Checkpoint {
        epoch: 3,
        optimizer_step: optimizer.steps(),
        optimizer_state: optimizer.state(),
        seed,
        metadata: metadata.clone(),
    };
    checkpoint.save(&model, &path).unwrap();

    // The uninterrupted run.
    train(&mut model, &mut optimizer, seed, 5);

    // The resumed run: a fresh process would start from zeros and a fresh optimizer.
    let mut resumed = Model::<Classifier>::zeros();
    let loaded = Checkpoint::load(&mut resumed, &path).unwrap();
    assert_eq!((loaded.epoch, loaded.optimizer_step, loaded.seed), (3, 7, seed));
    assert_eq!(loaded.metadata, metadata);
    assert_eq!(loaded.optimizer_state.len(), 2 * Classifier::PARAMS);
    let mut resumed_optimizer = OptimizerState::new(Adam::new(0.01));
    resumed_optimizer.restore(loaded.optimizer_step, &loaded.optimizer_state, Classifier::PARAMS).unwrap();
    train(&mut resumed, &mut resumed_optimizer, loaded.seed, 5);

    assert_eq!(bits(resumed.state()), bits(model.state()));
    assert_eq!(bits(resumed_optimizer.state()), bits(optimizer.state()));
}

#[test]
fn a_checkpoint_is_one_safetensors_file_and_also_a_model_file() {
    let model = Model::<Centered>::new(2);
    let state: Vec<f32> = (0..2 * Centered::PARAMS).map(|i| i as f32 * 0.5 - 3.0).collect();
    let checkpoint = Checkpoint {
        epoch: 11,
        optimizer_step: 1234,
        optimizer_state: &state[..],
        seed: u64::MAX,
        metadata: BTreeMap::from([("lr".into(), "0.001".into())]),
    };
    let bytes = checkpoint.to_bytes(&model).unwrap();

    // Read by the `safetensors` crate: model tensors, the optimizer tensor, counters.
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let mut names = file.names();
    names.sort();
    assert_eq!(names, ["__optimizer.state", "fc.bias", "fc.weight", "norm.running_mean", "norm.weight"]);
    let opt = file.tensor("__optimizer.state").unwrap();
    assert_eq!((opt.dtype(), opt.shape()), (Dtype::F32, &[2 * Centered::PARAMS][..]));
    let metadata: BTreeMap<String, String> =
        SafeTensors::read_metadata(&bytes).unwrap().1.metadata().clone().unwrap().into_iter().collect();
    let expected: BTreeMap<String, String> = [
        ("__checkpoint.epoch", "11"),
        ("__checkpoint.format", "nn-core.checkpoint.1"),
        ("__checkpoint.seed", "18446744073709551615"),
        ("__optimizer.step", "1234"),
        ("lr", "0.001"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(metadata, expected);

    // A plain load takes the model's tensors and ignores the optimizer's.
    let mut plain = Model::<Centered>::zeros();
    let report = from_safetensors_bytes(&mut plain, &bytes, &LoadOptions::default()).unwrap();
    assert!(report.unexpected.is_empty());
    assert_eq!(bits(plain.state()), bits(model.state()));

    // A checkpoint load gives everything back, the user's metadata without the counters.
    let mut restored = Model::<Centered>::zeros();
    let loaded = Checkpoint::from_bytes(&mut restored, &bytes).unwrap();
    assert_eq!(bits(restored.state()), bits(model.state()));
    assert_eq!(bits(&loaded.optimizer_state), bits(&state));
    assert_eq!((loaded.epoch, loaded.optimizer_step, loaded.seed), (11, 1234, u64::MAX));
    assert_eq!(loaded.metadata, BTreeMap::from([("lr".into(), "0.001".into())]));

    // An optimizer without state (plain SGD) saves an empty tensor.
    let empty = Checkpoint { optimizer_state: Vec::new(), ..Checkpoint::default() };
    let loaded = Checkpoint::from_bytes(&mut restored, &empty.to_bytes(&model).unwrap()).unwrap();
    assert_eq!(loaded, empty);
}

/// A writer that fails with "storage full" after `left` bytes.
struct FailAfter<'a> {
    inner: &'a mut dyn Write,
    left: usize,
}

impl Write for FailAfter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Err(io::Error::new(io::ErrorKind::StorageFull, "simulated: no space left on device"));
        }
        let n = buf.len().min(self.left);
        self.inner.write_all(&buf[..n])?;
        self.left -= n;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn checkpoint_of(optimizer_state: &[f32], epoch: u64) -> Checkpoint<&[f32]> {
    Checkpoint { epoch, optimizer_step: epoch * 10, optimizer_state, seed: 7, metadata: BTreeMap::new() }
}

#[test]
fn a_save_that_fails_midway_leaves_the_previous_checkpoint_intact() {
    let dir = TempDir::new("io-ckpt-fail");
    let path = dir.join("model.ckpt");
    let old_model = Model::<Classifier>::new(1);
    let old_state = vec![0.25; 2 * Classifier::PARAMS];
    checkpoint_of(&old_state, 1).save(&old_model, &path).unwrap();
    let old_bytes = std::fs::read(&path).unwrap();

    let new_model = Model::<Classifier>::new(2);
    let new_state = vec![0.5; 2 * Classifier::PARAMS];
    let new = checkpoint_of(&new_state, 2);
    let full = new.to_bytes(&new_model).unwrap().len();
    // The disk fills up before the header, inside it, inside the data, at the last byte.
    for cut in [0, 5, 100, full / 2, full - 1] {
        let error = write_file_atomically(&path, |w| new.write(&new_model, &mut FailAfter { inner: w, left: cut }))
            .expect_err("the save should fail");
        match &error {
            SaveError::Io { file, source } => {
                assert_eq!(file.as_deref(), Some(path.as_path()));
                assert_eq!(source.kind(), io::ErrorKind::StorageFull);
            }
            other => panic!("expected Io, got {other:?}"),
        }
        assert!(error.to_string().contains("model.ckpt"), "{error}");
        assert_eq!(std::fs::read(&path).unwrap(), old_bytes, "cut at {cut}");
        assert_eq!(dir.files(), ["model.ckpt"], "the temporary file is removed");
    }
    let mut model = Model::<Classifier>::zeros();
    let loaded = Checkpoint::load(&mut model, &path).unwrap();
    assert_eq!(loaded.epoch, 1);
    assert_eq!(bits(&loaded.optimizer_state), bits(&old_state));
    assert_eq!(bits(model.state()), bits(old_model.state()));

    // With room on the disk, the new checkpoint replaces the old one.
    new.save(&new_model, &path).unwrap();
    assert_eq!(Checkpoint::load(&mut model, &path).unwrap().epoch, 2);
    assert_eq!(bits(model.state()), bits(new_model.state()));
}

#[test]
fn a_crash_midway_leaves_the_previous_checkpoint_intact() {
    let dir = TempDir::new("io-ckpt-crash");
    let path = dir.join("model.ckpt");
    let old_model = Model::<Classifier>::new(3);
    checkpoint_of(&[1.0, 2.0], 1).save(&old_model, &path).unwrap();

    // The process dies (here: a panic unwinds) with half of the new file written.
    let new_model = Model::<Classifier>::new(4);
    let new_bytes = checkpoint_of(&[3.0, 4.0], 2).to_bytes(&new_model).unwrap();
    let crashed = std::panic::catch_unwind(|| {
        write_file_atomically(&path, |w| {
            w.write_all(&new_bytes[..new_bytes.len() / 2])?;
            w.flush()?;
            panic!("simulated crash while saving");
        })
    });
    assert!(crashed.is_err());

    // The previous checkpoint loads; the stray temporary file holds the partial write.
    let mut model = Model::<Classifier>::zeros();
    assert_eq!(Checkpoint::load(&mut model, &path).unwrap().optimizer_state, [1.0, 2.0]);
    assert_eq!(bits(model.state()), bits(old_model.state()));
    let files = dir.files();
    assert_eq!(files.len(), 2, "{files:?}");
    let stray = files.iter().find(|f| f.ends_with(".tmp")).unwrap();
    assert!(stray.starts_with(".model.ckpt."), "{stray}");
    assert_eq!(std::fs::read(dir.join(stray)).unwrap(), &new_bytes[..new_bytes.len() / 2]);

    // The next save is not disturbed by it.
    checkpoint_of(&[3.0, 4.0], 2).save(&new_model, &path).unwrap();
    assert_eq!(Checkpoint::load(&mut model, &path).unwrap().optimizer_state, [3.0, 4.0]);
}

#[test]
fn saving_where_the_file_cannot_be_written_fails_cleanly() {
    let dir = TempDir::new("io-ckpt-unwritable");
    let model = Model::<Encoder>::new(1);
    let checkpoint = checkpoint_of(&[], 1);

    // A directory that does not exist.
    let path = dir.join("no-such-dir").join("model.ckpt");
    match checkpoint.save(&model, &path) {
        Err(SaveError::Io { file, source }) => {
            assert_eq!(file.as_deref(), Some(path.as_path()));
            assert_eq!(source.kind(), io::ErrorKind::NotFound);
        }
        other => panic!("expected Io, got {other:?}"),
    }

    // A directory in the way of the file: the rename fails, the temporary file goes.
    let path = dir.join("taken");
    std::fs::create_dir(&path).unwrap();
    assert!(matches!(checkpoint.save(&model, &path), Err(SaveError::Io { .. })));
    assert_eq!(dir.files(), ["taken"]);

    // A read-only directory (only enforced for users without root's override).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let locked = dir.join("locked");
        std::fs::create_dir(&locked).unwrap();
        let path = locked.join("model.ckpt");
        checkpoint.save(&model, &path).unwrap();
        let before = std::fs::read(&path).unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
        let enforced = std::fs::File::create(locked.join("probe")).is_err();
        let result = checkpoint_of(&[9.0], 2).save(&Model::<Encoder>::new(2), &path);
        if enforced {
            assert!(matches!(result, Err(SaveError::Io { .. })), "{result:?}");
            assert_eq!(std::fs::read(&path).unwrap(), before);
        }
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

#[test]
fn reserved_metadata_keys_are_refused_before_writing() {
    let dir = TempDir::new("io-ckpt-reserved");
    let path = dir.join("model.ckpt");
    let mut checkpoint = checkpoint_of(&[], 1);
    checkpoint.metadata.insert("__checkpoint.epoch".into(), "99".into());
    match checkpoint.save(&Model::<Encoder>::new(1), &path) {
        Err(SaveError::ReservedMetadataKey { key }) => assert_eq!(key, "__checkpoint.epoch"),
        other => panic!("expected ReservedMetadataKey, got {other:?}"),
    }
    assert!(dir.files().is_empty());
}

/// A checkpoint file rebuilt by the `safetensors` crate after `edit`.
fn edited_checkpoint(
    edit: impl FnOnce(&mut Vec<(String, Dtype, Vec<usize>, Vec<u8>)>, &mut HashMap<String, String>),
) -> Vec<u8> {
    let model = Model::<Encoder>::new(8);
    let bytes = checkpoint_of(&[1.0, 2.0, 3.0, 4.0], 5).to_bytes(&model).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let mut raw: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> =
        file.tensors().into_iter().map(|(n, v)| (n, v.dtype(), v.shape().to_vec(), v.data().to_vec())).collect();
    let mut metadata = SafeTensors::read_metadata(&bytes).unwrap().1.metadata().clone().unwrap();
    edit(&mut raw, &mut metadata);
    let views: Vec<(String, TensorView<'_>)> =
        raw.iter().map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap())).collect();
    safetensors::serialize(views, Some(metadata)).unwrap()
}

fn rejected(bytes: &[u8]) -> LoadError {
    let mut model = Model::<Encoder>::new(1);
    let before = bits(model.state());
    let error = Checkpoint::from_bytes(&mut model, bytes).expect_err("the load should fail");
    assert_eq!(bits(model.state()), before, "a failed load changed the model ({error})");
    error
}

#[test]
fn files_that_are_not_checkpoints_are_rejected() {
    // The unedited file loads.
    let mut model = Model::<Encoder>::new(1);
    Checkpoint::from_bytes(&mut model, &edited_checkpoint(|_, _| {})).unwrap();

    // A plain model file.
    let plain = nn_core::io::to_safetensors_bytes(&Model::<Encoder>::new(1));
    let error = rejected(&plain);
    assert!(matches!(&error, LoadError::NotACheckpoint { key, found: None, .. } if key == "__checkpoint.format"));
    assert_eq!(
        error.to_string(),
        "not a checkpoint: `__checkpoint.format` is missing, expected `nn-core.checkpoint.1`"
    );

    // A counter that is not a number.
    let error = rejected(&edited_checkpoint(|_, m| {
        m.insert("__optimizer.step".into(), "-3".into());
    }));
    assert_eq!(error.to_string(), "not a checkpoint: `__optimizer.step` is `-3`, expected an unsigned integer");
    let error = rejected(&edited_checkpoint(|_, m| {
        m.remove("__checkpoint.epoch");
    }));
    assert!(matches!(&error, LoadError::NotACheckpoint { key, found: None, .. } if key == "__checkpoint.epoch"));

    // The optimizer state missing, of two dimensions, non-finite, of another dtype.
    let error = rejected(&edited_checkpoint(|t, _| t.retain(|t| t.0 != "__optimizer.state")));
    assert!(matches!(&error, LoadError::NotACheckpoint { key, .. } if key == "__optimizer.state"), "{error:?}");
    let error = rejected(&edited_checkpoint(|t, _| {
        t.iter_mut().find(|t| t.0 == "__optimizer.state").unwrap().2 = vec![2, 2];
    }));
    assert_eq!(
        error.to_string(),
        "not a checkpoint: `__optimizer.state` is of shape [2, 2], expected a tensor of one dimension"
    );
    let error = rejected(&edited_checkpoint(|t, _| {
        t.iter_mut().find(|t| t.0 == "__optimizer.state").unwrap().3[8..12].copy_from_slice(&f32::NAN.to_le_bytes());
    }));
    assert!(matches!(&error, LoadError::NonFinite { name, index: 2, .. } if name == "__optimizer.state"), "{error:?}");
    let error = rejected(&edited_checkpoint(|t, _| {
        let opt = t.iter_mut().find(|t| t.0 == "__optimizer.state").unwrap();
        opt.1 = Dtype::F64;
        opt.2 = vec![2];
    }));
    assert!(matches!(&error, LoadError::DtypeMismatch { found: Dtype::F64, .. }), "{error:?}");

    // An unknown reserved tensor, and a model tensor of the wrong shape.
    let error =
        rejected(&edited_checkpoint(|t, _| t.push(("__optimizer.extra".into(), Dtype::F32, vec![1], vec![0; 4]))));
    assert!(matches!(&error, LoadError::UnexpectedTensor { name, .. } if name == "__optimizer.extra"), "{error:?}");
    let error = rejected(&edited_checkpoint(|t, _| {
        t.iter_mut().find(|t| t.0 == "fc2.bias").unwrap().2 = vec![4, 4];
    }));
    assert!(matches!(&error, LoadError::ShapeMismatch { name, .. } if name == "fc2.bias"), "{error:?}");

    // A checkpoint of another model.
    let other = checkpoint_of(&[], 1).to_bytes(&Model::<Classifier>::new(1)).unwrap();
    assert!(matches!(rejected(&other), LoadError::MissingTensor { .. }));
}

#[test]
fn checkpoint_files_name_the_file_in_errors() {
    let dir = TempDir::new("io-ckpt-names");
    let path = dir.join("plain.safetensors");
    nn_core::io::save_safetensors(&Model::<Encoder>::new(1), &path).unwrap();
    let mut model = Model::<Encoder>::new(2);
    let error = Checkpoint::load(&mut model, &path).unwrap_err();
    assert_eq!(error.file(), Some(path.as_path()));
    assert!(error.to_string().starts_with(&path.display().to_string()));
    // The same file is a fine model file.
    load_safetensors(&mut model, &path, &LoadOptions::default()).unwrap();
    assert_eq!(tensors(&model).len(), 4);
}
