//! Golden tests: layers, losses, optimizers and a small network against PyTorch.
//!
//! The references in `tests/fixtures/` are written by `tools/fixtures/generate.py`
//! (see `tests/fixtures/README.md`): PyTorch computes in float64 from float32 inputs
//! and parameters and stores float32 results, so a reference is exact to half an ulp and
//! the tolerance below bounds the library's own f32 rounding.
//!
//! Each group test runs every fixture whose `group` metadata names it and builds the
//! matching nn-core value from the fixture's metadata (`kind`, `option.*`); a fixture
//! it cannot map fails the test, and `every_fixture_is_covered` fails for a fixture of
//! a group no test runs.
use crate::fixtures;
use crate::standalone::Standalone;

use fixtures::{assert_close, Fixture};
use nn_core::__private::{Chain, Named};
use nn_core::layer::Layer;
use nn_core::layers::{Act, Dense};
use nn_core::loss::{
    BinaryCrossEntropy, CategoricalCrossEntropy, Loss, MeanAbsoluteError, MeanSquaredError,
    SparseCategoricalCrossEntropy,
};
use nn_core::optim::{AdaGrad, Adam, AdamW, Optimizer, RmsProp, Sgd};
use nn_core::{network, Activation, Shape, Shape1};

/// Relative tolerance of every comparison: f32 has a 6e-8 unit roundoff, and these
/// computations sum at most a few dozen terms.
const RTOL: f32 = 1e-5;
/// Absolute tolerance, for values that cancel to near zero (a gradient summed over a
/// batch, a softmax gradient row, whose terms sum to 0).
const ATOL: f32 = 1e-6;

/// The groups of `tools/fixtures/generate.py` that a test below runs.
const TESTED_GROUPS: &[&str] = &[
    "dense",
    "activation",
    "loss",
    "optimizer",
    "network",
    // tests/golden/eval_mode.rs
    "eval_mode",
    // tests/golden/fake_quant.rs
    "fake_quant",
    // tests/golden/attention.rs
    "attention",
    "layer_norm",
    "positional",
    "transformer",
    // tests/golden/conv.rs
    "conv",
    "pool",
    "reshape",
    "batch_norm",
    // tests/golden/rnn.rs
    "recurrent",
    // tests/golden/rnn_state.rs
    "recurrent_state",
    // tests/golden/embedding_losses.rs
    "embedding_loss",
    // tests/golden/layers.rs
    "embedding",
    "sequence_dense",
    "dropout",
    // tests/golden/gan.rs
    "gan",
    // tests/golden/graph.rs
    "graph",
];

/// Every fixture of `group`, asserting there is at least one.
fn fixtures_in(group: &str) -> Vec<Fixture> {
    let found: Vec<Fixture> =
        Fixture::all().iter().map(|name| Fixture::load(name)).filter(|f| f.meta("group") == group).collect();
    assert!(!found.is_empty(), "no fixture of group `{group}` in {}", Fixture::dir().display());
    found
}

/// The activation a fixture's options describe.
fn activation_of(f: &Fixture) -> Activation {
    let name = f.option("activation").unwrap_or_else(|| panic!("{}: no activation option", f.name));
    match name {
        "identity" => Activation::Identity,
        "relu" => Activation::Relu,
        "relu6" => Activation::Relu6,
        "leaky_relu" => Activation::LeakyRelu(f.option_f32("alpha")),
        "sigmoid" => Activation::Sigmoid,
        "tanh" => Activation::Tanh,
        "softmax" => {
            assert_eq!(f.option("dim"), Some("-1"), "{}: softmax over the last dimension only", f.name);
            Activation::Softmax
        }
        "gelu" => {
            assert_eq!(f.option("approximate"), Some("none"), "{}: the library's GELU is the erf form", f.name);
            Activation::Gelu
        }
        "elu" => Activation::Elu(f.option_f32("alpha")),
        other => panic!("{}: no library activation for `{other}`", f.name),
    }
}

