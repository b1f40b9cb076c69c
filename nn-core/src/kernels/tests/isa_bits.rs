//! Every instruction set gives the same bits: products (GEMM on odd shapes and every
//! layout, the matrix-vector forms), dense layers (batch 1 and batches, backward),
//! convolutions (the padded-input form, the column form, backward), a small CNN's
//! inference and training steps, a small MLP's batch-1 inference, the recurrent layers' training forward and backward
//! over a batch, and streamed GRU and LSTM steps (over weights in step
//! order on x86-64, `nn_core::stream`) are computed in child processes of this test binary,
//! one per instruction set this CPU has, chosen by `NN_ISA` (`kernels::isa`), and their
//! outputs compared bit for bit.
//!
//! Products of at least `gemm::PACKED_MIN_FLOPS` multiply-adds go to `matrixmultiply`
//! where there is no register tile (neither AVX2 nor NEON: the documented exception,
//! `kernels::isa`, whose bits are not guaranteed): they are compared between the
//! tiled instruction sets only, and the network is small enough to stay below that
//! size. On AArch64 the sets are NEON and the portable kernels; the comparison with
//! x86-64 is `tests/firmware_digest.rs` and this file's outputs, run under
//! `qemu-aarch64` (`.ci/run`).
//!
//! The network uses ReLU and no other activation, and the mean squared error: it is
//! about the kernels the instruction set picks (products, convolutions, pooling, the
//! optimiser). The elementary functions (`exp`, `sigmoid`, `tanh` of `kernels::maths`,
//! vectorised under AVX2 and NEON) have their own lines, with the softmaxes and the
//! losses on logits built on them.
use std::process::Command;

use crate::activation::Activation;
use crate::kernels::conv::{self, ConvGeometry};
use crate::kernels::dense;
use crate::kernels::gemm::{gemm, gemv, gemv_batch, MatRef};
use crate::kernels::isa::{self, Isa};
use crate::layers::{Gru, GruCell, Lstm, LstmCell};
use crate::prelude::*;
use crate::stream::{Step, Stream};

network! {
    /// A small CNN of odd sizes: convolutions in both forms, pooling, dense layers.
    pub struct OddCnn: [3, 9, 16] -> [7] {
        conv1: Conv2d { filters: 5, kernel: 3, padding: Same } => [5, 9, 16],
        relu1: Relu,
        conv2: Conv2d { filters: 13, kernel: 3, stride: 2 } => [13, 4, 7],
        relu2: Relu,
        flat: Flatten => [364],
        fc1: Dense { units: 37, activation: Relu },
        out: Dense { units: 7 },
    }
}

network! {
    /// A small MLP whose batch-1 values stay on the stack: dense layers of 8, 24 and
    /// 40 inputs (the row kernels, Dense 8 -> 8), dropout, an activation layer.
    pub struct SmallMlp: [24] -> [5] {
        fc1: Dense { units: 40, activation: Relu },
        drop: Dropout { rate: 0.3 },
        fc2: Dense { units: 8 },
        relu: Relu,
        fc3: Dense { units: 8, activation: Relu },
        fc4: Dense { units: 5 },
    }
}

/// The child's marker: set, the ignored test prints its outputs.
const CHILD: &str = "NN_ISA_BITS_CHILD";

/// The child test's name in `nn-core`'s unit-test binary (as `.ci/run` passes it too).
const CHILD_TEST: &str = "kernels::tests::isa_bits::outputs_under_nn_isa";

/// Floats in `[-1, 1)` from a seed.
fn values(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..len).map(|_| rng.uniform_in(-1.0, 1.0)).collect()
}

