//! Adversarial training against PyTorch: a small generator (dense, batch norm, ReLU,
//! dense, tanh) and discriminator (dense, leaky ReLU, dense), each with its own Adam,
//! trained for two rounds of one discriminator step and one generator step through the
//! frozen discriminator, with the logistic loss and one-sided label smoothing, and with
//! the least-squares loss. The references are `tests/fixtures/gan_step_*` (group
//! `gan` of `tools/fixtures/generate.py`, which describes every tensor).
//!
//! Checked per round: both losses, the discriminator's gradients, the gradient with
//! respect to the generated samples (backward through the discriminator into its
//! input), the generator's gradients, both networks' parameters after the round (the
//! discriminator unchanged by the generator step), and the generator's batch-norm
//! running statistics at the end.
use crate::fixtures;

use fixtures::{assert_close, Fixture};
use nn_core::prelude::*;

/// Relative tolerance: f32 rounding over a few dozen terms per value, compounded
/// through two Adam steps (whose first steps divide a gradient by its own magnitude).
const RTOL: f32 = 1e-5;
/// Absolute tolerance, for gradients that cancel to near zero over the batch.
const ATOL: f32 = 1e-6;

network! {
    /// PyTorch's `Sequential(fc1=Linear(4, 8, bias=False), bn=BatchNorm1d(8), relu=ReLU(),
    /// fc2=Linear(8, 6), tanh=Tanh())`.
    pub struct TinyGenerator: [4] -> [6] {
        fc1: Dense { units: 8, bias: false },
        bn: BatchNorm1d,
        relu: Relu,
        fc2: Dense { units: 6 },
        tanh: Tanh,
    }
}

network! {
    /// PyTorch's `Sequential(fc1=Linear(6, 8), act=LeakyReLU(0.2), fc2=Linear(8, 1))`.
    pub struct TinyDiscriminator: [6] -> [1] {
        fc1: Dense { units: 8 },
        act: LeakyRelu { alpha: 0.2 },
        fc2: Dense { units: 1 },
    }
}

/// A model whose parameters are `<params>.<name>` and buffers `<buffers>.<name>` of the
/// fixture (buffers left as initialised when `buffers` is `None`).
fn load<L: Layer + Default>(f: &Fixture, params: &str, buffers: Option<&str>) -> Model<L> {
    let mut model = Model::<L>::new(0);
    let mut state = model.state().to_vec();
    model.visit_tensors(&mut |t| {
        let (prefix, at) = if t.trainable { (params, t.offset) } else { (buffers.unwrap_or(""), L::PARAMS + t.offset) };
        if t.trainable || buffers.is_some() {
            state[at..at + t.len].copy_from_slice(f.values(&format!("{prefix}.{}", t.path)));
        }
    });
    model.state_mut().copy_from_slice(&state);
    model
}

/// Asserts every parameter (or buffer) tensor of `values` against `<prefix>.<name>`.
fn assert_tensors<L: Layer>(model: &Model<L>, f: &Fixture, prefix: &str, values: &[f32], trainable: bool) {
    model.visit_tensors(&mut |t| {
        if t.trainable == trainable {
            let key = format!("{prefix}.{}", t.path);
            assert_close(
                &format!("{}: {key}", f.name),
                &values[t.offset..t.offset + t.len],
                f.values(&key),
                RTOL,
                ATOL,
            );
        }
    });
}

fn check_gan_steps(f: &Fixture) {
    let loss = match f.option("objective") {
        Some("logistic") => GanLoss::logistic(),
        Some("least_squares") => GanLoss::least_squares(),
        other => panic!("{}: no GanLoss for objective {other:?}", f.name),
    }
    .label_smoothing(f.option_f32("label_smoothing"));
    let adam = Adam { beta1: f.option_f32("beta1"), beta2: f.option_f32("beta2"), ..Adam::new(f.option_f32("lr")) };
    let rounds: usize = f.option("rounds").and_then(|r| r.parse().ok()).expect("rounds");
    let batch = f.batch();

    let mut g = load::<TinyGenerator>(f, "param.g", Some("buffer.g"));
    let mut d = load::<TinyDiscriminator>(f, "param.d", None);
    let (mut g_ws, mut d_ws) = (Workspace::<TinyGenerator>::new(), Workspace::<TinyDiscriminator>::new());
    let (mut g_opt, mut d_opt) = (OptimizerState::new(adam), OptimizerState::new(adam));
    let mut rng = Rng::new(0);
    let real_labels = vec![loss.real_label(); batch];
    let fake_labels = vec![GanLoss::FAKE_LABEL; batch];
    let generator_labels = vec![GanLoss::GENERATOR_LABEL; batch];

    for k in 1..=rounds {
        let name = |what: &str| format!("{}: round {k}: {what}", f.name);
        let (real, noise_d, noise_g) =
            (f.values(&format!("real.{k}")), f.values(&format!("noise_d.{k}")), f.values(&format!("noise_g.{k}")));

        // Discriminator step.
        d_ws.zero_grads();
        d.forward_train(&mut d_ws, real, &mut rng);
        let mut loss_d = d_ws.loss(&loss, &real_labels);
        d.backward(&mut d_ws, real, None);
        g.forward_train(&mut g_ws, noise_d, &mut rng);
        d.forward_train(&mut d_ws, g_ws.output(), &mut rng);
        loss_d += d_ws.loss(&loss, &fake_labels);
        d.backward(&mut d_ws, g_ws.output(), None);
        assert_close(&name("loss_d"), &[loss_d], f.values(&format!("loss_d.{k}")), RTOL, ATOL);
        assert_tensors(&d, f, &format!("grad_d.{k}"), d_ws.grads(), true);
        d_opt.step(d.params_mut(), d_ws.grads());

        // Generator step through the discriminator, which must not change.
        let d_before = d.state().to_vec();
        g_ws.zero_grads();
        g.forward_train(&mut g_ws, noise_g, &mut rng);
        d.forward_train(&mut d_ws, g_ws.output(), &mut rng);
        let loss_g = d_ws.loss(&loss, &generator_labels);
        assert_close(&name("loss_g"), &[loss_g], f.values(&format!("loss_g.{k}")), RTOL, ATOL);
        let (generated, generated_grad) = g_ws.output_and_grad_mut();
        generated_grad.fill(f32::NAN);
        d.backward(&mut d_ws, generated, Some(generated_grad));
        let grad_fake = g_ws.output_grad_mut().to_vec();
        assert_close(&name("grad_fake"), &grad_fake, f.values(&format!("grad_fake.{k}")), RTOL, ATOL);
        g.backward(&mut g_ws, noise_g, None);
        assert_tensors(&g, f, &format!("grad_g.{k}"), g_ws.grads(), true);
        g_opt.step(g.params_mut(), g_ws.grads());
        assert_eq!(d.state(), &d_before[..], "{}", name("the generator step changed the discriminator"));

        assert_tensors(&g, f, &format!("g.{k}"), g.params(), true);
        assert_tensors(&d, f, &format!("d.{k}"), d.params(), true);
    }
    assert_tensors(&g, f, "buffer_end.g", g.buffers(), false);
}

#[test]
fn gan_steps_match_torch() {
    let mut seen = Vec::new();
    for name in Fixture::all() {
        let f = Fixture::load(&name);
        if f.meta("group") == "gan" {
            check_gan_steps(&f);
            seen.push(f.option("objective").unwrap_or_default().to_owned());
        }
    }
    seen.sort();
    assert_eq!(seen, ["least_squares", "logistic"], "the fixtures of group `gan`");
}
