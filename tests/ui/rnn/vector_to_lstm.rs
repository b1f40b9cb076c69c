use nn_core::prelude::*;

network! {
    pub struct Forecaster: [8] -> [1] {
        lstm: Lstm { units: 16 },
        out: Dense { units: 1 },
    }
}

fn main() {}
