use nn_core::prelude::*;

network! {
    /// A GRU's state is `h0` alone.
    pub struct Net: ([10, 4], [1, 8], [1, 8]) -> [8] graph {
        input x, h0, c0;
        y = gru(x, h0, c0): Gru { units: 8 };
        output y;
    }
}

fn main() {}