/// Every output this test compares, by name.
fn outputs() -> Vec<(String, Vec<f32>)> {
    let mut out = Vec::new();
    // GEMM: row- and column-major operands, beta 0, 1 and another, depths across a
    // slice of 256, more rows than a packed block (192).
    let shapes = [(1, 1, 1), (7, 13, 29), (13, 300, 37), (25, 257, 70), (200, 33, 45), (3, 600, 100), (14, 9, 31)];
    for (s, &(m, k, n)) in shapes.iter().enumerate() {
        let (a, b) = (values(m * k, 10 + s as u64), values(k * n, 20 + s as u64));
        for (a_t, b_t) in [(false, false), (true, false), (false, true), (true, true)] {
            let av = if a_t { MatRef::new(&a, k, m).t() } else { MatRef::new(&a, m, k) };
            let bv = if b_t { MatRef::new(&b, n, k).t() } else { MatRef::new(&b, k, n) };
            for (alpha, beta) in [(1.0, 0.0), (1.0, 1.0), (0.5, -2.0)] {
                let mut c = values(m * n, 30 + s as u64);
                gemm(alpha, av, bv, beta, &mut c, n);
                out.push((format!("gemm {m}x{k}x{n} {a_t} {b_t} {alpha} {beta}"), c));
            }
        }
        // Matrix-vector products over both layouts, and a batch of them.
        let x = values(k * 3, 40 + s as u64);
        for transposed in [false, true] {
            let av = if transposed { MatRef::new(&a, k, m).t() } else { MatRef::new(&a, m, k) };
            let mut y = values(m, 50 + s as u64);
            gemv(0.5, av, &x, 1.0, &mut y);
            out.push((format!("gemv {m}x{k} {transposed}"), y));
        }
        let mut y = values(3 * m, 60 + s as u64);
        gemv_batch(1.0, MatRef::new(&a, m, k), &x, 1.0, &mut y, 3);
        out.push((format!("gemv_batch {m}x{k}"), y));
    }
    // Dense layers: a batch with its pre-activations, batch 1 at a compile-time width,
    // and the backward.
    let (inputs, outputs, batch) = (45, 19, 5);
    let (x, w, b) = (values(batch * inputs, 70), values(outputs * inputs, 71), values(outputs, 72));
    let (mut y, mut pre) = (vec![0.0; batch * outputs], vec![0.0; batch * outputs]);
    dense::forward(&x, &w, Some(&b), Activation::Relu, inputs, outputs, &mut y, Some(&mut pre));
    let (w16, x16) = (values(outputs * 16, 73), values(16, 74));
    let mut one = vec![0.0; outputs];
    dense::forward_one::<16>(&x16, &w16, Some(&b), Activation::Relu, outputs, &mut one);
    let (mut dy, mut dw, mut db, mut dx) =
        (values(batch * outputs, 75), vec![0.0; outputs * inputs], vec![0.0; outputs], vec![0.0; batch * inputs]);
    dense::backward(
        &x,
        &w,
        &pre,
        &y,
        Activation::Relu,
        inputs,
        outputs,
        &mut dy,
        &mut dw,
        Some(&mut db),
        Some(&mut dx),
    );
    out.extend([("dense forward".into(), y), ("dense forward_one".into(), one)]);
    // Dense 8 -> 8 at batch 1 (its fixed-size kernels), with and without bias and ReLU.
    let (w8, x8, b8) = (values(64, 76), values(8, 77), values(8, 78));
    for (bias, activation) in [(Some(&b8[..]), Activation::Relu), (None, Activation::Identity)] {
        let mut y8 = vec![0.0; 8];
        dense::forward_one::<8>(&x8, &w8, bias, activation, 8, &mut y8);
        out.push((format!("dense 8->8 {activation:?}"), y8));
        let value = dense::forward_one_value::<8, 8>(&x8, &w8, bias, activation);
        out.push((format!("dense 8->8 by value {activation:?}"), value.to_vec()));
        // Rows of 8 in blocks of 8 and a shorter tail (`avx512::gemv8` with AVX-512).
        let (w24, b24) = (values(8 * 29, 79), values(29, 80));
        let mut y29 = vec![0.0; 29];
        dense::forward_one::<8>(&x8, &w24, bias.map(|_| &b24[..]), activation, 29, &mut y29);
        out.push((format!("dense 8->29 {activation:?}"), y29));
    }
    out.extend([("dense dW".into(), dw), ("dense db".into(), db), ("dense dx".into(), dx)]);
    // Layer norm (sums in 16 lanes under AVX-512, AVX2 and the portable loops): rows of
    // 8, 37 and 64, forward with its cache, and the backward.
    for (width, rows) in [(8, 5), (37, 6), (64, 3)] {
        let x = values(rows * width, 80 + width as u64);
        let mut params = values(2 * width, 81);
        params[..width].iter_mut().for_each(|w| *w += 1.5);
        let (mut y, mut cache) = (vec![0.0; rows * width], vec![0.0; rows * width + rows]);
        crate::layers::layer_norm::forward(&params, 1e-5, width, &x, &mut y, Some(&mut cache));
        let (mut d, mut grads) = (values(rows * width, 82), values(2 * width, 83));
        // The input gradient alone (the encoder layer's form; intrinsics under AVX2 for
        // rows of a multiple of 16).
        let mut d_alone = d.clone();
        let (normed, rstd) = cache.split_at(rows * width);
        crate::layers::layer_norm::input_gradient(&params, width, normed, rstd, &mut d_alone);
        out.push((format!("layer norm {width} input gradient"), d_alone));
        crate::layers::layer_norm::backward_in_place(&params, width, &cache, &mut d, &mut grads);
        out.extend([(format!("layer norm {width} y"), y), (format!("layer norm {width} dx"), d)]);
        out.push((format!("layer norm {width} grads"), grads));
    }
    // Convolutions: stride 1 with rows of whole vectors (the padded-input form), stride
    // 2 (the column form), more than 256 column rows; forward and backward.
    let geometries = [
        (
            ConvGeometry {
                channels: 3,
                height: 9,
                width: 16,
                kernel: [3, 3],
                stride: [1, 1],
                padding: [1, 1],
                dilation: [1, 1],
                out_height: 9,
                out_width: 16,
            },
            13,
        ),
        (
            ConvGeometry {
                channels: 5,
                height: 11,
                width: 13,
                kernel: [3, 3],
                stride: [2, 2],
                padding: [1, 1],
                dilation: [1, 1],
                out_height: 6,
                out_width: 7,
            },
            9,
        ),
        (
            ConvGeometry {
                channels: 31,
                height: 8,
                width: 8,
                kernel: [3, 3],
                stride: [1, 1],
                padding: [1, 1],
                dilation: [1, 1],
                out_height: 8,
                out_width: 8,
            },
            17,
        ),
    ];
    for (s, (g, filters)) in geometries.into_iter().enumerate() {
        let (patch, n, batch) = (g.patch_len(), g.positions(), 3);
        let seed = 80 + 10 * s as u64;
        let (x, w, b) =
            (values(batch * g.input_len(), seed), values(filters * patch, seed + 1), values(filters, seed + 2));
        let mut scratch = vec![0.0; conv::scratch_len(patch, n).max(g.channels * 40 * 40)];
        let mut y = vec![0.0; batch * filters * n];
        conv::forward(&g, filters, &x, &w, Some(&b), &mut y, &mut scratch);
        let dy = values(y.len(), seed + 3);
        let (mut dw, mut db, mut dx) = (vec![0.0; w.len()], vec![0.0; filters], vec![0.0; x.len()]);
        conv::backward(&g, filters, &x, &w, &dy, Some(&mut dw), Some(&mut db), Some(&mut dx), &mut scratch);
        out.extend([(format!("conv {s} forward"), y), (format!("conv {s} dW"), dw)]);
        out.extend([(format!("conv {s} db"), db), (format!("conv {s} dx"), dx)]);
    }
    // A network: batch-1 inference, then three training steps with Adam.
    let mut model = Model::<OddCnn>::new(5);
    let mut ws = Workspace::<OddCnn>::new();
    let mut opt = OptimizerState::new(Adam::new(1e-2));
    let mut rng = Rng::new(6);
    let batch = 4;
    let (x, t) = (values(batch * 3 * 9 * 16, 90), values(batch * 7, 91));
    let sample = Tensor::<Shape3<3, 9, 16>>::from_slice(&x[..3 * 9 * 16]).expect("one sample");
    out.push(("cnn predict_one".into(), model.predict_one(&sample).iter().copied().collect()));
    // Batch-1 inference of small values, each in a tensor of its own on x86-64.
    let mlp = Model::<SmallMlp>::new(7);
    let sample = Tensor::<Shape1<24>>::from_slice(&values(24, 92)).expect("one sample");
    out.push(("mlp predict_one".into(), mlp.predict_one(&sample).iter().copied().collect()));
    for step in 0..3 {
        ws.zero_grads();
        model.forward_train(&mut ws, &x, &mut rng);
        let loss = ws.loss(&MeanSquaredError, &t);
        model.backward(&mut ws, &x, None);
        opt.step(model.params_mut(), ws.grads());
        out.push((format!("cnn step {step} loss"), vec![loss]));
    }
    out.push(("cnn parameters after training".into(), model.params().to_vec()));
    // Streamed recurrent steps, the widths of the benchmark's small steps.
    out.push(streamed("gru 8 -> 8", Gru::<1, 8, 8>::new(GruCell), 110));
    out.push(streamed("gru 8 -> 64", Gru::<1, 8, 64>::new(GruCell), 111));
    out.push(streamed("gru 16 -> 32", Gru::<1, 16, 32>::new(GruCell), 114));
    // The GRU steps with their gates beside the recurrent rows (AVX2 and AVX-512): 64
    // and 32 units, more than 16 inputs (the AVX2 form's input rows held in
    // registers), both orders of the rows; 96 units (AVX-512 only: a multiple of 32
    // that is not one of 64).
    out.push(streamed("gru 32 -> 64", Gru::<1, 32, 64>::new(GruCell), 115));
    out.push(streamed("gru 40 -> 32", Gru::<1, 40, 32>::new(GruCell), 116));
    out.push(streamed("gru 8 -> 96", Gru::<1, 8, 96>::new(GruCell), 117));
    out.push(streamed("lstm 16 -> 16", Lstm::<1, 16, 16>::new(LstmCell), 112));
    out.push(streamed("lstm 8 -> 16", Lstm::<1, 8, 16>::new(LstmCell), 114));
    out.push(streamed("lstm 8 -> 64, 2 layers", Lstm::<1, 8, 64, 2>::new(LstmCell), 113));
    // The LSTM steps with their gates beside the recurrent rows (AVX2 and AVX-512): 64,
    // 48 and 32 units, up to 16 inputs (the AVX2 form's input over panels) and more
    // (held in registers), both orders of the rows.
    out.push(streamed("lstm 8 -> 64", Lstm::<1, 8, 64>::new(LstmCell), 118));
    out.push(streamed("lstm 32 -> 64", Lstm::<1, 32, 64>::new(LstmCell), 119));
    out.push(streamed("lstm 40 -> 32", Lstm::<1, 40, 32>::new(LstmCell), 120));
    out.push(streamed("lstm 8 -> 48", Lstm::<1, 8, 48>::new(LstmCell), 121));
    out.extend(recurrent_training_outputs());
    out.extend(maths_outputs());
    out
}

