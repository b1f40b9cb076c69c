use nn_core::prelude::*;

network! {
    /// A value in parentheses has no name; `LeakyRelu { alpha: 0.1 }` names it.
    pub struct Layer: [8] -> [8] {
        act: LeakyRelu(alpha: 0.1),
    }
}

network! {
    pub struct InOption: [8] -> [4] {
        fc: Dense { units: 4, activation: Elu(alpha: 0.5) },
    }
}

fn main() {}
