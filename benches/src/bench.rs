//! Speed benchmarks of nn-core: batch-1 inference, training steps and GEMM, the
//! counterpart of `tools/bench/pytorch_bench.py` (same shapes, same work).
//!
//! ```text
//! cargo run --release -p nn-bench -- [--threads N] [--json] [--budget SECONDS] [--only CASE,...] [--clock wall|cpu]
//! cargo run --release -p nn-bench -- --train-digits [--epochs N]   # the run whose peak memory is compared
//! cargo run --release -p nn-bench -- --gemm-sweep     # the register-blocked kernels against matrixmultiply
//! cargo run --release -p nn-bench -- --export-steps DIR   # the small steps' weights, inputs and outputs
//! ```
//!
//! Every case reports seconds per call (a step of a whole batch for training), the
//! best and the median of many samples (see `timing.rs`). `tools/bench-vs-pytorch`
//! runs this binary and the PyTorch script and prints the ratios.
mod counting;
mod export;
mod models;
mod timing;

use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use nn_core::kernels::{gemm, gemv_batch, recurrent, MatRef};
use nn_core::layers::{GruCell, LstmCell};
use nn_core::prelude::*;
use nn_core::stream::{Step, Stream};
use nn_core::train::Metric;

use models::{
    BigMlp, ConvLayer, Dense8, DigitCnn, DigitMlp, EncoderNet, HandDense8, HandGru, HandLstm, HandMlp, HandRecurrent,
    LstmNet, SmallCnn, StreamGru, StreamGru8, StreamLstm16, StreamLstm64,
};
use timing::{measure, Clock, Timing};

#[global_allocator]
static GLOBAL: counting::Counting = counting::Counting;

/// Command-line options.
struct Options {
    threads: usize,
    json: bool,
    clock: Clock,
    budget: Duration,
    only: Option<Vec<String>>,
    train_digits: bool,
    epochs: usize,
    gemm_sweep: bool,
    export_steps: Option<std::path::PathBuf>,
}

const USAGE: &str = "usage: nn-bench [--threads N] [--json] [--budget SECONDS] [--only CASE,...] [--clock wall|cpu]
       nn-bench --train-digits [--epochs N]
       nn-bench --gemm-sweep [--budget SECONDS] [--clock wall|cpu]
       nn-bench --export-steps DIR";

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        threads: 1,
        json: false,
        clock: Clock::Wall,
        budget: Duration::from_millis(1000),
        only: None,
        train_digits: false,
        epochs: 30,
        gemm_sweep: false,
        export_steps: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--threads" => options.threads = value("--threads")?.parse().map_err(|e| format!("--threads: {e}"))?,
            "--json" => options.json = true,
            "--clock" => {
                options.clock = match value("--clock")?.as_str() {
                    "wall" => Clock::Wall,
                    "cpu" => Clock::Cpu,
                    other => return Err(format!("--clock: `{other}` is not `wall` or `cpu`")),
                }
            }
            "--budget" => {
                let s: f64 = value("--budget")?.parse().map_err(|e| format!("--budget: {e}"))?;
                options.budget = Duration::from_secs_f64(s);
            }
            "--only" => options.only = Some(value("--only")?.split(',').map(str::to_owned).collect()),
            "--train-digits" => options.train_digits = true,
            "--gemm-sweep" => options.gemm_sweep = true,
            "--export-steps" => options.export_steps = Some(value("--export-steps")?.into()),
            "--epochs" => options.epochs = value("--epochs")?.parse().map_err(|e| format!("--epochs: {e}"))?,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if options.threads == 0 {
        return Err("--threads must be at least 1".into());
    }
    if options.clock == Clock::Cpu && options.threads > 1 {
        return Err("--clock cpu adds up the time of all threads: use it with --threads 1".into());
    }
    Ok(options)
}

/// One measured case.
struct Case {
    name: &'static str,
    /// Samples per call (the batch), for throughput.
    batch: usize,
    timing: Timing,
}

/// What a run measured.
#[derive(Default)]
struct Report {
    cases: Vec<Case>,
    /// Allocations per training step after warm-up, per case.
    allocations: Vec<(&'static str, f64)>,
}

struct Bench {
    options: Options,
    report: Report,
}

impl Bench {
    fn wanted(&self, name: &str) -> bool {
        self.options.only.as_ref().is_none_or(|only| only.iter().any(|o| name.starts_with(o.as_str())))
    }

