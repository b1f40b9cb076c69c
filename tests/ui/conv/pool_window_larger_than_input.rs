use nn_core::prelude::*;

network! {
    pub struct Net: [4, 2, 2] -> [4, 1, 1] {
        pool: MaxPool2d { size: 3 },
    }
}

fn main() {}
