//! Golden tests of `Embedding`, `SequenceDense` and `Dropout` against `nn.Embedding`,
//! `nn.Linear` on sequences and `nn.Dropout`, from the fixtures of the groups
//! `embedding`, `sequence_dense` and `dropout` written by `tools/fixtures/generate.py`.
//!
//! Tolerance: `|actual - expected| <= 1e-5 |expected| + 1e-6`, as the other golden
//! tests (the references are exact to half an f32 ulp). Dropout's mask is random on
//! both sides, so its test compares what does not depend on the mask: the eval pass,
//! and in training PyTorch's kept scale `1 / (1 - p)` applied to the values and
//! gradients each side keeps, zero for those it drops.
use crate::fixtures;
use crate::standalone::Standalone;

use fixtures::{assert_close, Fixture};
use nn_core::layers::{Dropout, Embedding, SequenceDense};
use nn_core::{Activation, Layer, Shape, Shape1};

const RTOL: f32 = 1e-5;
const ATOL: f32 = 1e-6;
/// What the gradient array holds before `backward`, which must add to it.
const GRAD_START: f32 = 0.5;

fn fixtures_in(group: &str) -> Vec<Fixture> {
    let found: Vec<Fixture> =
        Fixture::all().iter().map(|name| Fixture::load(name)).filter(|f| f.meta("group") == group).collect();
    assert!(!found.is_empty(), "no fixture of group `{group}`");
    found
}

/// The parameters of `layer` from the fixture tensors `param.<name>`, with PyTorch's
/// shapes.
fn load_params<L: Layer>(layer: &L, f: &Fixture) -> Vec<f32> {
    let mut params = vec![f32::NAN; L::PARAMS];
    layer.visit_tensors(None, 0, 0, &mut |t| {
        let key = format!("param.{}", t.path);
        assert_eq!(f.shape(&key), t.shape, "{}: shape of `{key}`", f.name);
        params[t.offset..t.offset + t.len].copy_from_slice(f.values(&key));
    });
    assert!(params.iter().all(|v| !v.is_nan()), "{}: the fixture does not fill every parameter", f.name);
    params
}

/// `forward` and `forward_train` against `output`, then `backward` with
/// `grad_output`: parameter gradients (added to [`GRAD_START`]) against `grad.<name>`,
/// and the input gradient against `grad_input`, or zero when the fixture has none
/// (token ids).
fn check<L: Layer>(layer: &L, f: &Fixture) {
    let x = f.values("input");
    let batch = f.batch();
    assert_eq!(x.len(), batch * L::Input::LEN, "{}: input size", f.name);
    let params = load_params(layer, f);
    let close = |what: &str, actual: &[f32], expected: &[f32]| {
        assert_close(&format!("{}: {what}", f.name), actual, expected, RTOL, ATOL)
    };

    let mut scratch = vec![f32::NAN; batch * L::SCRATCH];
    let mut y = vec![f32::NAN; batch * L::Output::LEN];
    layer.forward(nn_core::Weights::new(&params, &[]), x, &mut y, &mut scratch);
    close("forward", &y, f.values("output"));
    y.fill(f32::NAN);
    let mut s = Standalone::new::<L>(batch, 0);
    layer.forward_train(x, &mut y, s.train(&params));
    close("forward_train", &y, f.values("output"));

    let mut dy = f.values("grad_output").to_vec();
    let mut dx = vec![f32::NAN; x.len()];
    s.grads.fill(GRAD_START);
    layer.backward(x, &y, &mut dy, Some(&mut dx), s.backward(&params));
    let grads = s.grads;
    if f.has("grad_input") {
        close("grad_input", &dx, f.values("grad_input"));
    } else {
        assert!(dx.iter().all(|&v| v == 0.0), "{}: token ids must get a zero gradient", f.name);
    }
    layer.visit_tensors(None, 0, 0, &mut |t| {
        let expected: Vec<f32> = f.values(&format!("grad.{}", t.path)).iter().map(|g| g + GRAD_START).collect();
        close(&format!("grad.{}", t.path), &grads[t.offset..t.offset + t.len], &expected);
    });
}

#[test]
fn embedding_matches_torch_embedding() {
    for f in fixtures_in("embedding") {
        match f.name.as_str() {
            "embedding_10x4_t5" => {
                assert_eq!((f.option_f32("num_embeddings"), f.option_f32("embedding_dim")), (10.0, 4.0));
                check(&Embedding::<5, 10, 4>::new(), &f)
            }
            other => panic!("no nn-core layer for the embedding fixture `{other}`"),
        }
    }
}