    /// Times `f` as case `name` unless it is filtered out.
    fn case(&mut self, name: &'static str, batch: usize, f: impl FnMut()) {
        if !self.wanted(name) {
            return;
        }
        let timing = measure(self.options.clock, self.options.budget, f);
        if !self.options.json {
            let rate = batch as f64 / timing.best;
            eprintln!(
                "{name:<22} best {:>12}  median {:>12}  {rate:>14.0} samples/s  ({} samples)",
                seconds(timing.best),
                seconds(timing.median),
                timing.samples
            );
        }
        self.report.cases.push(Case { name, batch, timing });
    }

    fn allocations(&mut self, name: &'static str, per_step: f64) {
        if self.wanted(name) {
            self.report.allocations.push((name, per_step));
        }
    }
}

/// A time with a unit a person reads.
fn seconds(s: f64) -> String {
    if s < 1e-6 {
        format!("{:.1} ns", s * 1e9)
    } else if s < 1e-3 {
        format!("{:.2} µs", s * 1e6)
    } else {
        format!("{:.3} ms", s * 1e3)
    }
}

/// Reproducible inputs in `[0, 1)`.
pub(crate) fn uniform(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..n).map(|_| rng.uniform()).collect()
}

/// Class labels `0..classes` cycling over a batch.
fn labels(batch: usize, classes: usize) -> Vec<f32> {
    (0..batch).map(|i| (i % classes) as f32).collect()
}

/// A training step with Adam and cross-entropy on a fixed batch: zero the gradients,
/// training forward, loss, backward, optimizer step.
struct Trainer<L: Layer> {
    model: Model<L>,
    ws: Workspace<L>,
    opt: OptimizerState<Adam>,
    rng: Rng,
    x: Vec<f32>,
    t: Vec<f32>,
}

impl<L: Layer + Default> Trainer<L> {
    fn new(batch: usize, classes: usize) -> Self {
        Trainer {
            model: Model::new(1),
            ws: Workspace::new(),
            opt: OptimizerState::new(Adam::new(1e-3)),
            rng: Rng::new(2),
            x: uniform(batch * <L::Input as Shape>::LEN, 3),
            t: labels(batch, classes),
        }
    }

    fn step(&mut self) -> f32 {
        let loss = SparseCategoricalCrossEntropy::from_logits();
        self.ws.zero_grads();
        self.model.forward_train(&mut self.ws, &self.x, &mut self.rng);
        let l = self.ws.loss(&loss, &self.t);
        self.model.backward(&mut self.ws, &self.x, None);
        self.opt.step(self.model.params_mut(), self.ws.grads());
        l
    }
}

/// Warms `trainer` up, counts the allocations of ten steps, then times its steps.
fn train_case<L: Layer + Default>(bench: &mut Bench, name: &'static str, batch: usize, classes: usize) {
    if !bench.wanted(name) {
        return;
    }
    let mut trainer = Trainer::<L>::new(batch, classes);
    trainer.step();
    let allocations = counting::per_call(10, || {
        black_box(trainer.step());
    });
    bench.allocations(name, allocations);
    bench.case(name, batch, || {
        black_box(trainer.step());
    });
}

/// The parts of the streaming GRU step, timed alone (not compared with PyTorch): the
/// cell's gate arithmetic for 64 units, the 192 input rows of 8, and the 192 recurrent
/// rows of 64 once streamed from L2 (all of them, in one order every time) and once
/// from L1 (half of them, twice: the time of all 192 if they stayed in L1).
fn gru_parts(bench: &mut Bench, params: &[f32]) {
    use nn_core::activation::Activation;
    use nn_core::kernels::dense;
    const F: usize = models::SEQ_FEATURES;
    let rows = 3 * 64;
    let (ih, rest) = params.split_at(rows * F);
    let (hh, rest) = rest.split_at(rows * 64);
    let (b_ih, b_hh) = rest.split_at(rows);
    let (x, h0) = (uniform(F, 21), uniform(64, 22));
    let (mut p, mut q, mut h) = (vec![0.0; rows], vec![0.0; rows], h0.clone());
    dense::forward_one::<F>(&x, ih, Some(b_ih), Activation::Identity, rows, &mut p);
    dense::forward_one::<64>(&h, hh, Some(b_hh), Activation::Identity, rows, &mut q);
    let gates = p.clone();
    bench.case("gru_part_cell_64", 1, || {
        p.copy_from_slice(&gates);
        h.copy_from_slice(&h0);
        recurrent::cell_step(recurrent::CellKind::Gru, &mut p, black_box(&q), &mut h, &mut []);
        black_box(&h);
    });
    bench.case("gru_part_input_rows", 1, || {
        dense::forward_one::<F>(black_box(&x), ih, Some(b_ih), Activation::Identity, rows, &mut p);
        black_box(&p);
    });
    bench.case("gru_part_recurrent_rows_l2", 1, || {
        dense::forward_one::<64>(black_box(&h0), hh, Some(b_hh), Activation::Identity, rows, &mut q);
        black_box(&q);
    });
    let half = rows / 2;
    bench.case("gru_part_recurrent_rows_l1", 1, || {
        for _ in 0..2 {
            dense::forward_one::<64>(black_box(&h0), &hh[..half * 64], Some(b_hh), Activation::Identity, half, &mut q);
        }
        black_box(&q);
    });
}

