use nn_core::prelude::*;

network! {
    pub struct Stacked: [12, 4] -> [12, 8] {
        encoder: Gru { units: 16 },
        decoder: Gru { units: 8, return_sequences: true },
    }
}

fn main() {}
