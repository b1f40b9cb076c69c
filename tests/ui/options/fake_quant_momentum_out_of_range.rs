use nn_core::prelude::*;

network! {
    pub struct Net: [64] -> [10] {
        fc1: Dense { units: 10, activation: Relu },
        quant: FakeQuant { momentum: 1.0 },
    }
}

fn main() {
    let model = Model::<Net>::new(0);
    let _ = model.predict_one(&Default::default());
}