/// The input of `dense8_8_b1`.
pub(crate) fn dense8_input() -> [f32; 8] {
    uniform(8, 23).try_into().unwrap()
}

/// The parameters of a streaming step case, from the layer's initialisation.
pub(crate) fn step_params<L: Step>(layer: L) -> Vec<f32> {
    let mut params = vec![0.0; L::PARAMS];
    layer.init(&mut params, &mut [], &mut Rng::new(1));
    params
}

/// The input of a streaming step case of `I` features.
pub(crate) fn step_input<const I: usize>() -> Tensor<Shape1<I>> {
    Tensor::from_slice(&uniform(I, 6)).unwrap()
}

/// Dense 8->8 at batch 1 (`dense8_8_b1`) and as fixed-size code over transposed
/// weights (`hand_dense8_8_b1`), checked against each other first.
fn dense8_cases(bench: &mut Bench) {
    let model = Model::<Dense8>::new(1);
    let hand = HandDense8::from_params(model.params());
    let x = dense8_input();
    let ours = model.predict_one(&x.into());
    if let Some(theirs) = hand.forward(&x) {
        let max_diff = ours.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(max_diff < 1e-6, "Dense 8->8 and its hand-written loop disagree by {max_diff}");
        bench.case("hand_dense8_8_b1", 1, || {
            black_box(hand.forward(black_box(&x)));
        });
    }
    let xt: Tensor<Shape1<8>> = x.into();
    bench.case("dense8_8_b1", 1, || {
        black_box(model.predict_one(black_box(&xt)));
    });
}

/// One streaming step of `layer` (case `name`) and of its hand-written stand-in
/// (`hand_` + `name`, built by `hand` from the same parameters), checked against each
/// other over five steps first. Returns the parameters.
fn step_cases<L, const I: usize, const H: usize, const GH: usize>(
    bench: &mut Bench,
    name: &'static str,
    layer: L,
    hand: fn(recurrent::CellKind, &[f32]) -> HandRecurrent<I, H, GH>,
) -> Vec<f32>
where
    L: Step<StepInput = Shape1<I>, StepOutput = Shape1<H>> + Copy,
{
    let cell = if GH == 4 * H { recurrent::CellKind::Lstm } else { recurrent::CellKind::Gru };
    let params = step_params(layer);
    let x = step_input::<I>();
    let xs: [f32; I] = x.as_slice().try_into().unwrap();
    let mut hand = hand(cell, &params);
    let mut fresh = Stream::new(layer, &params, &[]);
    for _ in 0..5 {
        let ours = fresh.step(&x);
        if let Some(theirs) = hand.step(&xs) {
            let max_diff = ours.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
            assert!(max_diff < 1e-5, "{name} and its hand-written loops disagree by {max_diff}");
        }
    }
    let mut stream = Stream::new(layer, &params, &[]);
    bench.case(name, 1, || {
        black_box(stream.step(black_box(&x)));
    });
    if hand.step(&xs).is_some() {
        let hand_name: &'static str = format!("hand_{name}").leak();
        bench.case(hand_name, 1, || {
            black_box(hand.step(black_box(&xs)));
        });
    }
    params
}

