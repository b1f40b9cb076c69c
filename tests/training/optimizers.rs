//! Every optimizer against an `f64` re-implementation of the algorithm in PyTorch's
//! `torch.optim` documentation, written here independently of `nn_core::optim`, and on
//! a quadratic it must minimise.
//!
//! Each optimizer runs 5 steps on 5 parameters with a fixed gradient sequence (mixed
//! signs, a zero, a large and a tiny gradient) and a learning-rate change before step
//! 4, as a schedule makes. After every step the parameters must be within
//! `1e-6 + 1e-6 |expected|` of the reference: the rounding of a few `f32` operations
//! per step.
use crate::gradcheck;

use gradcheck::{assert_close, uniform, Tolerance};
use nn_core::optim::{AdaGrad, Adam, AdamW, Optimizer, RmsProp, Sgd};
use nn_core::Rng;

const STEPS: usize = 5;
const START: [f32; 5] = [0.5, -1.2, 2.0, 0.0, 3.3];
/// Before this step the learning rate changes to `lr * LR_CHANGE`.
const LR_CHANGE_STEP: usize = 4;
const LR_CHANGE: f64 = 0.5;
const TOLERANCE: Tolerance = Tolerance { abs: 1e-6, rel: 1e-6 };

/// The gradient of step `t` (from 1): random in `[-2, 2]`, except for a zero gradient
/// of parameter 3 at steps 1 and 2, a gradient of 50 for parameter 1 at step 3 and one
/// of 1e-4 for parameter 4 at step 2.
fn gradients() -> Vec<Vec<f32>> {
    let mut rng = Rng::new(17);
    (1..=STEPS)
        .map(|t| {
            let mut g = uniform(&mut rng, START.len(), -2.0, 2.0);
            if t <= 2 {
                g[3] = 0.0;
            }
            if t == 3 {
                g[1] = 50.0;
            }
            if t == 2 {
                g[4] = 1e-4;
            }
            g
        })
        .collect()
}

/// An `f64` reference: one step of the documented algorithm with learning rate `lr`.
trait Reference {
    fn step(&mut self, t: usize, lr: f64, params: &mut [f64], grads: &[f64]);
}

/// `torch.optim.SGD` (dampening 0, no weight decay):
/// `b_t = g_t` at `t = 1`, else `mu b_{t-1} + g_t`; Nesterov `g_t + mu b_t`, else `b_t`;
/// `theta -= lr * that`. Without momentum, `theta -= lr g_t`.
struct SgdReference {
    momentum: f64,
    nesterov: bool,
    buffer: Vec<f64>,
}

impl Reference for SgdReference {
    fn step(&mut self, t: usize, lr: f64, params: &mut [f64], grads: &[f64]) {
        for i in 0..params.len() {
            let mut g = grads[i];
            if self.momentum != 0.0 {
                self.buffer[i] = if t == 1 { g } else { self.momentum * self.buffer[i] + g };
                g = if self.nesterov { g + self.momentum * self.buffer[i] } else { self.buffer[i] };
            }
            params[i] -= lr * g;
        }
    }
}

/// `torch.optim.Adagrad` (no learning-rate decay, initial accumulator 0):
/// `s_t = s_{t-1} + g^2`, `theta -= lr g / (sqrt(s_t) + eps)`.
struct AdaGradReference {
    eps: f64,
    sum: Vec<f64>,
}

impl Reference for AdaGradReference {
    fn step(&mut self, _t: usize, lr: f64, params: &mut [f64], grads: &[f64]) {
        for i in 0..params.len() {
            self.sum[i] += grads[i] * grads[i];
            params[i] -= lr * grads[i] / (self.sum[i].sqrt() + self.eps);
        }
    }
}

/// `torch.optim.RMSprop` (not centered, no momentum):
/// `v_t = alpha v_{t-1} + (1 - alpha) g^2`, `theta -= lr g / (sqrt(v_t) + eps)`.
struct RmsPropReference {
    alpha: f64,
    eps: f64,
    square_average: Vec<f64>,
}

