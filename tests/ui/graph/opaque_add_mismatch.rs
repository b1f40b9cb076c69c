use nn_core::prelude::*;

network! {
    pub struct Encoder: [8] -> [4] {
        fc: Dense { units: 4, activation: Relu },
    }
}

network! {
    pub struct Net: [8] -> [8] graph {
        input x;
        e = enc(x): Encoder;
        out = add(x, e);
        output out;
    }
}

fn main() {}
