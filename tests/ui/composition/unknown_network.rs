use nn_core::prelude::*;

network! {
    pub struct Encoder: [64] -> [16] {
        fc1: Dense { units: 16 },
    }

    pub struct Net: [64] -> [10] {
        encoder: Encodr,
        act: Relu,
        head: Dense { units: 10 },
    }
}

fn main() {
    let model = Model::<Net>::new(0);
    let _ = model.predict_one(&Default::default());
}
