use nn_core::prelude::*;

network! {
    pub struct Net: [10, 3] -> [4] {
        rnn: SimpleRnn { units: 4, activation: Sigmoid },
    }
}

fn main() {}
