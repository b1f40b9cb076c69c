use nn_core::prelude::*;

network! {
    pub struct Pool: [128] -> [16] {
        fc: Dense { units: 16 },
    }

    pub struct Net: [128] -> [16] {
        pool: Pool,
        attn: MultiHeadAttention { heads: 2 },
    }
}

fn main() {}
