use nn_core::prelude::*;

network! {
    /// Two concatenated directions of 16 units are 32 wide.
    pub struct Net: [10, 3] -> [16] {
        rnn: Gru { units: 16, bidirectional: true },
    }
}

fn main() {}