/// The flat parameter array of `layer` filled from the fixture tensors
/// `<prefix>.<name>`, in the layer's `state_dict` order; each shape must be PyTorch's.
fn flat_params<L: Layer>(layer: &L, f: &Fixture, prefix: &str) -> Vec<f32> {
    let mut params = vec![0.0; L::PARAMS];
    let mut filled = 0;
    let mut names = Vec::new();
    layer.visit_tensors(None, 0, 0, &mut |t| {
        assert!(t.trainable, "{}: buffers are not covered by these fixtures yet", f.name);
        let key = format!("{prefix}.{}", t.path);
        assert_eq!(f.shape(&key), t.shape, "{}: shape of `{key}`", f.name);
        params[t.offset..t.offset + t.len].copy_from_slice(f.values(&key));
        filled += t.len;
        names.push(key);
    });
    assert_eq!(filled, L::PARAMS, "{}: the layer's tensors do not cover its parameters", f.name);
    let dotted = format!("{prefix}.");
    let in_fixture: Vec<&str> = f.tensor_names().filter(|n| n.starts_with(&dotted)).collect();
    assert_eq!(in_fixture.len(), names.len(), "{}: fixture tensors {in_fixture:?}, layer tensors {names:?}", f.name);
    params
}

/// Compares each tensor of `actual` (a flat array in `layer`'s layout) with the fixture
/// tensor `<prefix>.<name>`.
fn assert_params_close<L: Layer>(layer: &L, f: &Fixture, prefix: &str, actual: &[f32]) {
    layer.visit_tensors(None, 0, 0, &mut |t| {
        let key = format!("{prefix}.{}", t.path);
        assert_close(&format!("{}: {key}", f.name), &actual[t.offset..t.offset + t.len], f.values(&key), RTOL, ATOL);
    });
}

/// What one training forward and backward pass of a layer produced.
struct Pass {
    params: Vec<f32>,
    grads: Vec<f32>,
    grad_input: Vec<f32>,
}

/// Loads the fixture's input and parameters into `layer`, checks `forward` and
/// `forward_train` against `output`, then runs `backward` with the upstream gradient
/// `upstream(output)`.
fn run_layer<L: Layer>(layer: &L, f: &Fixture, upstream: impl FnOnce(&[f32]) -> Vec<f32>) -> Pass {
    let x = f.values("input");
    let (n_in, n_out) = (<L::Input as Shape>::LEN, <L::Output as Shape>::LEN);
    let batch = x.len() / n_in;
    assert_eq!(batch, f.batch(), "{}: batch", f.name);
    let input_shape: Vec<usize> = [batch].iter().chain(<L::Input as Shape>::DIMS).copied().collect();
    assert_eq!(f.shape("input"), input_shape, "{}: input shape", f.name);

    let params = flat_params(layer, f, "param");
    let mut s = Standalone::new::<L>(batch, 0);
    let mut output = vec![0.0; batch * n_out];

    layer.forward(nn_core::Weights::new(&params, &s.buffers), x, &mut output, &mut s.scratch);
    assert_close(&format!("{}: forward output", f.name), &output, f.values("output"), RTOL, ATOL);

    output.fill(0.0);
    layer.forward_train(x, &mut output, s.train(&params));
    assert_close(&format!("{}: forward_train output", f.name), &output, f.values("output"), RTOL, ATOL);

    let mut dy = upstream(&output);
    let mut grad_input = vec![0.0; batch * n_in];
    layer.backward(x, &output, &mut dy, Some(&mut grad_input), s.backward(&params));
    Pass { params, grads: s.grads, grad_input }
}

/// The whole layer check: outputs, input gradient and parameter gradients for the
/// fixture's random upstream gradient.
fn check_layer<L: Layer>(layer: &L, f: &Fixture) {
    let pass = run_layer(layer, f, |_| f.values("grad_output").to_vec());
    assert_close(&format!("{}: grad_input", f.name), &pass.grad_input, f.values("grad_input"), RTOL, ATOL);
    assert_params_close(layer, f, "grad", &pass.grads);
}

