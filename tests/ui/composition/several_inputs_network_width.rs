//! A network with two inputs used as a layer takes their concatenation (`[2 + 2]`):
//! a layer before it of another width is one error at the layer.
use nn_core::prelude::*;

network! {
    pub struct Pair: ([2], [2]) -> [1] graph {
        input a, b;
        h = concat(a, b);
        y = fc(h): Dense { units: 1 };
        output y;
    }

    pub struct Outer: [3] -> [1] {
        fc: Dense { units: 3 },
        pair: Pair,
    }
}

fn main() {
    let _ = Model::<Outer>::new(0);
}
