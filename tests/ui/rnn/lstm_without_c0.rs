use nn_core::prelude::*;

network! {
    /// An LSTM starts from `h0` and `c0`, PyTorch's `lstm(x, (h0, c0))`.
    pub struct Net: ([10, 4], [1, 8]) -> [8] graph {
        input x, h0;
        y = lstm(x, h0): Lstm { units: 8 };
        output y;
    }
}

fn main() {}
