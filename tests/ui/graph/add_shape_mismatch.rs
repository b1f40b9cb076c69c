use nn_core::prelude::*;

network! {
    pub struct Res: [16] -> [16] graph {
        input x;
        h = fc1(x): Dense { units: 8, activation: Relu };
        out = add(x, h);
        output out;
    }
}

fn main() {}
