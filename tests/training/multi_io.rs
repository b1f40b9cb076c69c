//! Networks with two inputs and two outputs as models: `Fit` against the same training
//! written by hand over the network's own passes (bit for bit), the gradients of the
//! model's passes and of `Losses` against finite differences, and the layouts of
//! `predict_multi` and `Dataset::multi`.
use crate::standalone::Standalone;
use nn_core::multi::{InputsError, Losses, MultiIo};
use nn_core::prelude::*;
use nn_core::train::{DatasetError, Metric};

use crate::gradcheck::{central_differences_f32, uniform, weighted_sum};

network! {
    /// Two inputs, two outputs: a logit of the pair and a reconstruction of `b`.
    pub struct PairNet: ([3], [2]) -> ([1], [2]) graph {
        input a, b;
        ha = fa(a): Dense { units: 4, activation: Tanh };
        hb = fb(b): Dense { units: 4, activation: Tanh };
        h = concat(ha, hb);
        score = head(h): Dense { units: 1 };
        mix = mixer(h): Dense { units: 2, activation: Tanh };
        rec = dec(mix): Dense { units: 2 };
        output score, rec;
    }
}

const SAMPLES: usize = 8;
const BATCH: usize = 4;
const EPOCHS: usize = 5;
const WEIGHTS: [f32; 2] = [1.0, 0.5];

/// Inputs and targets: `a` of 3, `b` of 2, a 0/1 label and `b` as the reconstruction
/// target.
fn data() -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut rng = Rng::new(11);
    let a = uniform(&mut rng, SAMPLES * 3, -1.0, 1.0);
    let b = uniform(&mut rng, SAMPLES * 2, -1.0, 1.0);
    let label: Vec<f32> = (0..SAMPLES).map(|i| (a[3 * i] + b[2 * i] > 0.0) as u8 as f32).collect();
    let rec = b.clone();
    (a, b, label, rec)
}

fn losses() -> (BinaryCrossEntropy, MeanSquaredError) {
    (BinaryCrossEntropy::from_logits(), MeanSquaredError)
}

#[test]
fn fit_trains_two_inputs_and_two_outputs_as_the_step_api_by_hand() {
    let (a, b, label, rec) = data();

    // By `Fit`: batches in order, no shuffling.
    let train = Dataset::multi::<PairNet>((&a, &b), (&label, &rec)).unwrap();
    let mut model = Model::<PairNet>::new(5);
    let mut fit = Fit::new(Adam::new(0.01), model.loss_per_output(losses()).weights(WEIGHTS))
        .epochs(EPOCHS)
        .batch_size(BATCH)
        .shuffle(false);
    let history = fit.run(&mut model, &train, None).unwrap();

    // By hand, over the network's passes on separate inputs and outputs.
    let net = PairNet;
    let mut params = Model::<PairNet>::new(5).params().to_vec();
    let mut opt = OptimizerState::new(Adam::new(0.01));
    let (bce, mse) = losses();
    let (cache, scratch) = (BATCH * PairNet::CACHE, BATCH * PairNet::SCRATCH);
    let mut s = Standalone::sized(PairNet::PARAMS, PairNet::BUFFERS, cache, scratch, 0);
    let mut epoch_losses = Vec::new();
    for _ in 0..EPOCHS {
        let mut sum = 0.0f64;
        for start in (0..SAMPLES).step_by(BATCH) {
            let xa = &a[start * 3..(start + BATCH) * 3];
            let xb = &b[start * 2..(start + BATCH) * 2];
            let (t0, t1) = (&label[start..start + BATCH], &rec[start * 2..(start + BATCH) * 2]);
            let (mut y0, mut y1) = (vec![0.0; BATCH], vec![0.0; BATCH * 2]);
            s.grads.fill(0.0);
            net.forward_train([xa, xb], [&mut y0, &mut y1], s.train(&params));
            let (mut g0, mut g1) = (vec![0.0; BATCH], vec![0.0; BATCH * 2]);
            let mut loss = 0.0;
            loss += WEIGHTS[0] * bce.compute(&y0, t0, 1, Some(&mut g0));
            loss += WEIGHTS[1] * mse.compute(&y1, t1, 2, Some(&mut g1));
            g0.iter_mut().for_each(|g| *g *= WEIGHTS[0]);
            g1.iter_mut().for_each(|g| *g *= WEIGHTS[1]);
            net.backward([xa, xb], [&y0, &y1], [&mut g0, &mut g1], [None, None], s.backward(&params));
            opt.step(&mut params, &s.grads);
            sum += loss as f64;
        }
        epoch_losses.push((sum / (SAMPLES / BATCH) as f64) as f32);
    }
    assert_eq!(history.series("loss"), epoch_losses);
    assert_eq!(model.params(), &params[..]);
    assert!(epoch_losses[EPOCHS - 1] < epoch_losses[0], "{epoch_losses:?}");
}

