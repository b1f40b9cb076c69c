//! `EpochProgress`: a progress bar per epoch, as Keras draws with `verbose=1`.
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
/// `indicatif`'s draw targets and terminal interface, for [`EpochProgress::with_target`]
/// and [`EpochProgress::to_term`].
pub use indicatif::{ProgressDrawTarget, TermLike};

use super::{epoch_summary, BatchLog, Observer};
use crate::train::History;

/// The bar: `epoch  3/20 [=========>          ] 12/25 loss 0.4012  accuracy 0.8750`.
const TEMPLATE: &str = "epoch {prefix} [{bar:30}] {pos}/{len} {msg}";

/// A progress bar per epoch with the running loss and training metrics; when the epoch
/// ends the bar gives way to a line with its time, loss and metrics, validation
/// included:
///
/// ```text
/// epoch  1/20  25/25  0.04s  loss 1.2031  accuracy 0.6525  val_loss 0.5102  val_accuracy 0.8650
/// epoch  2/20 [===============>              ] 13/25 loss 0.4012  accuracy 0.8750
/// ```
///
/// [`EpochProgress::stderr`] draws on standard error and stays silent when it is not a
/// terminal (a pipe, a file, a CI log); [`EpochProgress::hidden`] never draws.
#[derive(Debug)]
pub struct EpochProgress {
    /// Where to draw, until the first epoch creates the bar (so that nothing is drawn
    /// before the bar knows its epoch and length).
    target: Option<ProgressDrawTarget>,
    bar: Option<ProgressBar>,
    hidden: bool,
    started: Instant,
    last_epoch: usize,
}

impl EpochProgress {
    /// Draws on standard error if it is a terminal; otherwise draws nothing.
    pub fn stderr() -> Self {
        Self::with_target(ProgressDrawTarget::stderr())
    }

    /// Never draws (quiet mode).
    pub fn hidden() -> Self {
        Self::with_target(ProgressDrawTarget::hidden())
    }

    /// Draws on a terminal-like sink (a log window, a test's recorder).
    pub fn to_term(term: impl TermLike + 'static) -> Self {
        Self::with_target(ProgressDrawTarget::term_like(Box::new(term)))
    }

    /// Draws on any `indicatif` target.
    pub fn with_target(target: ProgressDrawTarget) -> Self {
        let hidden = target.is_hidden();
        EpochProgress { target: Some(target), bar: None, hidden, started: Instant::now(), last_epoch: 0 }
    }

    /// Whether the bar draws nothing (standard error is not a terminal, or quiet mode).
    pub fn is_hidden(&self) -> bool {
        self.hidden
    }

    fn prefix(&self, epoch: usize) -> String {
        let width = digits(self.last_epoch);
        format!("{epoch:>width$}/{}", self.last_epoch)
    }
}

fn digits(n: usize) -> usize {
    n.max(1).ilog10() as usize + 1
}

impl Observer for EpochProgress {
    fn epoch_start(&mut self, epoch: usize, last_epoch: usize, batches: usize) {
        self.last_epoch = last_epoch;
        self.started = Instant::now();
        let prefix = self.prefix(epoch);
        if let Some(bar) = &self.bar {
            bar.set_message("");
            bar.set_prefix(prefix);
            bar.set_length(batches as u64);
            bar.reset();
        } else if let Some(target) = self.target.take() {
            let style =
                ProgressStyle::with_template(TEMPLATE).expect("the bar template is valid").progress_chars("=> ");
            let bar = ProgressBar::with_draw_target(Some(batches as u64), target).with_style(style).with_prefix(prefix);
            self.bar = Some(bar);
        }
    }

    fn batch_end(&mut self, log: &BatchLog<'_>) {
        let Some(bar) = self.bar.as_ref().filter(|_| !self.hidden) else { return };
        let mut message = format!("loss {:.4}", log.loss);
        for (name, value) in log.metrics() {
            message.push_str(&format!("  {name} {value:.4}"));
        }
        bar.set_message(message);
        bar.set_position(log.batch as u64);
    }

    fn epoch_end(&mut self, history: &History) {
        let (Some(bar), Some(log)) = (&self.bar, history.last()) else { return };
        let seconds = self.started.elapsed().as_secs_f64();
        let batches = bar.length().unwrap_or(0);
        let line =
            format!("epoch {}  {batches}/{batches}  {seconds:.2}s  {}", self.prefix(log.epoch), epoch_summary(log));
        // `println` draws the line above the bar, or nothing when the bar is hidden.
        bar.println(line);
    }

    fn train_end(&mut self, _history: &History) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
