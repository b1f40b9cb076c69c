//! # 3. Regression: forecasting next week's CO2 at Mauna Loa
//!
//! A network that outputs one unbounded number, trained with a regression loss. This
//! example forecasts the weekly CO2 concentration one week ahead from the 52 weeks
//! before it, and teaches:
//!
//! - turning a time series into samples with sliding windows ([`Series::windows`]);
//! - a **chronological split**: the model learns from 1958-1996 and is tested on
//!   1997-2001, which it never saw; normalisation statistics come from the training
//!   years only, so nothing about the test years leaks into training;
//! - normalising a trending series: each window is expressed relative to its last
//!   week, so the network learns the seasonal shape rather than the level of a given
//!   decade, then every lag is standardized;
//! - the two regression losses: mean squared error (MSE) punishes large errors most,
//!   mean absolute error (MAE) treats all errors alike; the same network, seed and
//!   data are trained once with each, and both are scored with both metrics in ppm;
//! - comparing against a naive baseline: a model is only useful if it beats
//!   "the value 52 weeks earlier" (the seasonal naive forecast). The persistence
//!   forecast (last week's value) is reported too. Over five seeds both networks
//!   score a test MAE of 0.28 to 0.31 ppm, against 0.40 for persistence and 1.65 for
//!   the seasonal naive forecast.
//!
//! **Missing weeks.** 59 of the 2284 weeks have no measurement. The loader fills them
//! by linear interpolation between the nearest measured weeks, so every window spans
//! exactly 52 weeks; filled weeks may appear in a window's inputs, but a window whose
//! target week was not measured is dropped: every score is against a real measurement.
//!
//! Run it with `cargo run --release --example 03_regression_co2`.
use nn_core::data::{self, Series};
use nn_core::prelude::*;
use nn_core::train::DatasetError;
use nn_core::train::TrainError;
use nn_examples::{data_file, timed, JsonObject};

/// Weeks of history per sample.
const WINDOW: usize = 52;

network! {
    /// 52 weeks of CO2, relative to the last of them, to next week's change.
    pub struct Forecaster: [52] -> [1] {
        hidden: Dense { units: 32, activation: Relu },
        change: Dense { units: 1 },
    }
}

/// The seed of the initial weights and the shuffling (the same for both losses).
const SEED: u64 = 1;
/// The first test date (`YYYYMMDD`): targets from here on are the test set.
const TEST_FROM: u32 = 19970101;
/// Epochs of the full run.
pub const EPOCHS: usize = 20;
/// The missing-week policy, as reported.
pub const MISSING_WEEKS: &str = "filled by linear interpolation between the nearest measured weeks (inputs only); \
                                 weeks without a measurement are never used as targets";

/// Test errors in ppm (MSE in ppm squared).
#[derive(Clone, Copy, Debug)]
pub struct Scores {
    /// Mean squared error, ppm^2.
    pub mse: f64,
    /// Mean absolute error, ppm.
    pub mae: f64,
}

impl Scores {
    /// The scores of `predictions` against `truth`.
    fn of(predictions: impl Iterator<Item = f32>, truth: &[f32]) -> Scores {
        let (mut squared, mut absolute, mut n) = (0.0f64, 0.0f64, 0usize);
        for (p, &t) in predictions.zip(truth) {
            let e = (p - t) as f64;
            squared += e * e;
            absolute += e.abs();
            n += 1;
        }
        Scores { mse: squared / n.max(1) as f64, mae: absolute / n.max(1) as f64 }
    }

    /// Whether both errors are below `other`'s.
    pub fn beats(&self, other: &Scores) -> bool {
        self.mse < other.mse && self.mae < other.mae
    }

    fn json(&self) -> JsonObject {
        JsonObject::new().number("test_mse", self.mse).number("test_mae", self.mae)
    }
}

/// What a run measured.
pub struct Report {
    /// The network trained with MSE.
    pub trained_with_mse: Scores,
    /// The same network trained with MAE.
    pub trained_with_mae: Scores,
    /// The seasonal naive forecast: the value 52 weeks before the target week.
    pub seasonal_naive: Scores,
    /// The persistence forecast: the value of the week before the target week.
    pub persistence: Scores,
    /// Weeks in the file, and weeks without a measurement.
    pub weeks: usize,
    /// Weeks without a measurement.
    pub missing_weeks: usize,
    /// Training and test samples.
    pub samples: (usize, usize),
    /// Seconds spent in `Fit::run`, both losses together.
    pub train_seconds: f64,
}

/// Windows split in time and normalised, with what is needed to score in ppm.
struct Prepared {
    train: Dataset,
    test: Dataset,
    /// Per test sample: the last week of its window (predictions are relative to it).
    test_last: Vec<f32>,
    /// Per test sample: the measured target, ppm.
    test_truth: Vec<f32>,
    /// Per test sample: the value 52 weeks before the target.
    test_year_before: Vec<f32>,
    /// A target change of 1 in the network's units is this many ppm.
    target_scale: f32,
}

