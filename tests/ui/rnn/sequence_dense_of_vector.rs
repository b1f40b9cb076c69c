use nn_core::prelude::*;

network! {
    pub struct Net: [16] -> [16, 4] {
        per_step: SequenceDense { units: 4 },
    }
}

fn main() {}
