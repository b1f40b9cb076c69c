use nn_core::prelude::*;

network! {
    /// `LeakyRelu(0.2)` as a layer is `LeakyRelu { alpha: 0.2 }`.
    pub struct Called: [5] -> [5] { act: LeakyRelu(0.2) }
    pub struct Braced: [5] -> [5] { act: LeakyRelu { alpha: 0.2 } }
    pub struct EluCalled: [5] -> [5] { act: Elu(0.5), drop: Dropout(0.25) }
    /// As an option's value too.
    pub struct OptionCalled: [5] -> [5] { fc: Dense { units: 5, activation: LeakyRelu(0.2) } }
    pub struct OptionBraced: [5] -> [5] { fc: Dense { units: 5, activation: LeakyRelu { alpha: 0.2 } } }
    pub struct GraphCalled: [5] -> [5] graph {
        input x;
        y = act(x): LeakyRelu(0.2);
        output y;
    }
}

const X: [f32; 5] = [-2.0, -0.5, 0.0, 1.0, 3.0];

fn run<N: Network<Input = Shape1<5>, Output = Shape1<5>>>() -> Vec<f32> {
    Model::<N>::zeros().predict_one(&X.into()).to_vec()
}

fn main() {
    assert_eq!(run::<Called>(), run::<Braced>());
    assert_eq!(run::<Called>(), vec![-0.4, -0.1, 0.0, 1.0, 3.0]);
    assert_eq!(run::<GraphCalled>(), run::<Braced>());
    // The same seeded weights, so that negative sums reach the activation.
    let a = Model::<OptionCalled>::new(3);
    let b = Model::<OptionBraced>::from_state(OptionBraced, a.state().to_vec()).unwrap();
    assert_eq!(a.predict_one(&X.into()).to_vec(), b.predict_one(&X.into()).to_vec());
    // 0.5 (e^x - 1) below zero; dropout is the identity in inference.
    let elu: Vec<f32> = X.iter().map(|&x| if x > 0.0 { x } else { 0.5 * (x.exp() - 1.0) }).collect();
    assert_eq!(run::<EluCalled>(), elu);
}