/// The recurrent layers' training forward and backward over a batch (`kernels::recurrent`):
/// LSTM cells of 64 units (whole 16-lane blocks) and of 37 (blocks and a remainder), two
/// layers in both directions, and the GRU and RNN cells, with initial states and the
/// gradients of the final ones.
fn recurrent_training_outputs() -> Vec<(String, Vec<f32>)> {
    use nn_core::kernels::recurrent::{backward, forward_train, CellKind, Config, Merge, States, StatesMut};
    let configs = [
        (CellKind::Lstm, 64, 1, 1),
        (CellKind::Lstm, 37, 2, 2),
        (CellKind::Lstm, 9, 1, 1),
        (CellKind::Gru, 21, 1, 2),
        (CellKind::RnnTanh, 19, 2, 1),
    ];
    let mut out = Vec::new();
    for (s, (cell, hidden, layers, directions)) in configs.into_iter().enumerate() {
        let cfg = Config {
            cell,
            steps: 12,
            features: 5,
            hidden,
            layers,
            directions,
            merge: Merge::Concat,
            return_sequences: true,
            truncate: 0,
        };
        // Enough samples for the packed recurrent weights to fit the scratch space.
        let (batch, seed) = (6, 130 + 10 * s as u64);
        let name = format!("recurrent training {cell:?} {hidden} units, {layers} layers, {directions} directions");
        let params: Vec<f32> = values(cfg.params(), seed).iter().map(|v| v * 0.4).collect();
        let x = values(batch * cfg.steps * cfg.features, seed + 1);
        let states = batch * layers * directions * hidden;
        let (h0, c0) = (values(states, seed + 2), values(states, seed + 3));
        let (mut y, mut cache) = (vec![0.0; batch * cfg.output_len()], vec![0.0; batch * cfg.cache_len()]);
        let mut scratch = vec![0.0; batch * cfg.scratch_len()];
        let (mut hn, mut cn) = (vec![0.0; states], vec![0.0; states]);
        let initial = Some(States { h: &h0, c: &c0 });
        let final_state = Some(StatesMut { h: &mut hn, c: &mut cn });
        forward_train(&cfg, &params, &x, initial, &mut y, &mut cache, &mut scratch, final_state);
        let dy = values(y.len(), seed + 4);
        let (dhn, dcn) = (values(states, seed + 5), values(states, seed + 6));
        let (mut dx, mut grads) = (vec![0.0; x.len()], vec![0.0; params.len()]);
        let (mut dh0, mut dc0) = (vec![0.0; states], vec![0.0; states]);
        let d_initial = Some(StatesMut { h: &mut dh0, c: &mut dc0 });
        let d_final = Some(States { h: &dhn, c: &dcn });
        backward(&cfg, &params, &x, &cache, &dy, Some(&mut dx), &mut grads, &mut scratch, d_initial, d_final);
        out.extend([(format!("{name}, output"), y), (format!("{name}, final states"), [hn, cn].concat())]);
        out.extend([(format!("{name}, input gradient"), dx), (format!("{name}, parameter gradients"), grads)]);
        out.push((format!("{name}, initial state gradients"), [dh0, dc0].concat()));
    }
    out
}

