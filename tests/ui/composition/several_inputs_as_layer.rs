use nn_core::prelude::*;

network! {
    /// Two inputs: not a layer.
    pub struct Pair: ([4], [4]) -> [4] graph {
        input a, b;
        d = subtract(a, b);
        out = fc(d): Dense { units: 4 };
        output out;
    }

    pub struct Uses: [4] -> [4] {
        pair: Pair,
        act: Relu,
    }

    pub struct InGraph: [4] -> [4] graph {
        input x;
        y = pair(x): Pair;
        output y;
    }
}

fn main() {}
