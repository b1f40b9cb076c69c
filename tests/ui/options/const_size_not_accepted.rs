use nn_core::prelude::*;

const FILTERS: usize = 8;
const LAYERS: usize = 2;

network! {
    /// A convolution's sizes decide its output shape, which the macro computes.
    pub struct Conv: [1, 8, 8] -> [8, 6, 6] {
        conv: Conv2d { filters: FILTERS, kernel: 3 },
    }
}

network! {
    pub struct Stacked: [4, 3] -> [8] {
        gru: Gru { units: 8, layers: LAYERS },
    }
}

fn main() {}