/// The elementary functions (`kernels::maths`): their slice forms (64 lanes, then 8,
/// then one) over values across `exp`'s whole range (its subnormal results and both
/// ends included), and the activations, softmaxes and losses built on them.
fn maths_outputs() -> Vec<(String, Vec<f32>)> {
    use nn_core::kernels::maths;
    use nn_core::loss::{BinaryCrossEntropy, CategoricalCrossEntropy, Loss, SparseCategoricalCrossEntropy};
    let mut wide: Vec<f32> = values(203, 120).iter().map(|v| v * 110.0).collect();
    wide.extend([-103.96, -103.98, -87.5, 88.722_83, 88.722_84, 0.0, 1e-30, -0.625, 0.625, 200.0, -200.0]);
    let mut out = Vec::new();
    for (name, f) in [
        ("exp", (|v: &mut [f32]| maths::exp_shifted_in_place(v, 0.0)) as fn(&mut [f32])),
        ("sigmoid", maths::sigmoid_in_place),
        ("tanh", maths::tanh_in_place),
    ] {
        let mut v = wide.clone();
        f(&mut v);
        out.push((format!("maths {name}"), v));
        let one_at_a_time = wide.iter().map(|&x| {
            let mut one = [x];
            f(&mut one);
            one[0]
        });
        out.push((format!("maths {name}, one at a time"), one_at_a_time.collect()));
    }
    out.push(("maths exp, scalar".into(), wide.iter().map(|&x| maths::exp(x)).collect()));
    // Softmax rows of 10 and 77 values, attention's masked softmax, GELU's derivative.
    let logits: Vec<f32> = values(3 * 77, 121).iter().map(|v| v * 30.0).collect();
    for width in [10, 77] {
        let mut y = logits.clone();
        Activation::Softmax.apply(&mut y, width);
        out.push((format!("softmax rows of {width}"), y));
    }
    // Two causal rows of 77 keys of which 70 are valid (the second sees two keys), and
    // one row that sees all 70.
    let mut rows = logits[..2 * 77].to_vec();
    let heads = |causal| nn_core::kernels::attention::Attention {
        queries: 2,
        keys: 77,
        width: 8,
        heads: 1,
        causal,
        dropout: 0.0,
    };
    heads(true).softmax_rows(&mut rows, 70);
    let mut row = logits[..77].to_vec();
    heads(false).softmax_rows(&mut row, 70);
    out.push(("attention softmax".into(), [rows, row].concat()));
    out.push(("gelu derivative".into(), wide.iter().map(|&z| Activation::Gelu.derivative(z * 0.1, 0.0)).collect()));
    // Losses on logits, with their gradients.
    let (labels, targets) = (vec![3.0, 76.0, 0.0], values(3 * 77, 122).iter().map(|v| v.abs()).collect::<Vec<_>>());
    let mut grad = vec![0.0; logits.len()];
    let sparse = SparseCategoricalCrossEntropy::from_logits().compute(&logits, &labels, 77, Some(&mut grad));
    out.push(("sparse cross-entropy on logits".into(), [vec![sparse], grad.clone()].concat()));
    let dense = CategoricalCrossEntropy::from_logits().compute(&logits, &targets, 77, Some(&mut grad));
    out.push(("cross-entropy on logits".into(), [vec![dense], grad.clone()].concat()));
    let binary = BinaryCrossEntropy { from_logits: true }.compute(&logits, &targets, 1, Some(&mut grad));
    out.push(("binary cross-entropy on logits".into(), [vec![binary], grad].concat()));
    out
}

