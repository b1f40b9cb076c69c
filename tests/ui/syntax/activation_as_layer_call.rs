use nn_core::prelude::*;

network! {
    /// Only a kind with one option takes its value in parentheses.
    pub struct Net: [8] -> [4] {
        fc: Dense(4),
    }
}

network! {
    pub struct Two: [8] -> [8] {
        act: LeakyRelu(0.1, 0.2),
    }
}

fn main() {}
