use nn_core::prelude::*;

network! {
    pub struct Net: [8] -> [8] graph {
        input x;
        code = enc(x): Dense { units: 4, activation: Relu };
        back = dec(code): Dense { tied: encoder };
        output back;
    }
}

fn main() {}
