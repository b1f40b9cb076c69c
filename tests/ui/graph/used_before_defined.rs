use nn_core::prelude::*;

network! {
    pub struct Net: [16] -> [4] graph {
        input x;
        y = fc2(h): Dense { units: 4 };
        h = fc1(x): Dense { units: 8 };
        output y;
    }
}

fn main() {}
