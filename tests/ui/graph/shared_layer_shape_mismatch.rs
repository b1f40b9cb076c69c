use nn_core::prelude::*;

network! {
    pub struct Net: [8] -> [4] graph {
        input x;
        a = fc(x): Dense { units: 4, activation: Relu };
        b = fc(a);
        output b;
    }
}

fn main() {}