/// The outputs of five steps of `layer` streamed from zero state, its parameters and
/// inputs from `seed`.
fn streamed<L: Step + Copy>(name: &str, layer: L, seed: u64) -> (String, Vec<f32>) {
    let mut params = vec![0.0; L::PARAMS];
    layer.init(&mut params, &mut [], &mut Rng::new(seed));
    let (f, h) = (<L::StepInput as Shape>::LEN, <L::StepOutput as Shape>::LEN);
    let x = values(5 * f, seed + 1);
    let mut stream = Stream::new(layer, &params, &[]);
    let mut y = vec![0.0; 5 * h];
    for (xt, yt) in x.chunks_exact(f).zip(y.chunks_exact_mut(h)) {
        stream.step_slice(xt, yt);
    }
    (format!("streamed {name}"), y)
}

/// Products large enough for `matrixmultiply` without AVX2, by name.
fn large_outputs() -> Vec<(String, Vec<f32>)> {
    let (m, k, n) = (161, 300, 67);
    assert!(m * k * n >= crate::kernels::gemm::PACKED_MIN_FLOPS);
    let (a, b) = (values(m * k, 100), values(k * n, 101));
    let mut out = Vec::new();
    for (alpha, beta) in [(1.0, 0.0), (0.5, 1.0)] {
        let mut c = values(m * n, 102);
        gemm(alpha, MatRef::new(&a, m, k), MatRef::new(&b, n, k).t(), beta, &mut c, n);
        out.push((format!("large gemm {alpha} {beta}"), c));
    }
    out
}