#[test]
fn metrics_per_output_are_named_after_the_output() {
    let (a, b, label, rec) = data();
    let train = Dataset::multi::<PairNet>((&a, &b), (&label, &rec)).unwrap();
    let losses = Losses::<PairNet, _>::new(losses());
    let metrics =
        [losses.metric::<0>(&Metric::BinaryAccuracy { threshold: 0.0 }), losses.metric::<1>(&Metric::MeanSquaredError)];
    let mut model = Model::<PairNet>::new(2);
    let mut fit = Fit::new(Adam::new(0.01), losses).epochs(2).batch_size(BATCH).metrics(&metrics);
    let history = fit.run(&mut model, &train, Some(&train)).unwrap();
    assert_eq!(PairNet::OUTPUT_NAMES, ["score", "rec"]);
    assert_eq!(PairNet::INPUT_NAMES, ["a", "b"]);

    // The metrics of the model after training, counted here from `predict_multi`.
    let (score, out) = model.predict_multi((&a, &b)).unwrap();
    let correct = score.iter().zip(&label).filter(|(s, t)| (**s > 0.0) == (**t > 0.5)).count();
    let mse = out.iter().zip(&rec).map(|(p, t)| ((p - t) * (p - t)) as f64).sum::<f64>() / out.len() as f64;
    let last = history.last().unwrap();
    let val = |name: &str| last.val_metrics.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
    assert_eq!(val("score_accuracy"), Some((correct as f64 / SAMPLES as f64) as f32));
    assert_eq!(val("rec_mse"), Some(mse as f32));
    assert_eq!(history.series("val_rec_mse").len(), 2);
    assert_eq!(history.series("score_accuracy").len(), 2);
}

#[test]
fn predict_multi_is_the_networks_own_forward() {
    let (a, b, _, _) = data();
    let model = Model::<PairNet>::new(3);
    let (score, rec) = model.predict_multi((&a, &b)).unwrap();
    let (mut y0, mut y1) = (vec![0.0; SAMPLES], vec![0.0; SAMPLES * 2]);
    let mut scratch = vec![0.0; SAMPLES * PairNet::SCRATCH];
    PairNet.forward(nn_core::Weights::new(model.params(), model.buffers()), [&a, &b], [&mut y0, &mut y1], &mut scratch);
    assert_eq!((&score, &rec), (&y0, &y1));

    // The packed form: a sample is `a` then `b`, an output sample `score` then `rec`.
    let packed: Vec<f32> =
        (0..SAMPLES).flat_map(|i| a[3 * i..3 * i + 3].iter().chain(&b[2 * i..2 * i + 2]).copied()).collect();
    let y = model.predict(&packed).unwrap();
    for i in 0..SAMPLES {
        assert_eq!(&y[3 * i..3 * i + 3], &[y0[i], y1[2 * i], y1[2 * i + 1]]);
    }

    assert_eq!(model.predict_multi((&a[..6], &b[..2])), Err(InputsError::Samples { input: 1, expected: 2, found: 1 }));
    assert_eq!(
        model.predict_multi((&a[..5], &b[..2])),
        Err(InputsError::Length { input: 0, error: nn_core::model::BatchLenError { sample: 3, found: 5 } })
    );
}

#[test]
fn dataset_multi_lays_samples_out_input_after_input() {
    let (a, b, label, rec) = data();
    let data = Dataset::multi::<PairNet>((&a, &b), (&label, &rec)).unwrap();
    assert_eq!((data.len(), data.input_len(), data.target_len()), (SAMPLES, 5, 3));
    assert_eq!(data.input(2), &[a[6], a[7], a[8], b[4], b[5]]);
    assert_eq!(data.target(2), &[label[2], rec[4], rec[5]]);
    assert_eq!(
        Dataset::multi::<PairNet>((&a, &b[..4]), (&label, &rec)),
        Err(DatasetError::InputsDiffer { input: 1, expected: SAMPLES, found: 2 })
    );
    assert_eq!(
        Dataset::multi::<PairNet>((&a, &b), (&label[..3], &rec)),
        Err(DatasetError::CountMismatch { inputs: SAMPLES, targets: 3 })
    );
}

