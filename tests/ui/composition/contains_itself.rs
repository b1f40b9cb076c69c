use nn_core::prelude::*;

network! {
    pub struct Net: [4] -> [4] {
        fc: Dense { units: 4 },
        inner: Net,
    }

    /// `A` contains `B`, which contains `A`.
    pub struct A: [4] -> [4] {
        b: B,
    }

    pub struct B: [4] -> [4] graph {
        input x;
        y = a(x): A;
        output y;
    }
}

fn main() {
    let model = Model::<Net>::new(0);
    let _ = model.predict_one(&Default::default());
}