/// Builds the normalised training and test sets from the series.
fn prepare(series: &Series) -> Result<Prepared, DatasetError> {
    let windows = series.windows(WINDOW, 1)?;
    let (mut train_x, mut train_t, mut test_x, mut test_t) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut test_last, mut test_truth, mut test_year_before) = (Vec::new(), Vec::new(), Vec::new());
    for k in 0..windows.len() {
        let step = Series::window_target(WINDOW, 1, k);
        if !series.observed()[step] {
            continue;
        }
        let input = windows.input(k);
        let last = input[WINDOW - 1];
        let target = windows.target(k)[0];
        let (x, t) = if series.times()[step] < TEST_FROM {
            (&mut train_x, &mut train_t)
        } else {
            test_last.push(last);
            test_truth.push(target);
            test_year_before.push(series.values()[step - WINDOW]);
            (&mut test_x, &mut test_t)
        };
        x.extend(input.iter().map(|v| v - last));
        t.push(target - last);
    }
    // The typical size of a weekly change in the training years.
    let target_scale = (train_t.iter().map(|c| c * c).sum::<f32>() / train_t.len().max(1) as f32).sqrt();
    train_t.iter_mut().chain(test_t.iter_mut()).for_each(|c| *c /= target_scale);
    let mut train = Dataset::new(train_x, WINDOW, train_t, 1)?;
    let mut test = Dataset::new(test_x, WINDOW, test_t, 1)?;
    let (mean, std) = train.feature_stats();
    train.standardize(&mean, &std);
    test.standardize(&mean, &std);
    Ok(Prepared { train, test, test_last, test_truth, test_year_before, target_scale })
}

/// Trains a fresh `Forecaster` with `loss` and scores its test forecasts in ppm.
fn train_and_score<Lo: Loss>(data: &Prepared, loss: Lo, epochs: usize) -> Result<(Scores, f64), TrainError> {
    let mut model = Model::<Forecaster>::new(SEED);
    let mut fit = Fit::new(Adam::new(1e-3), loss).epochs(epochs).batch_size(32).seed(SEED);
    let (history, seconds) = timed(|| fit.run(&mut model, &data.train, None));
    history?;
    let changes = model.predict(data.test.inputs()).expect("the test windows are whole samples");
    let forecasts = changes.iter().zip(&data.test_last).map(|(c, last)| last + c * data.target_scale);
    Ok((Scores::of(forecasts, &data.test_truth), seconds))
}

/// Loads the series, trains with MSE and with MAE for `epochs` epochs each, and
/// scores both against the baselines.
pub fn run(epochs: usize) -> Result<Report, Box<dyn std::error::Error>> {
    let series = data::co2(data_file("co2.csv"))?;
    let data = prepare(&series)?;
    let (trained_with_mse, seconds_mse) = train_and_score(&data, MeanSquaredError, epochs)?;
    let (trained_with_mae, seconds_mae) = train_and_score(&data, MeanAbsoluteError, epochs)?;
    Ok(Report {
        trained_with_mse,
        trained_with_mae,
        seasonal_naive: Scores::of(data.test_year_before.iter().copied(), &data.test_truth),
        persistence: Scores::of(data.test_last.iter().copied(), &data.test_truth),
        weeks: series.len(),
        missing_weeks: series.missing(),
        samples: (data.train.len(), data.test.len()),
        train_seconds: seconds_mse + seconds_mae,
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("{}\n", Model::<Forecaster>::zeros().summary());
    let report = run(EPOCHS)?;
    println!("{} weeks, {} without a measurement: {MISSING_WEEKS}", report.weeks, report.missing_weeks);
    println!(
        "{} training windows (targets before 1997), {} test windows (1997-2001), {EPOCHS} epochs per loss, {:.2} s\n",
        report.samples.0, report.samples.1, report.train_seconds
    );
    println!("{:<42}{:>14}{:>12}", "one week ahead, on 1997-2001", "MSE (ppm^2)", "MAE (ppm)");
    let rows = [
        ("network trained with MSE", report.trained_with_mse),
        ("network trained with MAE", report.trained_with_mae),
        ("seasonal naive (value 52 weeks earlier)", report.seasonal_naive),
        ("persistence (last week's value)", report.persistence),
    ];
    for (name, s) in rows {
        println!("{name:<42}{:>14.4}{:>12.4}", s.mse, s.mae);
    }

    let baseline = report.seasonal_naive.json().string("forecast", "the value 52 weeks earlier (seasonal naive)");
    let persistence = report.persistence.json().string("forecast", "last week's value");
    let line = JsonObject::new()
        .string("example", "03_regression_co2")
        .object("trained_with_mse", report.trained_with_mse.json())
        .object("trained_with_mae", report.trained_with_mae.json())
        .object("baseline", baseline)
        .object("persistence", persistence)
        .string("missing_weeks", &format!("{} of {} weeks {MISSING_WEEKS}", report.missing_weeks, report.weeks))
        .integer("window_weeks", WINDOW as i64)
        .string("test_period", "1997-2001")
        .integer("epochs", EPOCHS as i64)
        .number("train_seconds", report.train_seconds);
    println!("{line}");
    Ok(())
}
