use nn_core::prelude::*;

network! {
    pub struct Net: [3, 8, 8] -> [4, 6, 6] {
        conv: Conv2d { filters: 4, kernel: 3, groups: 2 },
    }
}

fn main() {}
