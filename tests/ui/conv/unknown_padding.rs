use nn_core::prelude::*;

network! {
    pub struct Net: [1, 8, 8] -> [4, 8, 8] {
        conv: Conv2d { filters: 4, kernel: 3, padding: Sme },
    }
}

fn main() {}
