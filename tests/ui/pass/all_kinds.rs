//! Every built-in kind, run forward against values computed by hand.
use nn_core::prelude::*;

network! {
    /// A network through every built-in kind.
    #[allow(dead_code)]
    pub struct Everything: [4] -> [3] {
        fc1: Dense { units: 8, activation: LeakyRelu(0.2), bias: true },
        identity: Identity,
        relu: Relu => [8],
        leaky: LeakyRelu { alpha: 0.1 },
        elu: Elu { alpha: 0.5 },
        gelu: Gelu,
        sigmoid: Sigmoid,
        tanh: Tanh,
        softmax: Softmax,
        drop: Dropout { rate: 0 },
        fc2: Dense { units: 3, activation: Activation::Elu(-1), bias: false }
    }

    pub struct Relus: [5] -> [5] { act: Relu }
    pub struct Leaky: [5] -> [5] { act: LeakyRelu { alpha: 0.2 } }
    pub struct LeakyDefault: [5] -> [5] { act: LeakyRelu }
    pub struct Elus: [5] -> [5] { act: Elu }
    pub struct Sigmoids: [5] -> [5] { act: Sigmoid }
    pub struct Tanhs: [5] -> [5] { act: Tanh }
    pub struct Gelus: [5] -> [5] { act: Gelu }
    pub struct Softmaxes: [5] -> [5] { act: Softmax }
    pub struct Identities: [5] -> [5] { act: Identity, drop: Dropout { rate: 0.5 } }
    pub struct Rows: [2, 3] -> [2, 3] { act: Softmax, }

    /// `y = W x + b` followed by each activation of `Dense`.
    pub struct Affine: [2] -> [3] {
        fc: Dense { units: 3, activation: Elu(2.0) },
    }
}

const X: [f32; 5] = [-2.0, -0.5, 0.0, 1.0, 3.0];

fn run<N: Network<Input = Shape1<5>, Output = Shape1<5>>>() -> Vec<f32> {
    let model = Model::<N>::zeros();
    model.predict_one(&X.into()).to_vec()
}

fn close(found: &[f32], expected: &[f64]) {
    assert_eq!(found.len(), expected.len());
    for (f, e) in found.iter().zip(expected) {
        assert!((f64::from(*f) - e).abs() < 1e-5, "{found:?} vs {expected:?}");
    }
}

fn main() {
    let x: Vec<f64> = X.iter().map(|&v| f64::from(v)).collect();
    close(&run::<Relus>(), &[0.0, 0.0, 0.0, 1.0, 3.0]);
    close(&run::<Leaky>(), &[-0.4, -0.1, 0.0, 1.0, 3.0]);
    close(&run::<LeakyDefault>(), &[-0.02, -0.005, 0.0, 1.0, 3.0]);
    close(&run::<Elus>(), &x.iter().map(|&v| if v > 0.0 { v } else { v.exp() - 1.0 }).collect::<Vec<_>>());
    close(&run::<Sigmoids>(), &x.iter().map(|&v| 1.0 / (1.0 + (-v).exp())).collect::<Vec<_>>());
    close(&run::<Tanhs>(), &x.iter().map(|&v| v.tanh()).collect::<Vec<_>>());
    // x * Phi(x), from tables of the normal distribution.
    close(&run::<Gelus>(), &[-0.045_500_26, -0.154_268_71, 0.0, 0.841_344_75, 2.995_950_2]);
    let sum: f64 = x.iter().map(|v| v.exp()).sum();
    close(&run::<Softmaxes>(), &x.iter().map(|v| v.exp() / sum).collect::<Vec<_>>());
    close(&run::<Identities>(), &x);

    // Softmax over the last dimension of a [2, 3] sample: each row sums to 1.
    let rows = Model::<Rows>::zeros().predict_one(&[[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]].into());
    close(&rows[3..], &[1.0 / 3.0; 3]);
    assert!((rows[..3].iter().sum::<f32>() - 1.0).abs() < 1e-6);

    // Dense: weight [3, 2] then bias [3]; ELU with alpha 2 below zero.
    let mut affine = Model::<Affine>::zeros();
    affine.params_mut().copy_from_slice(&[1.0, 2.0, -1.0, 0.5, 0.0, 0.0, 0.5, -4.0, 0.0]);
    let y = affine.predict_one(&[1.0, 2.0].into());
    close(&y, &[5.5, 2.0 * ((-4.0f64).exp() - 1.0), 0.0]);

    assert_eq!(Everything::PARAMS, 4 * 8 + 8 + 8 * 3);
    let scores = Model::<Everything>::new(5).predict_one(&[0.5, -0.5, 1.0, 2.0].into());
    assert_eq!(scores.len(), 3);
    assert!(scores.iter().all(|v| v.is_finite() && *v > -1.0));
    let text = Model::<Everything>::new(5).summary().to_string();
    assert!(text.contains("leaky_relu") && text.contains("Dropout"), "{text}");
}
