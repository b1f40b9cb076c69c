use nn_core::prelude::*;

// `A` contains `B` and `B` contains `A`, each declared by its own `network!`, so that
// neither invocation sees the cycle.
network! {
    pub struct A: [4] -> [4] {
        fc: Dense { units: 4 },
        b: B,
    }
}

network! {
    pub struct B: [4] -> [4] {
        a: A,
    }
}

fn main() {
    let model = Model::<A>::new(0);
    let _ = model.predict_one(&Default::default());
}