impl Reference for RmsPropReference {
    fn step(&mut self, _t: usize, lr: f64, params: &mut [f64], grads: &[f64]) {
        for i in 0..params.len() {
            let v = &mut self.square_average[i];
            *v = self.alpha * *v + (1.0 - self.alpha) * grads[i] * grads[i];
            params[i] -= lr * grads[i] / (v.sqrt() + self.eps);
        }
    }
}

/// `torch.optim.Adam` and `torch.optim.AdamW`: with `AdamW`'s decoupled decay first
/// `theta -= lr lambda theta`; then `m_t = b1 m + (1 - b1) g`, `v_t = b2 v + (1 - b2) g^2`,
/// `m^ = m_t / (1 - b1^t)`, `v^ = v_t / (1 - b2^t)`, `theta -= lr m^ / (sqrt(v^) + eps)`.
struct AdamReference {
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    m: Vec<f64>,
    v: Vec<f64>,
}

impl Reference for AdamReference {
    fn step(&mut self, t: usize, lr: f64, params: &mut [f64], grads: &[f64]) {
        for i in 0..params.len() {
            params[i] -= lr * self.weight_decay * params[i];
            let g = grads[i];
            self.m[i] = self.beta1 * self.m[i] + (1.0 - self.beta1) * g;
            self.v[i] = self.beta2 * self.v[i] + (1.0 - self.beta2) * g * g;
            let m_hat = self.m[i] / (1.0 - self.beta1.powi(t as i32));
            let v_hat = self.v[i] / (1.0 - self.beta2.powi(t as i32));
            params[i] -= lr * m_hat / (v_hat.sqrt() + self.eps);
        }
    }
}

/// Runs `optimizer` and `reference` side by side and compares after every step.
fn check_against_reference<O: Optimizer>(what: &str, mut optimizer: O, mut reference: impl Reference) {
    let n = START.len();
    let mut params = START.to_vec();
    let mut expected: Vec<f64> = START.iter().map(|&p| p as f64).collect();
    let mut state = vec![0.0; O::STATE_PER_PARAM * n];
    let lr = optimizer.learning_rate() as f64;
    for (t, grads) in (1..=STEPS).zip(gradients()) {
        let lr = if t >= LR_CHANGE_STEP { lr * LR_CHANGE } else { lr };
        optimizer.set_learning_rate(lr as f32);
        assert_eq!(optimizer.learning_rate(), lr as f32);
        optimizer.update(t as u64, &mut params, &grads, &mut state);
        let grads: Vec<f64> = grads.iter().map(|&g| g as f64).collect();
        reference.step(t, lr, &mut expected, &grads);
        assert_close(&format!("{what}: step {t}"), &params, &expected, TOLERANCE);
    }
    // The parameters moved: the comparison is not between two copies of the start.
    assert!(params.iter().zip(START).filter(|(p, s)| (*p - s).abs() > 1e-3).count() >= 4, "{what}: {params:?}");
}

fn sgd_reference(momentum: f64, nesterov: bool) -> SgdReference {
    SgdReference { momentum, nesterov, buffer: vec![0.0; START.len()] }
}

fn adam_reference(adam: Adam, weight_decay: f64) -> AdamReference {
    AdamReference {
        beta1: adam.beta1 as f64,
        beta2: adam.beta2 as f64,
        eps: adam.eps as f64,
        weight_decay,
        m: vec![0.0; START.len()],
        v: vec![0.0; START.len()],
    }
}

#[test]
fn sgd_matches_pytorch_algorithm() {
    check_against_reference("sgd", Sgd::new(0.1), sgd_reference(0.0, false));
    check_against_reference("sgd momentum", Sgd::momentum(0.1, 0.9), sgd_reference(0.9, false));
    check_against_reference("sgd nesterov", Sgd::nesterov(0.1, 0.9), sgd_reference(0.9, true));
    check_against_reference("sgd momentum 0.5", Sgd::momentum(0.3, 0.5), sgd_reference(0.5, false));
}

