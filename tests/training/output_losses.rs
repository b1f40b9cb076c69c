//! The loss of each output of a two-output model in the training history
//! (`"{output}_loss"`, Keras's names), against the losses computed here by their
//! formulas from the model's own predictions.
use nn_core::multi::Losses;
use nn_core::prelude::*;
use nn_core::train::{Mode, TrainError};

network! {
    /// Two outputs: a logit and a two-value regression.
    pub struct TwoHeads: ([3], [2]) -> ([1], [2]) graph {
        input a, b;
        ha = fa(a): Dense { units: 4, activation: Tanh };
        hb = fb(b): Dense { units: 4, activation: Tanh };
        h = concat(ha, hb);
        score = head(h): Dense { units: 1 };
        rec = dec(h): Dense { units: 2 };
        output score, rec;
    }
}

const SAMPLES: usize = 6;
const WEIGHTS: [f32; 2] = [1.0, 0.25];

fn data() -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let a: Vec<f32> = (0..SAMPLES * 3).map(|i| ((i * 7) % 11) as f32 / 5.0 - 1.0).collect();
    let b: Vec<f32> = (0..SAMPLES * 2).map(|i| ((i * 5) % 9) as f32 / 4.0 - 1.0).collect();
    let label: Vec<f32> = (0..SAMPLES).map(|i| (i % 2) as f32).collect();
    let rec: Vec<f32> = b.iter().map(|v| 0.5 * v).collect();
    (a, b, label, rec)
}

/// Binary cross-entropy from logits, mean over samples: `max(z, 0) - z t + ln(1 + e^-|z|)`.
fn bce_from_logits(z: &[f32], t: &[f32]) -> f64 {
    let sum: f64 = z
        .iter()
        .zip(t)
        .map(|(&z, &t)| {
            let (z, t) = (z as f64, t as f64);
            z.max(0.0) - z * t + (-z.abs()).exp().ln_1p()
        })
        .sum();
    sum / z.len() as f64
}

/// Mean absolute error over every value.
fn mae(p: &[f32], t: &[f32]) -> f64 {
    p.iter().zip(t).map(|(p, t)| (p - t).abs() as f64).sum::<f64>() / p.len() as f64
}

fn close(found: f32, expected: f64) {
    assert!((found as f64 - expected).abs() <= 1e-6 * expected.abs().max(1.0), "{found} != {expected}");
}

#[test]
fn history_has_the_unweighted_loss_of_each_output() {
    let (a, b, label, rec) = data();
    let train = Dataset::multi::<TwoHeads>((&a, &b), (&label, &rec)).unwrap();
    let mut model = Model::<TwoHeads>::new(3);
    // One batch per epoch: an epoch's training losses are those of the model before its step.
    let (score0, rec0) = model.predict_multi((&a, &b)).unwrap();
    let losses = Losses::<TwoHeads, _>::new((BinaryCrossEntropy::from_logits(), MeanAbsoluteError)).weights(WEIGHTS);
    let mut fit = Fit::new(Sgd::new(0.1), losses).epochs(1).batch_size(SAMPLES).shuffle(false);
    let history = fit.run(&mut model, &train, Some(&train)).unwrap();

    let (score_loss, rec_loss) = (bce_from_logits(&score0, &label), mae(&rec0, &rec));
    close(history.series("score_loss")[0], score_loss);
    close(history.series("rec_loss")[0], rec_loss);
    close(history.series("loss")[0], WEIGHTS[0] as f64 * score_loss + WEIGHTS[1] as f64 * rec_loss);

    // Validation: the model after the epoch.
    let (score1, rec1) = model.predict_multi((&a, &b)).unwrap();
    close(history.series("val_score_loss")[0], bce_from_logits(&score1, &label));
    close(history.series("val_rec_loss")[0], mae(&rec1, &rec));
    let names: Vec<&str> = history.last().unwrap().metrics.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["score_loss", "rec_loss"]);

    // `Model::evaluate` reports them too.
    let losses = Losses::<TwoHeads, _>::new((BinaryCrossEntropy::from_logits(), MeanAbsoluteError));
    let e = model.evaluate(&train, &losses, &[]).unwrap();
    close(e.metric("score_loss").unwrap(), bce_from_logits(&score1, &label));
    close(e.metric("rec_loss").unwrap(), mae(&rec1, &rec));
}

#[test]
fn output_losses_are_means_over_the_epochs_batches() {
    let (a, b, label, rec) = data();
    let train = Dataset::multi::<TwoHeads>((&a, &b), (&label, &rec)).unwrap();
    let model = Model::<TwoHeads>::new(4);
    // Learning rate 0: every batch sees the initial model.
    let (score, out) = model.predict_multi((&a, &b)).unwrap();
    let mut trained = Model::<TwoHeads>::new(4);
    let losses = Losses::<TwoHeads, _>::new((BinaryCrossEntropy::from_logits(), MeanAbsoluteError));
    let mut fit = Fit::new(Sgd::new(0.0), losses).epochs(1).batch_size(4).shuffle(false);
    let history = fit.run(&mut trained, &train, None).unwrap();
    // Batches of 4 and 2 samples, each batch's mean counted once.
    let batches = [0..4, 4..6];
    let score_loss: f64 =
        batches.iter().map(|r| bce_from_logits(&score[r.clone()], &label[r.clone()])).sum::<f64>() / 2.0;
    let rec_loss: f64 =
        batches.iter().map(|r| mae(&out[2 * r.start..2 * r.end], &rec[2 * r.start..2 * r.end])).sum::<f64>() / 2.0;
    close(history.series("score_loss")[0], score_loss);
    close(history.series("rec_loss")[0], rec_loss);
}

#[test]
fn an_output_loss_can_be_monitored() {
    let (a, b, label, rec) = data();
    let train = Dataset::multi::<TwoHeads>((&a, &b), (&label, &rec)).unwrap();
    let mut model = Model::<TwoHeads>::new(5);
    let losses = Losses::<TwoHeads, _>::new((BinaryCrossEntropy::from_logits(), MeanAbsoluteError));
    let mut fit = Fit::new(Sgd::new(0.01), losses.clone())
        .epochs(3)
        .batch_size(SAMPLES)
        .early_stopping(EarlyStopping::new("val_rec_loss", Mode::Min, 5));
    assert!(fit.run(&mut model, &train, Some(&train)).is_ok());
    let mut wrong =
        Fit::new(Sgd::new(0.01), losses).epochs(1).early_stopping(EarlyStopping::new("val_recc_loss", Mode::Min, 5));
    match wrong.run(&mut model, &train, Some(&train)) {
        Err(TrainError::UnknownMonitor { available, .. }) => {
            assert!(available.iter().any(|n| n == "val_rec_loss"), "{available:?}");
        }
        other => panic!("{other:?}"),
    }
}
