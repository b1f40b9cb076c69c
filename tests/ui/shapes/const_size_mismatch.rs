use nn_core::prelude::*;

const HIDDEN: usize = 32;

network! {
    /// The last layer is `HIDDEN` = 32 wide, the network declares 16.
    pub struct Net: [8] -> [16] {
        fc1: Dense { units: HIDDEN },
    }
}

fn main() {}
