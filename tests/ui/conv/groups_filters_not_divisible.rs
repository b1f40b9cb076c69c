use nn_core::prelude::*;

network! {
    pub struct Net: [4, 10] -> [6, 8] {
        conv: Conv1d { filters: 6, kernel: 3, groups: 4 },
    }
}

fn main() {}
