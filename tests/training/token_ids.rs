//! Integer token ids (`nn_core::tokens`): `Model::predict_ids` gives the outputs of
//! the `f32` path for the same ids, an id out of range is an error naming it and its
//! place, and `Fit` trains from `Dataset::from_token_ids` exactly as from the same
//! ids as floats.
use nn_core::prelude::*;
use nn_core::tokens::{encode_ids, TokenDatasetError, TokenIdError, TokenInput};
use nn_core::train::DatasetError;

network! {
    pub struct Classify: [4] -> [3] {
        embed: Embedding { vocab: 6, dim: 5 },
        flat: Flatten,
        out: Dense { units: 3, activation: Softmax },
    }
}

network! {
    pub struct NoTokens: [4] -> [3] { out: Dense { units: 3 } }
}

const IDS: [u32; 12] = [0, 5, 2, 2, 1, 1, 4, 3, 5, 0, 0, 3];

fn floats(ids: &[u32]) -> Vec<f32> {
    ids.iter().map(|&i| i as f32).collect()
}

#[test]
fn the_vocabulary_of_a_network_is_its_first_embeddings() {
    assert_eq!(<Classify as TokenInput>::VOCAB, 6);
    assert_eq!(<Embedding<4, 6, 5> as TokenInput>::VOCAB, 6);
}

#[test]
fn predict_ids_equals_predict_on_the_same_ids_as_floats() {
    let model = Model::<Classify>::new(7);
    let y = model.predict_ids(&IDS).unwrap();
    assert_eq!(y.len(), 3 * 3);
    assert_eq!(y, model.predict(&floats(&IDS)).unwrap());
    let as_usize: Vec<usize> = IDS.iter().map(|&i| i as usize).collect();
    assert_eq!(model.predict_ids(&as_usize).unwrap(), y);
}

#[test]
fn an_id_out_of_range_is_an_error_naming_it_and_its_place() {
    let model = Model::<Classify>::new(7);
    let mut ids = IDS;
    ids[9] = 6;
    let err = model.predict_ids(&ids).unwrap_err();
    assert_eq!(err, TokenIdError::OutOfRange { id: 6, sample: 2, step: 1, vocab: 6 });
    assert_eq!(err.to_string(), "token id 6 at sample 2, step 1 is outside the vocabulary [0, 6)");
    let err = model.predict_ids(&[0i64, 1, 2, -3]).unwrap_err();
    assert_eq!(err, TokenIdError::OutOfRange { id: -3, sample: 0, step: 3, vocab: 6 });
    let err = model.predict_ids(&[u64::MAX, 1, 2, 3]).unwrap_err();
    assert_eq!(err, TokenIdError::OutOfRange { id: u64::MAX as i128, sample: 0, step: 0, vocab: 6 });
    let err = model.predict_ids(&IDS[..5]).unwrap_err();
    assert_eq!(err, TokenIdError::BatchLen(nn_core::model::BatchLenError { sample: 4, found: 5 }));
}

#[test]
fn encode_ids_writes_nothing_past_a_bad_id_and_checks_the_buffer() {
    let mut x = [9.0f32; 4];
    let err = encode_ids::<Classify, u16>(&[1, 2, 7, 3], &mut x).unwrap_err();
    assert_eq!(err, TokenIdError::OutOfRange { id: 7, sample: 0, step: 2, vocab: 6 });
    assert_eq!(x, [1.0, 2.0, 9.0, 9.0]);
    let mut short = [0.0f32; 3];
    assert!(matches!(encode_ids::<Classify, u16>(&[1, 2, 0, 3], &mut short), Err(TokenIdError::BatchLen(_))));
}

#[test]
fn fit_trains_from_token_ids_as_from_the_same_ids_as_floats() {
    let targets = vec![0.0, 2.0, 1.0];
    let data = Dataset::from_token_ids::<Classify, u32>(&IDS, targets.clone(), 1).unwrap();
    assert_eq!(data, Dataset::new(floats(&IDS), 4, targets.clone(), 1).unwrap());

    let train = |data: &Dataset| {
        let mut model = Model::<Classify>::new(3);
        let history = Fit::new(Sgd::new(0.5), SparseCategoricalCrossEntropy { from_logits: false })
            .epochs(30)
            .batch_size(3)
            .run(&mut model, data, None)
            .unwrap();
        (model.params().to_vec(), history)
    };
    let (params, history) = train(&data);
    let (float_params, _) = train(&Dataset::new(floats(&IDS), 4, targets, 1).unwrap());
    assert_eq!(params, float_params);
    let loss = |e: usize| history.epochs[e].loss;
    assert!(loss(29) < 0.1 * loss(0), "training from ids learns: {} -> {}", loss(0), loss(29));
    let model = {
        let mut m = Model::<Classify>::zeros();
        m.params_mut().copy_from_slice(&params);
        m
    };
    let y = model.predict_ids(&IDS).unwrap();
    let argmax = |p: &[f32]| (0..3).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap();
    assert_eq!([argmax(&y[0..3]), argmax(&y[3..6]), argmax(&y[6..9])], [0, 2, 1]);
}

#[test]
fn a_bad_id_or_target_count_is_a_dataset_error() {
    let err = Dataset::from_token_ids::<Classify, usize>(&[0, 1, 2, 9], vec![0.0], 1).unwrap_err();
    assert_eq!(err, TokenDatasetError::Ids(TokenIdError::OutOfRange { id: 9, sample: 0, step: 3, vocab: 6 }));
    let err = Dataset::from_token_ids::<Classify, usize>(&[0, 1, 2, 3], vec![0.0, 1.0], 1).unwrap_err();
    assert_eq!(err, TokenDatasetError::Dataset(DatasetError::CountMismatch { inputs: 1, targets: 2 }));
}

#[test]
fn a_network_without_an_embedding_first_takes_no_ids() {
    fn vocab<L: TokenInput>() -> usize {
        L::VOCAB
    }
    // `NoTokens` does not implement `TokenInput` (its first layer is a `Dense`):
    // `vocab::<NoTokens>()` and `Model::<NoTokens>::predict_ids` do not compile.
    assert_eq!(vocab::<Classify>(), 6);
    let _ = Model::<NoTokens>::new(1);
}