fn run(bench: &mut Bench) {
    // Batch-1 inference of the digits MLP, and the same MLP as hand-written loops.
    let mlp = Model::<DigitMlp>::new(1);
    let hand = HandMlp::from_model(&mlp);
    let x: [f32; 64] = uniform(64, 4).try_into().unwrap();
    let ours = mlp.predict_one(&x.into());
    let reference = hand.forward(&x);
    let max_diff = ours.iter().zip(&reference).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    assert!(max_diff < 1e-4, "the MLP and its hand-written loops disagree by {max_diff}");
    bench.case("mlp_infer_b1", 1, || {
        black_box(mlp.predict_one(black_box(&x.into())));
    });
    bench.case("hand_loop_scalar_b1", 1, || {
        black_box(hand.forward(black_box(&x)));
    });
    let columns = hand.columns();
    if let Some(by_columns) = hand.forward_columns(&columns, &x) {
        let max_diff = by_columns.iter().zip(&reference).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(max_diff < 1e-4, "the two hand-written MLPs disagree by {max_diff}");
        bench.case("hand_loop_b1", 1, || {
            black_box(hand.forward_columns(&columns, black_box(&x)));
        });
    }

    train_case::<DigitMlp>(bench, "mlp_train_b32", 32, 10);
    train_case::<BigMlp>(bench, "mlp_big_train_b128", 128, 10);

    // The digits CNN.
    let cnn = Model::<DigitCnn>::new(1);
    let image = Tensor::<Shape3<1, 8, 8>>::from_slice(&uniform(64, 5)).unwrap();
    bench.case("cnn_infer_b1", 1, || {
        black_box(cnn.predict_one(black_box(&image)));
    });
    train_case::<DigitCnn>(bench, "cnn_train_b32", 32, 10);
    let small = Model::<SmallCnn>::new(1);
    bench.case("cnn_small_infer_b1", 1, || {
        black_box(small.predict_one(black_box(&image)));
    });
    train_case::<SmallCnn>(bench, "cnn_small_train_b32", 32, 10);

    // One convolution layer's training forward and backward, input gradient included
    // (as for a layer inside a network); the output gradient is fixed. It is written
    // into the workspace once: the convolution's backward reads it without changing
    // it (checked below), and PyTorch's step (`conv(x).backward(dy)`) reads its `dy`
    // without a copy too.
    if bench.wanted("conv_fwd_bwd_b32") {
        let batch = 32;
        let mut model = Model::<ConvLayer>::new(1);
        let mut ws = Workspace::<ConvLayer>::new();
        let mut rng = Rng::new(2);
        let x = uniform(batch * <ConvLayer as Layer>::Input::LEN, 11);
        let dy = uniform(batch * <ConvLayer as Layer>::Output::LEN, 12);
        let mut dx = vec![0.0; x.len()];
        model.forward_train(&mut ws, &x, &mut rng);
        ws.output_grad_mut().copy_from_slice(&dy);
        model.backward(&mut ws, &x, Some(&mut dx));
        assert!(ws.output_grad_mut() == &dy[..], "the convolution's backward changed its output gradient");
        let mut step = || {
            ws.zero_grads();
            model.forward_train(&mut ws, &x, &mut rng);
            model.backward(&mut ws, &x, Some(&mut dx));
            black_box((ws.grads()[0], dx[0]));
        };
        step();
        let allocations = counting::per_call(10, &mut step);
        bench.allocations("conv_fwd_bwd_b32", allocations);
        bench.case("conv_fwd_bwd_b32", batch, step);
    }

    // The small real-time steps of RTNeural's benchmarks, each beside its hand-written
    // fixed-size stand-in: Dense 8->8, GRU 8->8, LSTM 16->16, GRU 8->64, LSTM 8->64.
    dense8_cases(bench);
    step_cases(bench, "gru8_8_step_b1", StreamGru8::new(GruCell), HandGru::<8, 8, 24>::from_params);
    step_cases(bench, "lstm16_16_step_b1", StreamLstm16::new(LstmCell), HandLstm::<16, 16, 64>::from_params);
    let params = step_cases(bench, "gru_step_b1", StreamGru::new(GruCell), HandGru::<8, 64, 192>::from_params);
    step_cases(bench, "lstm8_64_step_b1", StreamLstm64::new(LstmCell), HandLstm::<8, 64, 256>::from_params);
    gru_parts(bench, &params);

    train_case::<LstmNet>(bench, "lstm_train_b32", 32, 10);

    // An encoder layer's training forward and backward (no loss, no optimizer): the
    // output gradient is fixed.
    if bench.wanted("encoder_fwd_bwd_b32") {
        let batch = 32;
        let mut model = Model::<EncoderNet>::new(1);
        let mut ws = Workspace::<EncoderNet>::new();
        let mut rng = Rng::new(2);
        let x = uniform(batch * models::ENCODER_STEPS * models::ENCODER_WIDTH, 7);
        let dy = uniform(x.len(), 8);
        let mut step = || {
            ws.zero_grads();
            model.forward_train(&mut ws, &x, &mut rng);
            ws.output_grad_mut().copy_from_slice(&dy);
            model.backward(&mut ws, &x, None);
            black_box(ws.grads()[0]);
        };
        step();
        let allocations = counting::per_call(10, &mut step);
        bench.allocations("encoder_fwd_bwd_b32", allocations);
        bench.case("encoder_fwd_bwd_b32", batch, step);
    }

    // Square single-precision GEMM through the library's kernel entry point.
    for (name, n) in [("gemm_64", 64), ("gemm_256", 256), ("gemm_1024", 1024)] {
        if !bench.wanted(name) {
            continue;
        }
        let a = uniform(n * n, 9);
        let b = uniform(n * n, 10);
        let mut c = vec![0.0f32; n * n];
        bench.case(name, 1, || {
            gemm(1.0, MatRef::new(black_box(&a), n, n), MatRef::new(&b, n, n), 0.0, &mut c, n);
            black_box(c[0]);
        });
    }
}

