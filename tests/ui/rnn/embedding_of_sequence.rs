use nn_core::prelude::*;

network! {
    pub struct Net: [10, 3] -> [10, 4] {
        embed: Embedding { vocab: 100, dim: 4 },
    }
}

fn main() {}
