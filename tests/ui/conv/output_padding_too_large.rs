use nn_core::prelude::*;

network! {
    pub struct Net: [2, 4, 4] -> [1, 9, 9] {
        up: ConvTranspose2d { filters: 1, kernel: 3, stride: 2, output_padding: 2 },
    }
}

fn main() {}
