use nn_core::prelude::*;

network! {
    pub struct ThreeValues: [8] -> [8] graph {
        input x;
        a = fa(x): Dense { units: 8 };
        b = fb(x): Dense { units: 8 };
        d = subtract(x, a, b);
        output d;
    }

    pub struct Mismatch: [8] -> [8] graph {
        input x;
        a = fa(x): Dense { units: 4 };
        d = subtract(x, a);
        output d;
    }
}

fn main() {}
