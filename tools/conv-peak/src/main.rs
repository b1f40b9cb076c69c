//! `cargo run --release --manifest-path tools/conv-peak/Cargo.toml [-- ROUNDS [ONLY]]`
//!
//! Times the batch-1 inference of the digits CNN (`examples/05_cnn_digits.rs`, the
//! `cnn_infer_b1` case of `nn-bench`) as a whole and layer by layer through the kernels
//! and layers it calls (and the clearing of its stack scratch), and measures this core's peak multiply-add rate with a tight loop of
//! independent fused multiply-adds of the widest vectors the library uses (16 lanes
//! with AVX-512, 8 with AVX2). Every case is timed in short bursts, interleaved with the
//! others, `ROUNDS` times (default 200); each keeps its best burst, so a machine shared
//! with other work disturbs the peak and the layers alike. Prints, per convolution, its
//! multiply-adds per second and their fraction of the peak. With `ONLY`, only the peak
//! and the cases whose name starts with it run (for a profiler).
//!
//! `-- gaps` times `predict_one` after idle gaps of 0 µs to 5 ms, the first call after
//! each gap and the one right after it (best, median, 90th percentile and worst of
//! 200): with `--features threading` and `MATMUL_NUM_THREADS=2`, what a worker that
//! parked between calls costs the call that finds it so.
use std::hint::black_box;
use std::time::Instant;

use nn_core::kernels::conv::{self, ConvGeometry};
use nn_core::kernels::{dense, isa, pool};
use nn_core::prelude::*;
use nn_core::Weights;

network! {
    /// The CNN of `examples/05_cnn_digits.rs` (and of `nn-bench`'s `cnn_infer_b1`).
    pub struct DigitCnn: [1, 8, 8] -> [10] {
        conv1: Conv2d { filters: 16, kernel: 3, padding: Same },
        bn1: BatchNorm2d,
        relu1: Relu,
        conv2: Conv2d { filters: 32, kernel: 3, padding: Same },
        relu2: Relu,
        pool: MaxPool2d { size: 2 } => [32, 4, 4],
        flat: Flatten,
        fc1: Dense { units: 64, activation: Relu },
        drop: Dropout { rate: 0.3 },
        logits: Dense { units: 10 },
    }
}

/// Fused multiply-adds per burst of the peak loop.
const PEAK_ITERS: usize = 20_000;

/// The peak loop with AVX-512: 12 independent chains of 16-lane fused multiply-adds
/// (enough to cover a 4-cycle latency on two ports), `iters` times each, kept in
/// registers (nothing reads them before the end; no fast-math folds the chains).
/// Returns the multiply-adds done.
///
/// # Safety
/// The CPU has AVX-512 F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn peak_avx512(iters: usize) -> usize {
    use core::arch::x86_64::*;
    let (b, c) = (_mm512_set1_ps(0.999_9), _mm512_set1_ps(1e-6));
    let mut a = [_mm512_set1_ps(0.5); 12];
    for _ in 0..iters {
        for v in &mut a {
            *v = _mm512_fmadd_ps(*v, b, c);
        }
    }
    black_box(a);
    iters * 12 * 16
}

/// [`peak_avx512`] with 8-lane vectors (AVX2 and FMA).
///
/// # Safety
/// The CPU has AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn peak_avx2(iters: usize) -> usize {
    use core::arch::x86_64::*;
    let (b, c) = (_mm256_set1_ps(0.999_9), _mm256_set1_ps(1e-6));
    let mut a = [_mm256_set1_ps(0.5); 12];
    for _ in 0..iters {
        for v in &mut a {
            *v = _mm256_fmadd_ps(*v, b, c);
        }
    }
    black_box(a);
    iters * 12 * 8
}

/// One burst of the peak loop of the instruction set the kernels use: multiply-adds done.
fn peak_burst() -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        let isa = isa::isa();
        if isa.avx512() {
            // SAFETY: the CPU has AVX-512 F.
            return unsafe { peak_avx512(PEAK_ITERS) };
        }
        if isa.avx2() {
            // SAFETY: the CPU has AVX2 and FMA.
            return unsafe { peak_avx2(PEAK_ITERS) };
        }
    }
    let mut a = [0.5f32; 8];
    for _ in 0..PEAK_ITERS {
        for v in &mut a {
            *v = v.mul_add(0.999_9, 1e-6);
        }
        a = black_box(a);
    }
    PEAK_ITERS * 8
}

