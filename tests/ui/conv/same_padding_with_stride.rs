use nn_core::prelude::*;

network! {
    pub struct Net: [1, 8, 8] -> [4, 4, 4] {
        conv: Conv2d { filters: 4, kernel: 3, stride: 2, padding: Same },
    }
}

fn main() {}
