use nn_core::prelude::*;

network! {
    pub struct Net: [8] -> [8] graph {
        input x;
        a = fc(x): Dense { units: 8 };
        b = fc(a): Dense { units: 8 };
        output b;
    }
}

fn main() {}