/// A timed case: its name, multiply-adds per call (0 when not counted) and the best
/// seconds per call so far.
struct Case<'a> {
    name: &'static str,
    macs: usize,
    best: f64,
    run: Box<dyn FnMut() + 'a>,
}

impl<'a> Case<'a> {
    fn new(name: &'static str, macs: usize, run: impl FnMut() + 'a) -> Self {
        Case { name, macs, best: f64::INFINITY, run: Box::new(run) }
    }

    /// One burst of `calls` calls; keeps the best time per call.
    fn burst(&mut self, calls: usize) {
        let t = Instant::now();
        for _ in 0..calls {
            (self.run)();
        }
        self.best = self.best.min(t.elapsed().as_secs_f64() / calls as f64);
    }
}

/// Deterministic values in `[-1, 1)`.
fn values(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..len).map(|_| rng.uniform_in(-1.0, 1.0)).collect()
}

fn geometry(channels: usize) -> ConvGeometry {
    ConvGeometry {
        channels,
        height: 8,
        width: 8,
        kernel: [3, 3],
        stride: [1, 1],
        padding: [1, 1],
        dilation: [1, 1],
        out_height: 8,
        out_width: 8,
    }
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("gaps") {
        return gaps();
    }
    let rounds: usize = std::env::args().nth(1).map_or(200, |r| r.parse().expect("ROUNDS: a number"));
    let only = std::env::args().nth(2).unwrap_or_default();
    let model = Model::<DigitCnn>::new(1);
    let image = Tensor::<Shape3<1, 8, 8>>::from_slice(&values(64, 5)).unwrap();

    let (g1, g2) = (geometry(1), geometry(16));
    let (w1, b1, w2, b2) = (values(16 * 9, 1), values(16, 2), values(32 * 144, 3), values(32, 4));
    let (wf, bf, wl, bl) = (values(64 * 512, 6), values(64, 7), values(10 * 64, 8), values(10, 9));
    let x1 = values(64, 10);
    let x2 = values(16 * 64, 11);
    let x3 = values(32 * 64, 12);
    let x4 = values(512, 13);
    let x5 = values(64, 14);
    let scratch_len = conv::scratch_len(144, 64);
    let (mut s1, mut s2) = (vec![0.0; scratch_len], vec![0.0; scratch_len]);
    let (mut y1, mut y2, mut y3) = (vec![0.0; 16 * 64], vec![0.0; 32 * 64], vec![0.0; 512]);
    let (mut y4, mut y5) = (vec![0.0; 64], vec![0.0; 10]);
    let (mut yb, mut yr) = (vec![0.0; 16 * 64], vec![0.0; 32 * 64]);
    let (mut ybr, mut y3r) = (vec![0.0; 16 * 64], vec![0.0; 512]);
    let pool_geometry = pool::PoolGeometry {
        height: 8,
        width: 8,
        size: [2, 2],
        stride: [2, 2],
        padding: [0, 0],
        out_height: 4,
        out_width: 4,
    };
    let bn = nn_core::layers::BatchNorm::<Shape3<16, 8, 8>>::new(0.1, 1e-5);
    let (bn_params, bn_buffers) = ([values(16, 15), values(16, 16)].concat(), [values(16, 17), vec![1.0; 16]].concat());
    let relu = nn_core::layers::Act::<Shape3<32, 8, 8>>::new(Activation::Relu);
    let peak_macs = peak_burst();
    let mut cases = vec![
        Case::new("peak", peak_macs, || {
            black_box(peak_burst());
        }),
        Case::new("whole network (predict_one)", 0, || {
            black_box(model.predict_one(black_box(&image)));
        }),
        Case::new("conv1 1->16 3x3", 16 * 9 * 64, || {
            conv::forward(&g1, 16, black_box(&x1), &w1, Some(&b1), &mut y1, &mut s1);
            black_box(&y1);
        }),
        Case::new("conv2 16->32 3x3", 32 * 144 * 64, || {
            conv::forward(&g2, 32, black_box(&x2), &w2, Some(&b2), &mut y2, &mut s2);
            black_box(&y2);
        }),
        Case::new("batch norm 16x64", 0, || {
            Layer::forward(&bn, Weights::new(&bn_params, &bn_buffers), black_box(&x2), &mut yb, &mut []);
            black_box(&yb);
        }),
        // Batch norm and the ReLU after it, one pass in place (as the network runs them),
        // after a copy of the input (1024 floats) that the pass overwrites.
        Case::new("copy + batch norm + relu in place", 0, || {
            ybr.copy_from_slice(black_box(&x2));
            Layer::relu_in_place(&bn, Weights::new(&bn_params, &bn_buffers), &mut ybr);
            black_box(&ybr);
        }),
        Case::new("relu 2048", 0, || {
            Layer::forward(&relu, Weights::new(&[], &[]), black_box(&x3), &mut yr, &mut []);
            black_box(&yr);
        }),
        // What the generated `forward_one` clears for its scratch on the stack.
        Case::new("zero the stack scratch", 0, || {
            let mut stack = [0.0f32; <DigitCnn as Layer>::FORWARD_SCRATCH];
            black_box(&mut stack);
        }),
        Case::new("max pool 2x2", 0, || {
            pool::max_forward(&pool_geometry, black_box(&x3), &mut y3);
            black_box(&y3);
        }),
        // A ReLU and the max pooling after it, one pass (as the network runs them).
        Case::new("max pool 2x2 of relu", 0, || {
            pool::max_relu_forward(&pool_geometry, black_box(&x3), &mut y3r);
            black_box(&y3r);
        }),
        Case::new("fc1 512->64 relu", 512 * 64, || {
            dense::forward_one::<512>(black_box(&x4), &wf, Some(&bf), Activation::Relu, 64, &mut y4);
            black_box(&y4);
        }),
        Case::new("logits 64->10", 64 * 10, || {
            dense::forward_one::<64>(black_box(&x5), &wl, Some(&bl), Activation::Identity, 10, &mut y5);
            black_box(&y5);
        }),
    ];
    cases.retain(|case| case.name == "peak" || case.name.starts_with(&only));
    for case in &mut cases {
        case.burst(10);
    }
    for _ in 0..rounds {
        for (i, case) in cases.iter_mut().enumerate() {
            case.burst(if i == 0 { 1 } else { 50 });
        }
    }
    let peak = cases[0].macs as f64 / cases[0].best;
    println!("instruction set: {}", isa::isa());
    println!("stack scratch of predict_one: {} floats", <DigitCnn as Layer>::FORWARD_SCRATCH);
    println!("peak: {:.1} G multiply-adds/s (best of {rounds} bursts of {PEAK_ITERS} x 12 vector FMAs)", peak / 1e9);
    for case in &cases[1..] {
        print!("{:<30} {:>8.3} µs", case.name, case.best * 1e6);
        if case.macs > 0 {
            let rate = case.macs as f64 / case.best;
            print!("  {:>6.1} G multiply-adds/s  {:>5.1}% of peak", rate / 1e9, 100.0 * rate / peak);
        }
        println!();
    }
}

