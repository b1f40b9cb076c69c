//! Partial loading by name prefix, for transfer learning in both directions: a
//! classifier's `encoder.*` tensors into an `Encoder`, and an `Encoder`'s file into the
//! `encoder.` sub-tree of a classifier.
use crate::io_nets;

use io_nets::{bits, Classifier, Encoder, TempDir};
use nn_core::io::{
    from_safetensors_bytes, load_safetensors, save_safetensors, to_safetensors_bytes, to_safetensors_bytes_with,
    LoadError, LoadOptions, SaveOptions,
};
use nn_core::{Layer, Model};

fn prefix(p: &str) -> LoadOptions {
    LoadOptions { prefix: Some(p.into()), ..Default::default() }
}

fn target(p: &str) -> LoadOptions {
    LoadOptions { target_prefix: Some(p.into()), ..Default::default() }
}

#[test]
fn the_encoder_of_a_classifier_file_loads_into_an_encoder() {
    // The classifier's tensors are the encoder's, then the head's.
    assert_eq!(Classifier::PARAMS, Encoder::PARAMS + 16 * 10 + 10);
    let classifier = Model::<Classifier>::new(1);
    let dir = TempDir::new("io-prefix");
    let path = dir.join("classifier.safetensors");
    save_safetensors(&classifier, &path).unwrap();

    for p in ["encoder.", "encoder"] {
        let mut encoder = Model::<Encoder>::new(2);
        let report = load_safetensors(&mut encoder, &path, &prefix(p)).unwrap();
        assert_eq!(report.loaded, ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]);
        // `head.*` is outside the prefix: ignored, not unexpected.
        assert!(report.unexpected.is_empty());
        assert_eq!(bits(encoder.state()), bits(&classifier.state()[..Encoder::PARAMS]));
    }
}

#[test]
fn an_encoder_file_loads_into_the_encoder_of_a_classifier() {
    let encoder = Model::<Encoder>::new(3);
    let bytes = to_safetensors_bytes(&encoder);
    for p in ["encoder.", "encoder"] {
        let mut classifier = Model::<Classifier>::new(4);
        let head = classifier.state()[Encoder::PARAMS..].to_vec();
        let report = from_safetensors_bytes(&mut classifier, &bytes, &target(p)).unwrap();
        assert_eq!(report.loaded, ["encoder.fc1.weight", "encoder.fc1.bias", "encoder.fc2.weight", "encoder.fc2.bias"]);
        assert!(report.missing.is_empty(), "tensors outside the target prefix are not missing");
        assert_eq!(bits(&classifier.state()[..Encoder::PARAMS]), bits(encoder.state()));
        assert_eq!(bits(&classifier.state()[Encoder::PARAMS..]), bits(&head), "the head is untouched");
    }
}

#[test]
fn a_sub_tree_moves_between_two_models_of_the_same_kind() {
    // `backbone.*` of one file into `encoder.*` of a model: both prefixes at once.
    let source = Model::<Encoder>::new(5);
    let options = SaveOptions { prefix: Some("backbone".into()), ..Default::default() };
    let bytes = to_safetensors_bytes_with(&source, &options).unwrap();
    let mut classifier = Model::<Classifier>::new(6);
    let both =
        LoadOptions { prefix: Some("backbone".into()), target_prefix: Some("encoder".into()), ..Default::default() };
    from_safetensors_bytes(&mut classifier, &bytes, &both).unwrap();
    assert_eq!(bits(&classifier.state()[..Encoder::PARAMS]), bits(source.state()));

    // A classifier's encoder into another classifier's encoder, leaving its head.
    let donor = Model::<Classifier>::new(7);
    let mut receiver = Model::<Classifier>::new(8);
    let head = receiver.state()[Encoder::PARAMS..].to_vec();
    let same =
        LoadOptions { prefix: Some("encoder.".into()), target_prefix: Some("encoder.".into()), ..Default::default() };
    from_safetensors_bytes(&mut receiver, &to_safetensors_bytes(&donor), &same).unwrap();
    assert_eq!(bits(&receiver.state()[..Encoder::PARAMS]), bits(&donor.state()[..Encoder::PARAMS]));
    assert_eq!(bits(&receiver.state()[Encoder::PARAMS..]), bits(&head));
}

