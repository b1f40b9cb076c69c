use nn_core::prelude::*;

network! {
    pub struct Net: [64] -> [4, 6, 6] {
        conv: Conv2d { filters: 4, kernel: 3 },
    }
}

fn main() {}
