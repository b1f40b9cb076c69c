use nn_core::prelude::*;

network! {
    /// `merge` combines two directions; one direction has nothing to merge.
    pub struct Net: [10, 3] -> [16] {
        rnn: Gru { units: 16, merge: Sum },
    }
}

network! {
    pub struct Explicit: [10, 3] -> [16] {
        rnn: Lstm { units: 16, bidirectional: false, merge: Mean },
    }
}

fn main() {}