/// The integer-id door (`Model::predict_ids`, PyTorch's `nn.Embedding(LongTensor)`)
/// on the same fixture: the ids as `u32` and as `i64` give PyTorch's output, and the
/// `f32` path's output bit for bit.
#[test]
fn embedding_of_integer_ids_matches_torch_embedding() {
    nn_core::network! {
        struct Embed: [5] -> [5, 4] { embed: Embedding { vocab: 10, dim: 4 } }
    }
    let f = Fixture::load("embedding_10x4_t5");
    let mut model = nn_core::Model::<Embed>::zeros();
    model.params_mut().copy_from_slice(&load_params(&Embedding::<5, 10, 4>::new(), &f));
    let x = f.values("input");
    let ids: Vec<u32> = x.iter().map(|&v| v as u32).collect();
    assert!(ids.iter().zip(x).all(|(&id, &v)| id as f32 == v), "the fixture's ids are whole numbers");
    let long: Vec<i64> = ids.iter().map(|&id| i64::from(id)).collect();
    let y = model.predict_ids(&ids).unwrap();
    assert_close("embedding_10x4_t5: predict_ids", &y, f.values("output"), RTOL, ATOL);
    assert_eq!(model.predict_ids(&long).unwrap(), y);
    assert_eq!(model.predict(x).unwrap(), y);
}

#[test]
fn sequence_dense_matches_torch_linear_on_sequences() {
    for f in fixtures_in("sequence_dense") {
        match f.name.as_str() {
            "sequence_dense_6x5x4_tanh" => {
                assert_eq!((f.option("bias"), f.option("activation")), (Some("true"), Some("tanh")));
                check(&SequenceDense::<6, 5, 4>::new(Activation::Tanh), &f)
            }
            "sequence_dense_6x5x4_nobias_softmax" => {
                assert_eq!((f.option("bias"), f.option("activation")), (Some("false"), Some("softmax")));
                check(&SequenceDense::<6, 5, 4, false>::new(Activation::Softmax), &f)
            }
            other => panic!("no nn-core layer for the sequence_dense fixture `{other}`"),
        }
    }
}

/// Whether a value counts as dropped (exactly zero: the inputs are normal samples, so
/// a kept value is never zero).
fn dropped(v: f32) -> bool {
    v == 0.0
}

#[test]
fn dropout_matches_torch_dropout_up_to_the_mask() {
    for f in fixtures_in("dropout") {
        assert_eq!(f.name, "dropout_0.25", "no nn-core layer for the dropout fixture `{}`", f.name);
        type Sample = Shape1<64>;
        let rate = f.option_f32("p");
        let layer = Dropout::<Sample>::new(rate);
        let (x, dy) = (f.values("input"), f.values("grad_output"));
        let (torch_y, torch_dx) = (f.values("output"), f.values("grad_input"));
        let batch = f.batch();
        assert_eq!(x.len(), batch * Sample::LEN);
        assert!(x.iter().all(|&v| v != 0.0));

        // Eval: the identity, as PyTorch's.
        let mut y = vec![f32::NAN; x.len()];
        layer.forward(nn_core::Weights::new(&[], &[]), x, &mut y, &mut []);
        assert_close("dropout eval", &y, f.values("output_eval"), 0.0, 0.0);

        // PyTorch's kept values and gradients: the input and upstream gradient times
        // its scale, which is the same for every kept value.
        let kept: Vec<usize> = (0..x.len()).filter(|&i| !dropped(torch_y[i])).collect();
        assert!(!kept.is_empty() && kept.len() < x.len(), "PyTorch kept {} of {}", kept.len(), x.len());
        let torch_scale = torch_y[kept[0]] / x[kept[0]];
        let scaled = |values: &[f32], i: usize| values[i] * torch_scale;
        for &i in &kept {
            assert!((torch_y[i] - scaled(x, i)).abs() <= RTOL * torch_y[i].abs(), "PyTorch output {i}");
            assert!((torch_dx[i] - scaled(dy, i)).abs() <= RTOL * torch_dx[i].abs() + ATOL, "PyTorch grad {i}");
        }
        assert!((0..x.len()).all(|i| !dropped(torch_y[i]) || torch_dx[i] == 0.0));

        // Ours, over several masks: each value dropped (zero, and zero gradient) or
        // kept with PyTorch's scale.
        let mut dropped_total = 0;
        for seed in 0..8 {
            let mut s = Standalone::of(&layer, batch, seed);
            layer.forward_train(x, &mut y, s.train(&[]));
            let mut dx = vec![f32::NAN; x.len()];
            layer.backward(x, &y, &mut dy.to_vec(), Some(&mut dx), s.backward(&[]));
            let ours_kept: Vec<usize> = (0..x.len()).filter(|&i| !dropped(y[i])).collect();
            dropped_total += x.len() - ours_kept.len();
            let expected_y: Vec<f32> = (0..x.len()).map(|i| if dropped(y[i]) { 0.0 } else { scaled(x, i) }).collect();
            let expected_dx: Vec<f32> = (0..x.len()).map(|i| if dropped(y[i]) { 0.0 } else { scaled(dy, i) }).collect();
            assert_close("dropout forward_train", &y, &expected_y, RTOL, ATOL);
            assert_close("dropout backward", &dx, &expected_dx, RTOL, ATOL);
        }
        // 4096 draws with p = 0.25: 1024 expected, standard deviation 27.7; five of
        // them either side.
        let draws = 8 * x.len();
        let expected = rate * draws as f32;
        let sd = (draws as f32 * rate * (1.0 - rate)).sqrt();
        assert!((dropped_total as f32 - expected).abs() <= 5.0 * sd, "dropped {dropped_total} of {draws}");
    }
}
