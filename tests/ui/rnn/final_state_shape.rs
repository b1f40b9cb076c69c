use nn_core::prelude::*;

network! {
    /// A two-layer encoder's final state is [2, 8] per sample: it cannot start a
    /// one-layer decoder.
    pub struct Net: ([10, 4], [6, 2]) -> [6, 8] graph {
        input src, tgt;
        (_, h) = enc(src): Gru { units: 8, layers: 2 };
        y = dec(tgt, h): Gru { units: 8, return_sequences: true };
        output y;
    }
}

fn main() {}