/// A number for JSON: finite, in scientific notation.
fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{v:e}")
    } else {
        "null".into()
    }
}

fn json(options: &Options, report: &Report) -> String {
    let cases: Vec<String> = report
        .cases
        .iter()
        .map(|c| {
            format!(
                "\"{}\":{{\"best\":{},\"median\":{},\"batch\":{},\"samples\":{}}}",
                c.name,
                num(c.timing.best),
                num(c.timing.median),
                c.batch,
                c.timing.samples
            )
        })
        .collect();
    let allocations: Vec<String> = report.allocations.iter().map(|(n, a)| format!("\"{n}\":{}", num(*a))).collect();
    let isa = nn_core::kernels::isa::isa();
    let kernels: Vec<String> =
        nn_core::kernels::isa::kernels(isa).iter().map(|(k, i)| format!("\"{k}\":\"{i}\"")).collect();
    format!(
        "{{\"implementation\":\"nn\",\"threads\":{},\"isa\":\"{}\",\"kernels\":{{{}}},\"seconds\":{{{}}},\
         \"allocations_per_step\":{{{}}}}}",
        options.threads,
        isa.name(),
        kernels.join(","),
        cases.join(","),
        allocations.join(",")
    )
}

/// The digits MLP trained as `examples/02_mlp_digits.rs` does (bundled data, 80/20
/// split, Adam, batches of 32): the run whose peak resident memory the script compares.
fn train_digits(epochs: usize) -> Result<(), Box<dyn std::error::Error>> {
    let path =
        [env!("CARGO_MANIFEST_DIR"), "..", "examples", "data", "digits.csv.gz"].iter().collect::<std::path::PathBuf>();
    let start = Instant::now();
    let mut digits = nn_core::data::digits(path)?;
    digits.scale_inputs(1.0 / 16.0);
    let (train, test) = digits.split(0.2, 1);
    let mut model = Model::<DigitMlp>::new(1);
    let loss = SparseCategoricalCrossEntropy::from_logits();
    let mut fit = Fit::new(Adam::new(2e-3), loss).epochs(epochs).batch_size(32).seed(1);
    fit.run(&mut model, &train, None)?;
    let accuracy = model.evaluate(&test, &loss, &[Metric::Accuracy])?.metric("accuracy").unwrap_or(0.0);
    println!(
        "{{\"implementation\":\"nn\",\"epochs\":{epochs},\"test_accuracy\":{accuracy},\"seconds\":{}}}",
        num(start.elapsed().as_secs_f64())
    );
    Ok(())
}

