use nn_core::prelude::*;

network! {
    pub struct Encoder: [16, 30] -> [16, 30] {
        pos: PositionalEncoding,
        encoder: TransformerEncoder { heads: 4, ff: 64, layers: 2 },
    }
}

fn main() {}
