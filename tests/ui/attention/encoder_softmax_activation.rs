use nn_core::prelude::*;

network! {
    pub struct Net: [8, 16] -> [8, 16] {
        encoder: TransformerEncoder { heads: 2, ff: 32, activation: Softmax },
    }
}

fn main() {}
