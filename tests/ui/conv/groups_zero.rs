use nn_core::prelude::*;

network! {
    pub struct Net: [4, 8, 8] -> [4, 6, 6] {
        conv: Conv2d { filters: 4, kernel: 3, groups: 0 },
    }
}

fn main() {}