/// The model's training passes of the packed form against central differences: the
/// gradient with respect to every parameter and every input value of both inputs.
#[test]
fn packed_backward_matches_finite_differences() {
    let mut rng = Rng::new(4);
    let batch = 3;
    let x = uniform(&mut rng, batch * 5, -1.0, 1.0);
    let upstream = uniform(&mut rng, batch * 3, -1.0, 1.0);
    let model = Model::<PairNet>::new(9);
    let params = model.params().to_vec();
    let loss_at = |p: &[f32], x: &[f32]| {
        let mut y = vec![0.0; batch * 3];
        let mut scratch = vec![0.0; batch * <PairNet as Layer>::SCRATCH];
        <PairNet as Layer>::forward(&PairNet, nn_core::Weights::new(p, &[]), x, &mut y, &mut scratch);
        weighted_sum(&upstream, &y)
    };
    let mut y = vec![0.0; batch * 3];
    let mut s = Standalone::new::<PairNet>(batch, 0);
    s.rng = rng;
    <PairNet as Layer>::forward_train(&PairNet, &x, &mut y, s.train(&params));
    let mut dy = upstream.clone();
    let mut dx = vec![0.0; x.len()];
    <PairNet as Layer>::backward(&PairNet, &x, &y, &mut dy, Some(&mut dx), s.backward(&params));
    let grads = s.grads;
    let numeric_p = central_differences_f32(&params, 1e-2, |p| (loss_at(p, &x), Vec::new()));
    let numeric_x = central_differences_f32(&x, 1e-2, |x| (loss_at(&params, x), Vec::new()));
    for (what, analytic, numeric) in [("param", &grads, &numeric_p), ("input", &dx, &numeric_x)] {
        for (i, (a, n)) in analytic.iter().zip(numeric.iter()).enumerate() {
            let n = n.expect("no kink in tanh");
            assert!((*a as f64 - n).abs() < 2e-3 * (1.0 + n.abs()), "{what} {i}: {a} vs {n}");
        }
    }
}

/// `Losses`: the weighted sum of each output's loss, and its gradient against central
/// differences.
#[test]
fn losses_weigh_each_output_and_match_finite_differences() {
    let mut rng = Rng::new(6);
    let batch = 4;
    let pred = uniform(&mut rng, batch * 3, -2.0, 2.0);
    let target: Vec<f32> = (0..batch).flat_map(|i| [(i % 2) as f32, 0.25 * i as f32, -0.5]).collect();
    let losses = Losses::<PairNet, _>::new(losses()).weights([0.7, 2.0]);
    assert_eq!(losses.target_len(3), 3);
    let mut grad = vec![0.0; pred.len()];
    let total = losses.compute(&pred, &target, 3, Some(&mut grad));
    let column = |v: &[f32], r: std::ops::Range<usize>| -> Vec<f32> {
        v.chunks(3).flat_map(|s| s[r.clone()].to_vec()).collect()
    };
    let (bce, mse) = self::losses();
    let l0 = bce.compute(&column(&pred, 0..1), &column(&target, 0..1), 1, None);
    let l1 = mse.compute(&column(&pred, 1..3), &column(&target, 1..3), 2, None);
    assert_eq!(total, 0.0 + 0.7 * l0 + 2.0 * l1);
    let numeric = central_differences_f32(&pred, 1e-2, |p| (losses.compute(p, &target, 3, None) as f64, Vec::new()));
    for (i, (a, n)) in grad.iter().zip(&numeric).enumerate() {
        let n = n.unwrap();
        assert!((*a as f64 - n).abs() < 1e-3 * (1.0 + n.abs()), "{i}: {a} vs {n}");
    }
}

#[test]
fn predict_one_multi_takes_and_gives_one_tensor_per_input_and_output() {
    let (a, b, _, _) = data();
    let model = Model::<PairNet>::new(3);
    let (score, rec) = model.predict_multi((&a, &b)).unwrap();
    for i in 0..SAMPLES {
        let xa = Tensor::<Shape1<3>>::from_slice(&a[3 * i..3 * i + 3]).unwrap();
        let xb = Tensor::<Shape1<2>>::from_slice(&b[2 * i..2 * i + 2]).unwrap();
        let (s, r): (Tensor<Shape1<1>>, Tensor<Shape1<2>>) = model.predict_one_multi((&xa, &xb));
        assert_eq!((s.as_slice(), r.as_slice()), (&score[i..i + 1], &rec[2 * i..2 * i + 2]));
    }
}
