use nn_core::prelude::*;

// `A` contains `B`, which contains `C` (a graph network), which contains `A`, each
// declared by its own `network!`.
network! {
    pub struct A: [4] -> [4] {
        b: B,
    }
}

network! {
    pub struct B: [4] -> [4] {
        fc: Dense { units: 4 },
        c: C,
    }
}

network! {
    pub struct C: [4] -> [4] graph {
        input x;
        y = a(x): A;
        z = add(x, y);
        output z;
    }
}

fn main() {
    let model = Model::<C>::new(0);
    let _ = model.predict_one(&Default::default());
}
