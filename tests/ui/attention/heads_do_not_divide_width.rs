use nn_core::prelude::*;

network! {
    pub struct Tagger: [10, 64] -> [10, 64] {
        attn: MultiHeadAttention { heads: 3, causal: true },
    }
}

fn main() {}
