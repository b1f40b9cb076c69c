use nn_core::prelude::*;

network! {
    pub struct Net: [8, 16] -> [8, 16] {
        norm: LayerNorm { eps: 0 },
    }
}

fn main() {}