/// `predict_one` after idle gaps (busy waits below 500 µs, sleeps from 500 µs): the
/// first call after each gap and the call right after it.
fn gaps() {
    let model = Model::<DigitCnn>::new(1);
    let image = Tensor::<Shape3<1, 8, 8>>::from_slice(&values(64, 5)).unwrap();
    let t = Instant::now();
    for _ in 0..100_000 {
        std::hint::spin_loop();
    }
    println!("instruction set: {}", isa::isa());
    println!("spin-loop pause: {:.1} ns", t.elapsed().as_secs_f64() * 1e9 / 100_000.0);
    for _ in 0..1000 {
        black_box(model.predict_one(black_box(&image)));
    }
    let summary = |times: &mut Vec<f64>| {
        times.sort_by(f64::total_cmp);
        let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
        format!("best {:6.2} median {:6.2} p90 {:6.2} max {:7.1}", at(0.0), at(0.5), at(0.9), at(1.0))
    };
    for gap_us in [0u64, 20, 50, 100, 200, 500, 1000, 5000] {
        let (mut first, mut second) = (Vec::new(), Vec::new());
        for _ in 0..200 {
            let t = Instant::now();
            if gap_us >= 500 {
                std::thread::sleep(std::time::Duration::from_micros(gap_us));
            } else {
                while t.elapsed().as_micros() < u128::from(gap_us) {}
            }
            for times in [&mut first, &mut second] {
                let t = Instant::now();
                black_box(model.predict_one(black_box(&image)));
                times.push(t.elapsed().as_secs_f64() * 1e6);
            }
        }
        println!("gap {gap_us:>5} µs: first call {} | second {} (µs)", summary(&mut first), summary(&mut second));
    }
}
