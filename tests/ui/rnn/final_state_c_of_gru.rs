use nn_core::prelude::*;

network! {
    /// A GRU's final state is `h` alone.
    pub struct Net: [10, 4] -> [8] graph {
        input x;
        (y, h, c) = gru(x): Gru { units: 8 };
        z = add(h, c);
        output z;
    }
}

fn main() {}
