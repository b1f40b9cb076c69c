use nn_core::prelude::*;

network! {
    /// The decoder has 16 units in 2 layers, so its initial state is [2, 16]; the
    /// encoder gives [8].
    pub struct Seq2Seq: ([10, 4], [6, 3]) -> [6, 16] graph {
        input src, tgt;
        h = enc(src): Gru { units: 8 };
        y = dec(tgt, h): Gru { units: 16, layers: 2, return_sequences: true };
        output y;
    }
}

fn main() {}
