use nn_core::prelude::*;

network! {
    /// An LSTM's final state is `h` and `c`.
    pub struct Net: ([10, 4], [6, 2]) -> [6, 8] graph {
        input src, tgt;
        (_, h) = enc(src): Lstm { units: 8 };
        y = dec(tgt, h): Gru { units: 8, return_sequences: true };
        output y;
    }
}

fn main() {}
