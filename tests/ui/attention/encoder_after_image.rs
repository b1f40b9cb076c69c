use nn_core::prelude::*;

network! {
    pub struct Net: [3, 8, 8] -> [3, 8, 8] {
        encoder: TransformerEncoder { heads: 2, ff: 16 },
    }
}

fn main() {}
