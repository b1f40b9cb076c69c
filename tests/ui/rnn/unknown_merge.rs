use nn_core::prelude::*;

network! {
    pub struct Net: [10, 3] -> [8] {
        rnn: Lstm { units: 4, bidirectional: true, merge: Sums },
    }
}

fn main() {}