fn check_dense<const I: usize, const O: usize, const BIAS: bool>(f: &Fixture) {
    assert_eq!(f.option("bias"), Some(if BIAS { "true" } else { "false" }), "{}: bias", f.name);
    check_layer(&Dense::<I, O, BIAS>::new(activation_of(f)), f);
}

#[test]
fn dense_matches_torch_linear() {
    for f in fixtures_in("dense") {
        assert_eq!(f.meta("kind"), "Linear", "{}", f.name);
        let sizes = (f.option_f32("in_features") as usize, f.option_f32("out_features") as usize, f.option("bias"));
        match sizes {
            (7, 5, Some("true")) => check_dense::<7, 5, true>(&f),
            (7, 5, Some("false")) => check_dense::<7, 5, false>(&f),
            (17, 13, Some("true")) => check_dense::<17, 13, true>(&f),
            other => panic!("{}: no Dense instantiation for {other:?}; add one here", f.name),
        }
    }
}

#[test]
fn activations_match_torch() {
    for f in fixtures_in("activation") {
        match f.shape("input") {
            [3, 6] => check_layer(&Act::<Shape1<6>>::new(activation_of(&f)), &f),
            other => panic!("{}: no Act instantiation for input {other:?}; add one here", f.name),
        }
    }
}

fn check_loss<L: Loss>(loss: L, f: &Fixture) {
    let pred = f.values("input");
    let width = *f.shape("input").last().expect("predictions have a class dimension");
    let batch = pred.len() / width;
    let target = f.values("target");
    assert_eq!(target.len(), batch * loss.target_len(width), "{}: target length", f.name);
    for sample in target.chunks_exact(loss.target_len(width)) {
        assert_eq!(loss.check_target(sample, width), Ok(()), "{}: target {sample:?}", f.name);
    }
    let mut grad = vec![f32::NAN; pred.len()];
    let value = loss.compute(pred, target, width, Some(&mut grad));
    assert_close(&format!("{}: loss", f.name), &[value], f.values("output"), RTOL, ATOL);
    assert_close(&format!("{}: grad_input", f.name), &grad, f.values("grad_input"), RTOL, ATOL);
    assert_eq!(loss.compute(pred, target, width, None), value, "{}: the loss without gradient differs", f.name);
}

#[test]
fn losses_match_torch() {
    for f in fixtures_in("loss") {
        let from_logits = f.option("from_logits");
        match (f.meta("kind"), from_logits) {
            ("MSELoss", _) => check_loss(MeanSquaredError, &f),
            ("L1Loss", _) => check_loss(MeanAbsoluteError, &f),
            ("BCELoss", Some("false")) => check_loss(BinaryCrossEntropy::new(), &f),
            ("BCEWithLogitsLoss", Some("true")) => check_loss(BinaryCrossEntropy::from_logits(), &f),
            ("CategoricalCrossEntropy", Some("false")) => check_loss(CategoricalCrossEntropy::new(), &f),
            ("CategoricalCrossEntropy", Some("true")) => check_loss(CategoricalCrossEntropy::from_logits(), &f),
            ("SparseCategoricalCrossEntropy", Some("false")) => check_loss(SparseCategoricalCrossEntropy::new(), &f),
            ("CrossEntropyLoss", Some("true")) => check_loss(SparseCategoricalCrossEntropy::from_logits(), &f),
            other => panic!("{}: no library loss for {other:?}", f.name),
        }
    }
}

/// Asserts that the PyTorch options the library does not implement are at their
/// neutral values, so the fixture tests what the library computes.
fn assert_neutral(f: &Fixture, keys: &[(&str, &str)]) {
    for &(key, neutral) in keys {
        if let Some(value) = f.option(key) {
            assert_eq!(value, neutral, "{}: option `{key}`", f.name);
        }
    }
}

/// The pair of numbers in an option such as `betas` = `[0.9, 0.999]`.
fn option_pair(f: &Fixture, key: &str) -> (f32, f32) {
    let text = f.option(key).unwrap_or_else(|| panic!("{}: no option `{key}`", f.name));
    let inner = text.trim_start_matches('[').trim_end_matches(']');
    let mut parts =
        inner.split(',').map(|p| p.trim().parse::<f32>().unwrap_or_else(|e| panic!("{}: {key}: {e}", f.name)));
    match (parts.next(), parts.next(), parts.next()) {
        (Some(a), Some(b), None) => (a, b),
        _ => panic!("{}: option `{key}` = `{text}` is not a pair", f.name),
    }
}

