use nn_core::prelude::*;

network! {
    /// Tying names another layer of a graph; a sequential network has no such names.
    pub struct Net: [8] -> [8] {
        enc: Dense { units: 4, activation: Relu },
        dec: Dense { tied: enc },
    }
}

fn main() {}
