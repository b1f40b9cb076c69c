use nn_core::prelude::*;

// `A` and `B`, graph networks of their own `network!`s, contain each other, and `X`
// contains `A`: one error, from the cycle, whichever network is used.
network! {
    pub struct X: [4] -> [4] {
        fc: Dense { units: 4 },
        a: A,
    }
}
network! {
    pub struct A: [4] -> [4] graph {
        input x;
        y = b(x): B;
        output y;
    }
}
network! {
    pub struct B: [4] -> [4] graph {
        input x;
        y = fc(x): Dense { units: 4 };
        z = a(y): A;
        w = add(y, z);
        output w;
    }
}

fn main() {
    let model = Model::<X>::new(0);
    let _ = model.predict_one(&Default::default());
    let model = Model::<B>::new(0);
    let _ = model.predict_one(&Default::default());
}
