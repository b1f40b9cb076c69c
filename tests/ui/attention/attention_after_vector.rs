use nn_core::prelude::*;

network! {
    pub struct Net: [64] -> [64] {
        fc: Dense { units: 64 },
        attn: MultiHeadAttention { heads: 4 },
    }
}

fn main() {}
