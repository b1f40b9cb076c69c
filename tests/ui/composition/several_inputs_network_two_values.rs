//! A network with two inputs used as a layer of a graph is one layer: it is given one
//! value (`concat(a, b)`), not two.
use nn_core::prelude::*;

network! {
    pub struct Pair: ([2], [2]) -> [1] graph {
        input a, b;
        h = concat(a, b);
        y = fc(h): Dense { units: 1 };
        output y;
    }

    pub struct Outer: ([2], [2]) -> [1] graph {
        input a, b;
        y = p(a, b): Pair;
        output y;
    }
}

fn main() {
    let _ = Model::<Outer>::new(0);
}
