use nn_core::prelude::*;

network! {
    pub struct Net<T>: [64] -> [10] {
        fc1: Dense { units: 10 },
    }
}

fn main() {}
