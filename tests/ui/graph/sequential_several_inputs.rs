use nn_core::prelude::*;

network! {
    pub struct Net: ([16], [8]) -> [4] {
        fc: Dense { units: 4 },
    }
}

fn main() {}
