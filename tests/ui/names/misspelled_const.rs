use nn_core::prelude::*;

const HIDDEN: usize = 16;

network! {
    /// A size from a `const` item that is not there: rustc names the close one.
    pub struct Net: [8] -> [16] {
        fc1: Dense { units: HIDEN },
    }
}

fn main() {}
