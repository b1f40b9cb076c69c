use nn_core::prelude::*;

network! {
    /// Summarises a sequence into one vector.
    pub struct Summary: [6, 3] -> [5] {
        gru: Gru { units: 5 },
    }

    pub struct Twice: [6, 3] -> [4] {
        summary: Summary,
        again: Gru { units: 4 },
    }
}

fn main() {}
