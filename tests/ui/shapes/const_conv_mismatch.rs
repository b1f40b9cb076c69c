use nn_core::prelude::*;

const FILTERS: usize = 8;
const KERNEL: usize = 5;

network! {
    /// The last layer has `FILTERS` = 8 channels, the network declares 4.
    pub struct Filters: [1, 6, 6] -> [4, 4, 4] {
        conv: Conv2d { filters: FILTERS, kernel: 3 },
    }
}

network! {
    /// A `KERNEL` = 5 kernel over a 4x4 image: the layer's check fails when compiled.
    pub struct Kernel: [1, 4, 4] -> [16] {
        conv: Conv2d { filters: 1, kernel: KERNEL },
        flat: Flatten,
        head: Dense { units: 16 },
    }
}

network! {
    /// The assertion after a `const` size is checked by the type system.
    pub struct Asserted: [8] -> [2] {
        fc1: Dense { units: FILTERS } => [16],
        fc2: Dense { units: 2 },
    }
}

fn main() {
    let _ = Model::<Kernel>::new(0);
}
