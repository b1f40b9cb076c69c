use nn_core::prelude::*;

network! {
    pub struct Net: [8] -> [8] graph {
        input x;
        a = add(x, c);
        b = fc1(a): Dense { units: 8 };
        c = fc2(b): Dense { units: 8 };
        output c;
    }
}

fn main() {}
