//! # 6. Recurrent networks forecast the sunspot cycle
//!
//! The yearly sunspot number rises and falls in cycles of about eleven years, each of
//! its own height. A recurrent network reads the previous years one at a time,
//! carrying a hidden state from year to year, and forecasts the next one. This
//! example teaches:
//!
//! - sequences as `[time, features]` shapes: a window of 20 years of one value each is
//!   a `[20, 1]` input, and a recurrent layer without `return_sequences` keeps only its
//!   last hidden state, the `[units]` vector a `Dense` layer reads;
//! - the three recurrent cells with PyTorch's equations, written the same way in
//!   `network!`: `SimpleRnn` (one tanh layer), `Lstm` (input, forget and output gates
//!   around a cell state) and `Gru` (reset and update gates);
//! - a chronological split: the models learn from the forecasts of 1720-1949 and are
//!   tested on 1950-2008, which they never saw; the scale comes from the training
//!   years only;
//! - gradient clipping (`GradClip::GlobalNorm`), the usual guard against the large
//!   gradients backpropagation through time can produce;
//! - the persistence baseline ("next year equals this year"), which a forecaster must
//!   beat to be worth anything.
//!
//! Scores are test RMSE in sunspot numbers. Persistence scores 33.2; over the seeds
//! 1, 2 and 3 of the initial weights and the shuffling, the SimpleRnn scores 18.3 to
//! 22.4, the LSTM 18.2 to 20.3 and the GRU 19.9 to 23.1.
//!
//! Run it with `cargo run --release --example 06_rnn_sunspots` (an optional argument
//! sets the seed of the initial weights and the shuffling).
use nn_core::data::{self, Series};
use nn_core::prelude::*;
use nn_core::train::DatasetError;
use nn_core::train::{GradClip, TrainError};
use nn_examples::{data_file, timed, JsonObject};

/// Years of history per forecast.
const WINDOW: usize = 20;
/// The first test year: forecasts of this year and later are the test set.
const TEST_FROM: u32 = 1950;

network! {
    /// An Elman RNN over 20 years, then the next year's value.
    pub struct RnnForecaster: [20, 1] -> [1] {
        rnn: SimpleRnn { units: 32 },
        next: Dense { units: 1 },
    }
}

network! {
    /// An LSTM over 20 years, then the next year's value.
    pub struct LstmForecaster: [20, 1] -> [1] {
        lstm: Lstm { units: 32 },
        next: Dense { units: 1 },
    }
}

network! {
    /// A GRU over 20 years, then the next year's value.
    pub struct GruForecaster: [20, 1] -> [1] {
        gru: Gru { units: 32 },
        next: Dense { units: 1 },
    }
}

/// The default seed of the initial weights and the shuffling.
pub const SEED: u64 = 1;
/// Epochs of the full run.
pub const EPOCHS: usize = 150;

/// Test RMSE of every forecaster, in sunspot numbers.
#[derive(Clone, Copy, Debug)]
pub struct Report {
    /// Next year equals this year.
    pub persistence: f64,
    /// `RnnForecaster`.
    pub rnn: f64,
    /// `LstmForecaster`.
    pub lstm: f64,
    /// `GruForecaster`.
    pub gru: f64,
    /// Training and test samples.
    pub samples: (usize, usize),
    /// Seconds spent in `Fit::run`, all three models together.
    pub train_seconds: f64,
}

/// Windows split in time and scaled, with what is needed to score in sunspot numbers.
struct Prepared {
    train: Dataset,
    test: Dataset,
    /// Per test sample: the last year of its window (the persistence forecast).
    test_last: Vec<f32>,
    /// Per test sample: the true value.
    test_truth: Vec<f32>,
    /// The scaled value `(v - mean) / std` uses the training years' mean and std.
    mean: f32,
    std: f32,
}