/// Run by [`every_instruction_set_gives_the_same_bits`] in a child process: prints the
/// instruction set in use and every output's bits.
#[test]
#[ignore = "a child process of every_instruction_set_gives_the_same_bits"]
fn outputs_under_nn_isa() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    println!("isa {}", isa::isa());
    for (name, values) in outputs() {
        let bits: Vec<String> = values.iter().map(|v| format!("{:08x}", v.to_bits())).collect();
        println!("bits {name}: {}", bits.join(" "));
    }
    for (name, values) in large_outputs() {
        let bits: Vec<String> = values.iter().map(|v| format!("{:08x}", v.to_bits())).collect();
        println!("large {name}: {}", bits.join(" "));
    }
}

/// A child's instruction set and its output lines.
type Run = (Isa, Vec<String>);

#[test]
fn every_instruction_set_gives_the_same_bits() {
    let exe = std::env::current_exe().expect("the test binary's path");
    // The first run's outputs, and the first run with a register tile's large products.
    let (mut first, mut first_tiled): (Option<Run>, Option<Run>) = (None, None);
    for wanted in Isa::ALL.into_iter().filter(|i| i.runs_on(isa::detected())) {
        let run = Command::new(&exe)
            .args([CHILD_TEST, "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .env("NN_ISA", wanted.name())
            .env(CHILD, "1")
            .output()
            .expect("the test binary runs");
        assert!(run.status.success(), "{wanted}: {}: {}", run.status, String::from_utf8_lossy(&run.stderr));
        let stdout = String::from_utf8_lossy(&run.stdout);
        // (libtest prints the test's name before it, on the same line.)
        assert!(stdout.lines().any(|l| l.ends_with(&format!(" isa {wanted}"))), "{wanted} not in use:\n{stdout}");
        let lines = |prefix: &str| -> Vec<String> {
            stdout.lines().filter(|l| l.starts_with(prefix)).map(str::to_owned).collect()
        };
        let (small, large) = (lines("bits "), lines("large "));
        assert!(small.len() > 100 && large.len() == 2, "{wanted}: {} and {} outputs", small.len(), large.len());
        for (outputs, reference, every_isa) in [(small, &mut first, true), (large, &mut first_tiled, false)] {
            let tiled = wanted.avx2() || wanted.neon();
            if !every_isa && !tiled {
                continue;
            }
            match reference {
                None => *reference = Some((wanted, outputs)),
                Some((reference, expected)) => {
                    assert_eq!(outputs.len(), expected.len());
                    for (got, want) in outputs.iter().zip(expected.iter()) {
                        let name = want.split(':').next().unwrap_or_default();
                        assert!(got == want, "{name}: {wanted} and {reference} differ");
                    }
                }
            }
        }
    }
}
