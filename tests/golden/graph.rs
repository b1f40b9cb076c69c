//! Golden tests of graph networks (`network!`'s `graph` form) against PyTorch: a
//! residual MLP block, a residual CNN block, a network with every merge, a shared
//! layer and a tied layer, and a tied autoencoder. Each compares the whole network's
//! output, its input gradient and every parameter gradient for a random upstream
//! gradient (fixtures of group `graph`, written by `tools/fixtures/generate.py`).
use crate::fixtures;
use crate::standalone::Standalone;

use fixtures::{assert_close, Fixture};
use nn_core::prelude::*;

/// f32 rounding of sums of a few dozen terms (see `tests/golden/basics.rs`).
const RTOL: f32 = 1e-5;
const ATOL: f32 = 1e-5;

network! {
    /// `tanh(x + fc2(relu(fc1(x))))`.
    pub struct ResidualMlp: [6] -> [6] graph {
        input x;
        h = fc1(x): Dense { units: 8, activation: Relu };
        r = fc2(h): Dense { units: 6 };
        s = add(x, r);
        out = act(s): Tanh;
        output out;
    }
}

network! {
    /// `relu(x + conv2(relu(conv1(x))))` over 2 channels of 4x4.
    pub struct ResidualCnn: [2, 4, 4] -> [2, 4, 4] graph {
        input x;
        h = conv1(x): Conv2d { filters: 3, kernel: 3, padding: Same, };
        a = act1(h): Relu;
        r = conv2(a): Conv2d { filters: 2, kernel: 3, padding: Same };
        s = add(x, r);
        out = act2(s): Relu;
        output out;
    }
}

network! {
    /// Every merge, a layer used twice and a layer tied to another.
    pub struct SharedTiedMerges: [4] -> [7] graph {
        input x;
        a = enc(x): Dense { units: 3, activation: Tanh };
        b = shared(a): Dense { units: 3, activation: Sigmoid };
        c = shared(b);
        m = multiply(a, c, b);
        s = add(m, a);
        d = dec(s): Dense { tied: enc, activation: Tanh };
        out = concat(d, c, axis: 0);
        output out;
    }
}

network! {
    /// `sigmoid(relu(enc(x)) enc.weight + dec.bias)`.
    pub struct TiedAutoencoder: [6] -> [6] graph {
        input x;
        code = enc(x): Dense { units: 3, activation: Relu };
        out = dec(code): Dense { tied: enc, activation: Sigmoid };
        output out;
    }
}

/// Runs `fixture` through `layer`: parameters by name, forward in training mode,
/// backward with the fixture's upstream gradient; compares every result.
fn check<L: Layer>(layer: L, name: &str) {
    let f = Fixture::load(name);
    assert_eq!(f.meta("group"), "graph");
    let mut params = vec![f32::NAN; L::PARAMS];
    let mut seen = Vec::new();
    layer.visit_tensors(None, 0, 0, &mut |t| {
        let key = format!("param.{}", t.path);
        assert_eq!(f.values(&key).len(), t.len, "{name}: {key}");
        params[t.offset..t.offset + t.len].copy_from_slice(f.values(&key));
        seen.push(t.path.to_string());
    });
    let expected: Vec<String> =
        f.tensor_names().filter_map(|n| n.strip_prefix("param.")).map(str::to_owned).collect::<Vec<_>>();
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(sorted, expected, "{name}: the network's tensors are PyTorch's");
    let x = f.values("input");
    let batch = f.batch();
    let mut y = vec![0.0; batch * <L::Output as Shape>::LEN];
    let mut s = Standalone::new::<L>(batch, 0);
    layer.forward_train(x, &mut y, s.train(&params));
    assert_close(&format!("{name}: output"), &y, f.values("output"), RTOL, ATOL);
    // Inference computes the same.
    let mut y_eval = vec![0.0; y.len()];
    layer.forward(nn_core::Weights::new(&params, &s.buffers), x, &mut y_eval, &mut s.scratch);
    assert_close(&format!("{name}: inference output"), &y_eval, f.values("output"), RTOL, ATOL);

    let mut dy = f.values("grad_output").to_vec();
    let mut dx = vec![f32::NAN; x.len()];
    s.scratch.fill(f32::NAN);
    layer.backward(x, &y, &mut dy, Some(&mut dx), s.backward(&params));
    let grads = std::mem::replace(&mut s.grads, vec![0.0; L::PARAMS]);
    assert_close(&format!("{name}: grad_input"), &dx, f.values("grad_input"), RTOL, ATOL);
    layer.visit_tensors(None, 0, 0, &mut |t| {
        let key = format!("grad.{}", t.path);
        assert_close(&format!("{name}: {key}"), &grads[t.offset..t.offset + t.len], f.values(&key), RTOL, ATOL);
    });
    // Without an input gradient, the parameter gradients are the same.
    let mut dy = f.values("grad_output").to_vec();
    layer.backward(x, &y, &mut dy, None, s.backward(&params));
    assert_eq!(s.grads, grads, "{name}: parameter gradients without dx");
}

#[test]
fn residual_mlp_block_matches_pytorch() {
    check(ResidualMlp, "graph_residual_mlp");
}

#[test]
fn residual_cnn_block_matches_pytorch() {
    check(ResidualCnn, "graph_residual_cnn");
}

#[test]
fn shared_and_tied_gradients_match_pytorch() {
    check(SharedTiedMerges, "graph_shared_tied_merges");
}

#[test]
fn tied_autoencoder_matches_pytorch() {
    check(TiedAutoencoder, "graph_tied_autoencoder");
}
