use nn_core::prelude::*;

network! {
    /// `Dense` has no state to start from.
    pub struct Net: ([4], [8]) -> [8] graph {
        input x, h0;
        y = fc(x, h0): Dense { units: 8 };
        output y;
    }
}

fn main() {}