fn check_optimizer<O: Optimizer>(optimizer: O, f: &Fixture) {
    let steps: u64 = f.meta("steps").parse().expect("steps is a number");
    let mut params = f.values("param.initial").to_vec();
    let mut state = vec![0.0; O::STATE_PER_PARAM * params.len()];
    for step in 1..=steps {
        optimizer.update(step, &mut params, f.values(&format!("grad.step{step}")), &mut state);
        let name = format!("{}: parameters after step {step}", f.name);
        assert_close(&name, &params, f.values(&format!("param.step{step}")), RTOL, ATOL);
    }
}

#[test]
fn optimizers_match_torch_optim() {
    const COMMON: &[(&str, &str)] =
        &[("weight_decay", "0"), ("maximize", "false"), ("differentiable", "false"), ("capturable", "false")];
    for f in fixtures_in("optimizer") {
        let lr = f.option_f32("lr");
        match f.meta("kind") {
            "SGD" => {
                assert_neutral(&f, COMMON);
                assert_neutral(&f, &[("dampening", "0")]);
                let momentum = f.option_f32("momentum");
                let sgd = match (momentum, f.option("nesterov")) {
                    (0.0, Some("false")) => Sgd::new(lr),
                    (_, Some("false")) => Sgd::momentum(lr, momentum),
                    (_, Some("true")) => Sgd::nesterov(lr, momentum),
                    other => panic!("{}: SGD options {other:?}", f.name),
                };
                check_optimizer(sgd, &f);
            }
            "Adagrad" => {
                assert_neutral(&f, COMMON);
                assert_neutral(&f, &[("lr_decay", "0"), ("initial_accumulator_value", "0")]);
                let adagrad = AdaGrad::new(lr);
                assert_eq!(adagrad.eps, f.option_f32("eps"), "{}: default eps", f.name);
                check_optimizer(adagrad, &f);
            }
            "RMSprop" => {
                assert_neutral(&f, COMMON);
                assert_neutral(&f, &[("momentum", "0"), ("centered", "false")]);
                let rmsprop = RmsProp::new(lr);
                assert_eq!(rmsprop.alpha, f.option_f32("alpha"), "{}: default alpha", f.name);
                assert_eq!(rmsprop.eps, f.option_f32("eps"), "{}: default eps", f.name);
                check_optimizer(rmsprop, &f);
            }
            "Adam" => {
                assert_neutral(&f, COMMON);
                assert_neutral(&f, &[("amsgrad", "false"), ("decoupled_weight_decay", "false")]);
                let adam = Adam::new(lr);
                assert_eq!((adam.beta1, adam.beta2), option_pair(&f, "betas"), "{}: default betas", f.name);
                assert_eq!(adam.eps, f.option_f32("eps"), "{}: default eps", f.name);
                check_optimizer(adam, &f);
            }
            "AdamW" => {
                assert_neutral(&f, &COMMON[1..]);
                assert_neutral(&f, &[("amsgrad", "false")]);
                let adamw = AdamW::new(lr, f.option_f32("weight_decay"));
                assert_eq!((adamw.adam.beta1, adamw.adam.beta2), option_pair(&f, "betas"), "{}: betas", f.name);
                assert_eq!(adamw.adam.eps, f.option_f32("eps"), "{}: default eps", f.name);
                check_optimizer(adamw, &f);
            }
            other => panic!("{}: no library optimizer for `{other}`", f.name),
        }
    }
}

/// `Linear(6, 5) -> ReLU -> Linear(5, 3)` composed by hand as `network!` composes it
/// (see `tests/layers/handwritten_expansion.rs`), the ReLU fused into `fc1`.
type FusedMlp = Chain<Named<Dense<6, 5>>, Named<Dense<5, 3>>>;

