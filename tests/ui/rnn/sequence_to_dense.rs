use nn_core::prelude::*;

network! {
    pub struct Classifier: [20, 8] -> [3] {
        lstm: Lstm { units: 16, return_sequences: true },
        logits: Dense { units: 3 },
    }
}

fn main() {}
