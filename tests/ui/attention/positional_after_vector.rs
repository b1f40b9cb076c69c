use nn_core::prelude::*;

network! {
    pub struct Net: [32] -> [32] {
        pos: PositionalEncoding,
    }
}

fn main() {}
