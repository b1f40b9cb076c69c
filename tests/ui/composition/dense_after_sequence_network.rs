use nn_core::prelude::*;

network! {
    pub struct Smooth: [4, 8] -> [4, 8] {
        act: Tanh,
    }

    pub struct Net: [4, 8] -> [10] {
        smooth: Smooth,
        fc1: Dense { units: 10 },
    }
}

fn main() {
    let model = Model::<Net>::new(0);
    let _ = model.predict_one(&Default::default());
}
