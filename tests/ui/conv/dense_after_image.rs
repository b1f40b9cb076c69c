use nn_core::prelude::*;

network! {
    pub struct Net: [1, 8, 8] -> [10] {
        conv: Conv2d { filters: 4, kernel: 3, padding: Same },
        pool: MaxPool2d { size: 2 },
        fc: Dense { units: 10 },
    }
}

fn main() {}
