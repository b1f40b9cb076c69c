//! The progress bar of `fit`: what it draws on a terminal, and that it draws nothing
//! when standard error is not a terminal or when asked to be quiet.
//!
//! The silent cases run `fit` in a child process (this test binary, running only
//! `child_training_run`) whose standard error is a pipe, and read what it wrote.
use std::process::Command;
use std::sync::{Arc, Mutex};

use nn_core::prelude::*;
use nn_core::report::{EpochProgress, TermLike};
use nn_core::train::Metric;

network! {
    pub struct Tiny: [2] -> [2] {
        hidden: Dense { units: 8, activation: Tanh },
        out: Dense { units: 2 },
    }
}

fn data() -> Dataset {
    let mut rng = Rng::new(3);
    let x: Vec<f32> = (0..80).map(|_| rng.normal()).collect();
    let y: Vec<f32> = x.chunks(2).map(|p| (p[0] * p[1] > 0.0) as u8 as f32).collect();
    Dataset::new(x, 2, y, 1).unwrap()
}

fn fit() -> Fit<Tiny, Adam, SparseCategoricalCrossEntropy> {
    Fit::new(Adam::new(0.05), SparseCategoricalCrossEntropy::from_logits())
        .epochs(3)
        .batch_size(8)
        .metrics(&[Metric::Accuracy])
        .validation_split(0.25)
}

/// Which output the child run asks for (environment variable `NN_REPORT_CHILD`).
const CHILD: &str = "NN_REPORT_CHILD";

/// Does nothing in a normal test run; in a child started by the tests below, trains
/// with the output settings named by `NN_REPORT_CHILD`.
#[test]
fn child_training_run() {
    let Ok(mode) = std::env::var(CHILD) else { return };
    let fit = match mode.as_str() {
        "progress" => fit().progress(true),
        "hidden" => fit().observe(EpochProgress::hidden()),
        "verbose" => fit().verbose(true),
        "plain" => fit(),
        other => panic!("unknown child mode {other}"),
    };
    let mut fit = fit;
    let mut model = Model::<Tiny>::new(1);
    fit.run(&mut model, &data(), None).unwrap();
}

/// The test harness's name of `child_training_run`: its module path without the crate.
fn child_test_name() -> String {
    let module = module_path!().split_once("::").map_or("", |(_, path)| path);
    format!("{module}::child_training_run")
}

/// Runs `child_training_run` in a child process in `mode`; returns its standard error.
fn child_stderr(mode: &str) -> String {
    let output = Command::new(std::env::current_exe().unwrap())
        .args([child_test_name().as_str(), "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, mode)
        .output()
        .unwrap();
    assert!(output.status.success(), "child {mode}: {output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("1 passed"), "the child ran its test: {stdout}");
    String::from_utf8(output.stderr).unwrap()
}

#[test]
fn silent_when_standard_error_is_not_a_terminal_or_when_hidden() {
    assert_eq!(child_stderr("progress"), "", "a progress bar on a pipe draws nothing");
    assert_eq!(child_stderr("hidden"), "", "a hidden bar draws nothing");
    assert_eq!(child_stderr("plain"), "");
    // The control: the same child does write to the pipe when asked for lines.
    let lines = child_stderr("verbose");
    assert_eq!(lines.lines().count(), 3, "{lines}");
    assert!(lines.starts_with("epoch   1  loss "), "{lines}");
}

#[test]
fn draws_on_a_real_terminal() {
    // `script` (util-linux) runs the child with a pseudo-terminal as standard error.
    let exe = std::env::current_exe().unwrap();
    let command = format!("{} {} --exact --nocapture --test-threads=1", exe.display(), child_test_name());
    let output = Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .env(CHILD, "progress")
        .env("TERM", "xterm")
        .output()
        .expect("`script` from util-linux");
    assert!(output.status.success(), "{output:?}");
    let screen = String::from_utf8_lossy(&output.stdout);
    for epoch in 1..=3 {
        assert!(screen.contains(&format!("epoch {epoch}/3  4/4  ")), "epoch {epoch} line missing: {screen}");
    }
    assert!(screen.contains("val_accuracy"), "{screen}");
}

/// A terminal that records what is written to it.
#[derive(Clone, Debug, Default)]
struct Recorder(Arc<Mutex<String>>);

impl TermLike for Recorder {
    fn width(&self) -> u16 {
        120
    }
    fn move_cursor_up(&self, _n: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_down(&self, _n: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_right(&self, _n: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_left(&self, _n: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        let mut text = self.0.lock().unwrap();
        text.push_str(s);
        text.push('\n');
        Ok(())
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        self.0.lock().unwrap().push_str(s);
        Ok(())
    }
    /// A redraw: a new line in the record.
    fn clear_line(&self) -> std::io::Result<()> {
        self.0.lock().unwrap().push('\n');
        Ok(())
    }
    fn flush(&self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn one_line_per_epoch_with_loss_metrics_and_validation() {
    let recorder = Recorder::default();
    let mut fit = fit().epochs(12).observe(EpochProgress::to_term(recorder.clone()));
    let mut model = Model::<Tiny>::new(1);
    let history = fit.run(&mut model, &data(), None).unwrap();
    let text = recorder.0.lock().unwrap().clone();
    // indicatif pads every line it draws to the terminal width; the summary line has
    // at most two spaces in a row.
    let lines: Vec<&str> =
        text.match_indices("epoch ").map(|(at, _)| text[at..].split("   ").next().unwrap()).collect();
    let summaries: Vec<&str> = lines.iter().copied().filter(|l| l.contains("s  loss ")).collect();
    assert_eq!(summaries.len(), 12, "{text}");
    for (line, log) in summaries.iter().zip(&history.epochs) {
        // `epoch  3/12  4/4  0.00s  loss 0.6931  accuracy ...  val_loss ...  val_accuracy ...`
        let head = format!("epoch {:>2}/12  4/4  ", log.epoch);
        assert!(line.starts_with(&head), "{line:?} should start with {head:?}");
        let tail = format!(
            "loss {:.4}  accuracy {:.4}  val_loss {:.4}  val_accuracy {:.4}",
            log.loss,
            log.metrics[0].1,
            log.val_loss.unwrap(),
            log.val_metrics[0].1
        );
        assert!(line.ends_with(&tail), "{line:?} should end with {tail:?}");
    }
    // The bar itself, mid-epoch, with the running loss and accuracy.
    let bar = "epoch  1/12 [===============>              ] 2/4 loss ";
    assert!(text.lines().any(|l| l.starts_with(bar) && l.contains("  accuracy ")), "{text}");
}