#[test]
fn adagrad_matches_pytorch_algorithm() {
    let sum = || vec![0.0; START.len()];
    // PyTorch's default eps is 1e-10.
    check_against_reference("adagrad", AdaGrad::new(0.1), AdaGradReference { eps: 1e-10, sum: sum() });
    let custom = AdaGrad { lr: 0.5, eps: 1e-3 };
    check_against_reference("adagrad eps 1e-3", custom, AdaGradReference { eps: 1e-3, sum: sum() });
}

#[test]
fn rmsprop_matches_pytorch_algorithm() {
    let average = || vec![0.0; START.len()];
    // PyTorch's defaults: alpha 0.99, eps 1e-8.
    let reference = RmsPropReference { alpha: 0.99, eps: 1e-8, square_average: average() };
    check_against_reference("rmsprop", RmsProp::new(0.01), reference);
    let custom = RmsProp { lr: 0.05, alpha: 0.9, eps: 1e-6 };
    let reference = RmsPropReference { alpha: 0.9, eps: 1e-6, square_average: average() };
    check_against_reference("rmsprop alpha 0.9", custom, reference);
}

#[test]
fn adam_matches_pytorch_algorithm() {
    // PyTorch's defaults: betas (0.9, 0.999), eps 1e-8.
    let defaults = Adam::new(0.01);
    assert_eq!((defaults.beta1, defaults.beta2, defaults.eps), (0.9, 0.999, 1e-8));
    assert_eq!(Adam::default().lr, 1e-3);
    check_against_reference("adam", defaults, adam_reference(defaults, 0.0));
    let custom = Adam { lr: 0.1, beta1: 0.8, beta2: 0.99, eps: 1e-6 };
    check_against_reference("adam betas (0.8, 0.99)", custom, adam_reference(custom, 0.0));
}

#[test]
fn adamw_matches_pytorch_algorithm() {
    let adamw = AdamW::new(0.01, 0.01);
    check_against_reference("adamw", adamw, adam_reference(adamw.adam, 0.01));
    let custom = AdamW { adam: Adam { lr: 0.1, beta1: 0.8, beta2: 0.99, eps: 1e-6 }, weight_decay: 0.3 };
    check_against_reference("adamw decay 0.3", custom, adam_reference(custom.adam, 0.3));
}

/// `f(p) = 1/2 sum a_i (p_i - c_i)^2`, curvatures 0.25 to 4.
fn quadratic(p: &[f32]) -> (f64, Vec<f32>) {
    const CURVATURE: [f32; 3] = [1.0, 4.0, 0.25];
    const MINIMUM: [f32; 3] = [0.5, 1.0, -1.0];
    let mut value = 0.0;
    let mut grad = Vec::with_capacity(p.len());
    for ((&p, a), c) in p.iter().zip(CURVATURE).zip(MINIMUM) {
        value += 0.5 * (a * (p - c) * (p - c)) as f64;
        grad.push(a * (p - c));
    }
    (value, grad)
}

fn check_minimises<O: Optimizer>(what: &str, optimizer: O) {
    let mut params = vec![3.0, -2.0, 1.0];
    let mut state = vec![0.0; O::STATE_PER_PARAM * params.len()];
    let (start, _) = quadratic(&params);
    let mut values = Vec::new();
    for t in 1..=300 {
        let (_, grad) = quadratic(&params);
        optimizer.update(t, &mut params, &grad, &mut state);
        values.push(quadratic(&params).0);
    }
    assert!(values[0] < start, "{what}: the first step does not descend ({start} -> {})", values[0]);
    assert!(values[299] < 1e-3 * start, "{what}: f went from {start} to {} in 300 steps", values[299]);
}

#[test]
fn every_optimizer_minimises_a_quadratic() {
    check_minimises("sgd", Sgd::new(0.1));
    check_minimises("sgd momentum", Sgd::momentum(0.05, 0.9));
    check_minimises("sgd nesterov", Sgd::nesterov(0.05, 0.9));
    check_minimises("adagrad", AdaGrad::new(0.5));
    check_minimises("rmsprop", RmsProp::new(0.05));
    check_minimises("adam", Adam::new(0.05));
    check_minimises("adamw", AdamW::new(0.05, 0.01));
}