/// Builds the scaled training and test sets from the series.
fn prepare(series: &Series) -> Result<Prepared, DatasetError> {
    let windows = series.windows(WINDOW, 1)?;
    let first_test = (0..windows.len())
        .find(|&k| series.times()[Series::window_target(WINDOW, 1, k)] >= TEST_FROM)
        .unwrap_or(windows.len());
    // Statistics of the values the training samples see, inputs and targets.
    let seen = &series.values()[..Series::window_target(WINDOW, 1, first_test)];
    let mean = seen.iter().sum::<f32>() / seen.len().max(1) as f32;
    let var = seen.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / seen.len().max(1) as f32;
    let std = var.sqrt().max(f32::EPSILON);
    let test_last = (first_test..windows.len()).map(|k| windows.input(k)[WINDOW - 1]).collect();
    let test_truth = (first_test..windows.len()).map(|k| windows.target(k)[0]).collect();
    let scale = |mut d: Dataset| {
        d.inputs_mut().iter_mut().for_each(|v| *v = (*v - mean) / std);
        d.map_targets(|v| *v = (*v - mean) / std);
        d
    };
    let train = scale(windows.select(&(0..first_test).collect::<Vec<_>>()));
    let test = scale(windows.select(&(first_test..windows.len()).collect::<Vec<_>>()));
    Ok(Prepared { train, test, test_last, test_truth, mean, std })
}

/// The root mean squared error of `forecasts` against `truth`.
fn rmse(forecasts: impl Iterator<Item = f32>, truth: &[f32]) -> f64 {
    let (sum, n) = forecasts.zip(truth).fold((0.0f64, 0usize), |(s, n), (p, &t)| {
        let e = (p - t) as f64;
        (s + e * e, n + 1)
    });
    (sum / n.max(1) as f64).sqrt()
}

/// Trains a fresh network of type `L` and returns its test RMSE and training seconds.
fn train_and_score<L: Layer + Default>(data: &Prepared, epochs: usize, seed: u64) -> Result<(f64, f64), TrainError> {
    let mut model = Model::<L>::new(seed);
    let mut fit = Fit::new(Adam::new(2e-3), MeanSquaredError)
        .epochs(epochs)
        .batch_size(16)
        .clip(GradClip::GlobalNorm(1.0))
        .seed(seed);
    let (history, seconds) = timed(|| fit.run(&mut model, &data.train, None));
    history?;
    let forecasts = model.predict(data.test.inputs()).expect("the test windows are whole samples");
    let forecasts = forecasts.iter().map(|v| v * data.std + data.mean);
    Ok((rmse(forecasts, &data.test_truth), seconds))
}

/// Loads the series and trains the three networks for `epochs` epochs each.
pub fn run(epochs: usize, seed: u64) -> Result<Report, Box<dyn std::error::Error>> {
    let series = data::sunspots(data_file("sunspots.csv"))?;
    let data = prepare(&series)?;
    let (rnn, s_rnn) = train_and_score::<RnnForecaster>(&data, epochs, seed)?;
    let (lstm, s_lstm) = train_and_score::<LstmForecaster>(&data, epochs, seed)?;
    let (gru, s_gru) = train_and_score::<GruForecaster>(&data, epochs, seed)?;
    Ok(Report {
        persistence: rmse(data.test_last.iter().copied(), &data.test_truth),
        rnn,
        lstm,
        gru,
        samples: (data.train.len(), data.test.len()),
        train_seconds: s_rnn + s_lstm + s_gru,
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seed = match std::env::args().nth(1) {
        Some(text) => text.parse().map_err(|_| format!("the seed must be a whole number, found `{text}`"))?,
        None => SEED,
    };
    println!("{}\n", Model::<LstmForecaster>::zeros().summary());
    let report = run(EPOCHS, seed)?;
    println!(
        "{} training windows (targets 1720-1949), {} test windows (1950-2008), {EPOCHS} epochs per model, \
         seed {seed}, {:.2} s\n",
        report.samples.0, report.samples.1, report.train_seconds
    );
    println!("{:<36}{:>10}", "next year, on 1950-2008", "RMSE");
    let rows = [
        ("persistence (this year's value)", report.persistence),
        ("SimpleRnn", report.rnn),
        ("Lstm", report.lstm),
        ("Gru", report.gru),
    ];
    for (name, value) in rows {
        println!("{name:<36}{value:>10.2}");
    }
    let rmse = JsonObject::new()
        .number("persistence", report.persistence)
        .number("rnn", report.rnn)
        .number("lstm", report.lstm)
        .number("gru", report.gru);
    let line = JsonObject::new()
        .string("example", "06_rnn_sunspots")
        .object("rmse", rmse)
        .integer("window_years", WINDOW as i64)
        .string("test_period", "1950-2008")
        .integer("epochs", EPOCHS as i64)
        .integer("seed", seed as i64)
        .number("train_seconds", report.train_seconds);
    println!("{line}");
    Ok(())
}
