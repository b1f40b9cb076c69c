use nn_core::prelude::*;

const UNITS: usize = 8;

network! {
    /// With `units: UNITS` the state's shape is a type: `Shape2<1, 8>`, given [1, 6].
    pub struct Net: ([10, 4], [1, 6]) -> [8] graph {
        input x, h0;
        y = gru(x, h0): Gru { units: UNITS };
        output y;
    }
}

fn main() {}
