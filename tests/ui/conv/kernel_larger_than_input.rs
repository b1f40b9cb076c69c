use nn_core::prelude::*;

network! {
    pub struct Net: [1, 4, 4] -> [8, 1, 1] {
        conv: Conv2d { filters: 8, kernel: 5 },
    }
}

fn main() {}
