//! Timing by repeated samples: the best and the median time per call.
//!
//! One sample times a batch of calls, sized so that a sample lasts at least
//! [`SAMPLE`], so that the clock's resolution does not matter; samples are taken until
//! the time budget is spent. On a shared machine the minimum is the least disturbed
//! estimate of the cost of the work, the median the typical one.
//!
//! Samples are wall-clock time, or with [`Clock::Cpu`] the CPU time of the process,
//! which excludes the time other processes hold the core (one thread only: the CPU
//! time of several threads adds up).
use std::time::{Duration, Instant};

/// What a sample measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// Elapsed time.
    Wall,
    /// CPU time of the process (all its threads).
    Cpu,
}

impl Clock {
    /// Seconds since an arbitrary origin.
    fn now(self, origin: Instant) -> f64 {
        match self {
            Clock::Wall => origin.elapsed().as_secs_f64(),
            Clock::Cpu => {
                let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
                // SAFETY: `t` is a valid timespec to write into.
                let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) };
                assert_eq!(rc, 0, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID) failed");
                t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
            }
        }
    }
}

/// The shortest sample.
const SAMPLE: Duration = Duration::from_millis(2);
/// The fewest samples, whatever the budget.
const MIN_SAMPLES: usize = 7;

/// Seconds per call: the best and the median sample.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// The fastest sample's time per call.
    pub best: f64,
    /// The median sample's time per call.
    pub median: f64,
    /// Number of samples.
    pub samples: usize,
}

/// Times `f` for about `budget` (wall-clock) after a warm-up of about a tenth of it.
pub fn measure(clock: Clock, budget: Duration, mut f: impl FnMut()) -> Timing {
    let origin = Instant::now();
    // Warm-up, and the number of calls per sample.
    let warm_up = budget / 10;
    let start = Instant::now();
    let mut calls = 0u64;
    while calls < 3 || start.elapsed() < warm_up {
        f();
        calls += 1;
    }
    let per_call = start.elapsed().as_secs_f64() / calls as f64;
    let batch = ((SAMPLE.as_secs_f64() / per_call).ceil() as u64).max(1);

    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < MIN_SAMPLES || start.elapsed() < budget {
        let t = clock.now(origin);
        for _ in 0..batch {
            f();
        }
        times.push((clock.now(origin) - t) / batch as f64);
    }
    times.sort_by(f64::total_cmp);
    Timing { best: times[0], median: times[times.len() / 2], samples: times.len() }
}
