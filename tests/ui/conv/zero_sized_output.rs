use nn_core::prelude::*;

network! {
    pub struct Net: [2, 1, 3] -> [1, 1, 3] {
        up: ConvTranspose2d { filters: 1, kernel: 1, padding: 1 },
    }
}

fn main() {}