#[test]
fn a_target_prefix_can_select_a_single_layer() {
    let donor = Model::<Classifier>::new(9);
    let mut receiver = Model::<Classifier>::new(10);
    let options = LoadOptions { prefix: Some("head".into()), target_prefix: Some("head".into()), ..Default::default() };
    let report = from_safetensors_bytes(&mut receiver, &to_safetensors_bytes(&donor), &options).unwrap();
    assert_eq!(report.loaded, ["head.weight", "head.bias"]);
    let before = Model::<Classifier>::new(10);
    assert_eq!(bits(&receiver.state()[..Encoder::PARAMS]), bits(&before.state()[..Encoder::PARAMS]));
    assert_eq!(bits(&receiver.state()[Encoder::PARAMS..]), bits(&donor.state()[Encoder::PARAMS..]));
}

#[test]
fn prefixed_errors_name_both_the_file_tensor_and_the_model_tensor() {
    // A file without the prefix: the first model tensor is missing under its full name.
    let mut encoder = Model::<Encoder>::new(1);
    let before = bits(encoder.state());
    let bytes = to_safetensors_bytes(&Model::<Encoder>::new(2));
    let error = from_safetensors_bytes(&mut encoder, &bytes, &prefix("encoder")).unwrap_err();
    match &error {
        LoadError::MissingTensor { name, model_name, expected, .. } => {
            assert_eq!(
                (name.as_str(), model_name.as_str(), expected.as_slice()),
                ("encoder.fc1.weight", "fc1.weight", &[32, 64][..])
            );
        }
        other => panic!("expected MissingTensor, got {other:?}"),
    }
    assert_eq!(
        error.to_string(),
        "tensor `encoder.fc1.weight` is missing from the file (model tensor `fc1.weight` shape [32, 64])"
    );
    assert_eq!(bits(encoder.state()), before);

    // With only a target prefix the file's names are used as they are: an encoder
    // saved under `encoder.` lacks `fc1.weight`.
    let mut classifier = Model::<Classifier>::new(3);
    let before = bits(classifier.state());
    let options = SaveOptions { prefix: Some("encoder".into()), ..Default::default() };
    let mut raw = to_safetensors_bytes_with(&Model::<Encoder>::new(4), &options).unwrap();
    let error = from_safetensors_bytes(&mut classifier, &raw, &target("encoder")).unwrap_err();
    assert!(
        matches!(&error, LoadError::MissingTensor { name, model_name, .. } if name == "fc1.weight" && model_name == "encoder.fc1.weight"),
        "{error:?}"
    );
    assert_eq!(bits(classifier.state()), before);

    // A shape error under a prefix names the model tensor as well.
    let zeros = vec![0u8; 32 * 64 * 4];
    let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![64, 32], &zeros).unwrap();
    raw = safetensors::serialize([("encoder.fc1.weight", view)], None).unwrap();
    let mut encoder = Model::<Encoder>::new(6);
    let before = bits(encoder.state());
    let options = LoadOptions { allow_missing: true, ..prefix("encoder") };
    let error = from_safetensors_bytes(&mut encoder, &raw, &options).unwrap_err();
    assert_eq!(
        error.to_string(),
        "tensor `encoder.fc1.weight` has shape [64, 32], expected [32, 64] (model tensor `fc1.weight`)"
    );
    assert_eq!(bits(encoder.state()), before);
}

#[test]
fn unexpected_tensors_are_only_those_under_the_prefix() {
    // A classifier file read with prefix `encoder.` into a classifier: no model tensor
    // is `encoder.encoder.*`, so everything is missing; with `allow_missing` and
    // `allow_unexpected` nothing loads and the report says why.
    let bytes = to_safetensors_bytes(&Model::<Classifier>::new(1));
    let mut classifier = Model::<Classifier>::new(2);
    let before = bits(classifier.state());
    let options = LoadOptions { allow_missing: true, allow_unexpected: true, ..prefix("encoder") };
    let report = from_safetensors_bytes(&mut classifier, &bytes, &options).unwrap();
    assert!(report.loaded.is_empty());
    assert_eq!(report.missing.len(), 6);
    assert_eq!(report.unexpected, ["encoder.fc1.bias", "encoder.fc1.weight", "encoder.fc2.bias", "encoder.fc2.weight"]);
    assert_eq!(bits(classifier.state()), before);

    // An encoder file into a classifier without a target prefix: `fc1.weight` is not a
    // classifier tensor.
    let bytes = to_safetensors_bytes(&Model::<Encoder>::new(3));
    let options = LoadOptions { allow_missing: true, ..Default::default() };
    let error = from_safetensors_bytes(&mut classifier, &bytes, &options).unwrap_err();
    assert!(
        matches!(&error, LoadError::UnexpectedTensor { name, shape, .. } if name == "fc1.bias" && shape == &[32]),
        "{error:?}"
    );
    assert_eq!(bits(classifier.state()), before);
}
