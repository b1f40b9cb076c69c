use nn_core::prelude::*;

network! {
    /// An LSTM's final state is two values, `h` and `c`.
    pub struct Net: [10, 4] -> [8] graph {
        input x;
        (y, h, c, d) = lstm(x): Lstm { units: 8 };
        z = add(h, c, d);
        output z;
    }
}

fn main() {}
