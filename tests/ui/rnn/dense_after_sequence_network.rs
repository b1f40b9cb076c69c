use nn_core::prelude::*;

network! {
    /// A sequence-to-sequence encoder.
    pub struct Encoder: [6, 3] -> [6, 5] {
        lstm: Lstm { units: 5, return_sequences: true },
    }

    pub struct Head: [6, 3] -> [2] {
        encoder: Encoder,
        fc: Dense { units: 2 },
    }
}

fn main() {}