/// The library's `gemm` (on one thread: the register-blocked kernels) against
/// `matrixmultiply::sgemm` (packed), alternating the two, over the products of the
/// benchmarked networks and square sizes: where packing starts to pay.
fn gemm_sweep(options: &Options) {
    std::env::set_var("MATMUL_NUM_THREADS", "1");
    // (m, k, n, B transposed): square products, then the large MLP's forward
    // (x W^T), its weight gradient (dz^T x) and its input gradient (dz W).
    let shapes: &[(usize, usize, usize, bool)] = &[
        (32, 32, 32, false),
        (64, 64, 64, false),
        (96, 96, 96, false),
        (128, 128, 128, false),
        (192, 192, 192, false),
        (256, 256, 256, false),
        (512, 512, 512, false),
        (1024, 1024, 1024, false),
        (128, 784, 512, true),
        (128, 512, 512, true),
        (512, 128, 784, false),
        (128, 512, 784, false),
        (32, 64, 128, true),
        (32, 64, 256, true),
    ];
    let rounds = 5;
    let budget = options.budget / (2 * rounds);
    println!(
        "{:>5} {:>5} {:>5} {:>4} {:>12} {:>12} {:>9} {:>9} {:>7} {:>12} {:>9}",
        "m", "k", "n", "B^T", "gemm", "packed", "GFLOP/s", "GFLOP/s", "ratio", "gemv_batch", "GFLOP/s"
    );
    for &(m, k, n, bt) in shapes {
        let a = uniform(m * k, 1);
        let b = uniform(k * n, 2);
        let mut c = vec![0.0f32; m * n];
        let bv = if bt { MatRef::new(&b, n, k).t() } else { MatRef::new(&b, k, n) };
        let (mut ours, mut packed) = (f64::INFINITY, f64::INFINITY);
        for _ in 0..rounds {
            let t = measure(options.clock, budget, || {
                gemm(1.0, MatRef::new(black_box(&a), m, k), bv, 0.0, &mut c, n);
            });
            ours = ours.min(t.best);
            let t = measure(options.clock, budget, || {
                // SAFETY: the views are `m x k`, `k x n` and `m x n` within their vectors.
                unsafe {
                    matrixmultiply::sgemm(
                        m,
                        k,
                        n,
                        1.0,
                        black_box(&a).as_ptr(),
                        k as isize,
                        1,
                        bv.data.as_ptr(),
                        bv.rs as isize,
                        bv.cs as isize,
                        0.0,
                        c.as_mut_ptr(),
                        n as isize,
                        1,
                    )
                }
            });
            packed = packed.min(t.best);
        }
        // A dense layer's forward (`x W^T`) goes through `gemv_batch`, batch-invariant.
        let mut rows = f64::NAN;
        if bt {
            rows = f64::INFINITY;
            for _ in 0..rounds {
                let t = measure(options.clock, budget, || {
                    gemv_batch(1.0, MatRef::new(black_box(&b), n, k), &a, 0.0, &mut c, m);
                });
                rows = rows.min(t.best);
            }
        }
        let flops = 2.0 * (m * k * n) as f64;
        println!(
            "{m:>5} {k:>5} {n:>5} {:>4} {:>12} {:>12} {:>9.1} {:>9.1} {:>7.2} {:>12} {:>9}",
            if bt { "yes" } else { "no" },
            seconds(ours),
            seconds(packed),
            flops / ours * 1e-9,
            flops / packed * 1e-9,
            packed / ours,
            if bt { seconds(rows) } else { "-".into() },
            if bt { format!("{:.1}", flops / rows * 1e-9) } else { "-".into() },
        );
    }
}

/// The instruction set in use (`NN_ISA` may lower it) and each kernel family's.
fn kernels_line() -> String {
    use nn_core::kernels::isa::{detected, isa, kernels};
    let each: Vec<String> = kernels(isa()).iter().map(|(k, i)| format!("{k} {i}")).collect();
    format!("instruction set: {} (CPU: {}); kernels: {}", isa(), detected(), each.join(", "))
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("nn-bench: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    if options.gemm_sweep {
        println!("{}", kernels_line());
        gemm_sweep(&options);
        return ExitCode::SUCCESS;
    }
    if let Some(dir) = &options.export_steps {
        return match export::export_steps(dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("nn-bench: --export-steps {}: {e}", dir.display());
                ExitCode::FAILURE
            }
        };
    }
    if options.train_digits {
        return match train_digits(options.epochs) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("nn-bench: {e}");
                ExitCode::FAILURE
            }
        };
    }
    // matrixmultiply reads its thread count once, at its first product.
    // No other thread exists yet.
    std::env::set_var("MATMUL_NUM_THREADS", options.threads.to_string());
    if !cfg!(feature = "threading") && options.threads > 1 {
        eprintln!("nn-bench: built without the `threading` feature, products run on one thread");
    }
    let mut bench = Bench { options, report: Report::default() };
    if !bench.options.json {
        eprintln!(
            "nn-bench, {} thread(s), {:?} clock, best and median of samples over {:?} per case",
            bench.options.threads, bench.options.clock, bench.options.budget
        );
        eprintln!("{}", kernels_line());
    }
    run(&mut bench);
    if bench.options.json {
        println!("{}", json(&bench.options, &bench.report));
    } else {
        for (name, a) in &bench.report.allocations {
            eprintln!("{name:<22} {a} allocations per step after warm-up");
        }
    }
    ExitCode::SUCCESS
}