const FUSED_MLP: FusedMlp = Chain {
    first: Named { name: "fc1", layer: Dense::new(Activation::Relu) },
    rest: Named { name: "fc2", layer: Dense::new(Activation::Identity) },
};

network! {
    /// The fixture's `nn.Sequential(fc1=Linear(6, 5), relu=ReLU(), fc2=Linear(5, 3))`,
    /// layer for layer.
    struct TorchMlp: [6] -> [3] {
        fc1: Dense { units: 5 },
        relu: Relu,
        fc2: Dense { units: 3 },
    }
}

/// Forward, cross-entropy loss, backward, then one SGD and one Adam step from the
/// same parameters and the library's own gradients.
fn check_mlp<L: Layer>(mlp: &L, f: &Fixture) {
    assert_eq!(f.option("loss"), Some("CrossEntropyLoss"), "{}", f.name);
    let loss = SparseCategoricalCrossEntropy::from_logits();
    let mut value = f32::NAN;
    let pass = run_layer(mlp, f, |logits| {
        let mut grad = vec![0.0; logits.len()];
        value = loss.compute(logits, f.values("target"), 3, Some(&mut grad));
        grad
    });
    assert_close(&format!("{}: loss", f.name), &[value], f.values("loss"), RTOL, ATOL);
    assert_close(&format!("{}: grad_input", f.name), &pass.grad_input, f.values("grad_input"), RTOL, ATOL);
    assert_params_close(mlp, f, "grad", &pass.grads);

    let mut params = pass.params.clone();
    let mut state = vec![0.0; pass.params.len()];
    Sgd::new(f.option_f32("sgd_lr")).update(1, &mut params, &pass.grads, &mut state);
    assert_params_close(mlp, f, "sgd_step", &params);

    let adam = Adam::new(f.option_f32("adam_lr"));
    let mut params = pass.params.clone();
    let mut state = vec![0.0; 2 * pass.params.len()];
    adam.update(1, &mut params, &pass.grads, &mut state);
    assert_params_close(mlp, f, "adam_step", &params);
}

#[test]
fn mlp_matches_torch_training_step() {
    for f in fixtures_in("network") {
        match f.name.as_str() {
            "mlp_6_5_3_cross_entropy" => {
                check_mlp(&FUSED_MLP, &f);
                check_mlp(&TorchMlp, &f);
            }
            other => panic!("no network test for fixture `{other}`"),
        }
    }
}

#[test]
fn every_fixture_is_covered() {
    let all = Fixture::all();
    assert!(!all.is_empty(), "no fixtures in {}", Fixture::dir().display());
    let mut bytes = 0;
    for name in &all {
        let f = Fixture::load(name);
        assert_eq!(f.meta("case"), name, "fixture file name and case differ");
        let group = f.meta("group");
        assert!(TESTED_GROUPS.contains(&group), "fixture `{name}` is of group `{group}`, which no golden test runs");
        assert!(!f.meta("torch_version").is_empty(), "fixture `{name}` does not record its PyTorch version");
        bytes += std::fs::metadata(Fixture::dir().join(format!("{name}.safetensors"))).map_or(0, |m| m.len());
    }
    assert!(bytes < 1 << 20, "fixtures take {bytes} bytes; keep them under 1 MiB");
}

#[test]
fn assert_close_reports_the_first_mismatch() {
    let report =
        std::panic::catch_unwind(|| assert_close("t", &[1.0, 2.5, 3.0, 9.0], &[1.0, 2.0, 3.0, 4.0], 1e-5, 1e-6))
            .expect_err("the values differ");
    let message = report.downcast_ref::<String>().expect("a formatted message");
    assert!(message.contains("2 of 4 values differ"), "{message}");
    assert!(message.contains("first at index 1: actual 2.5e0, expected 2e0"), "{message}");
    assert!(message.contains("max error 5e0 at index 3"), "{message}");
    assert!(std::panic::catch_unwind(|| assert_close("nan", &[f32::NAN], &[1.0], 1.0, 1.0)).is_err());
    assert_close("equal", &[1.0, -0.0], &[1.0000001, 0.0], 1e-5, 1e-6);
}
