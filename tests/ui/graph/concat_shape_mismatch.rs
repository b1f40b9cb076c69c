use nn_core::prelude::*;

network! {
    pub struct Net: [4, 6] -> [8, 6] graph {
        input x;
        h = fc(x): Flatten;
        out = concat(x, h, axis: 0);
        output out;
    }
}

fn main() {}
