use nn_core::prelude::*;

network! {
    pub struct Net: ([16], [16]) -> [4] graph {
        input a, b;
        h = fc(a): Dense { units: 4 };
        output h;
    }
}

fn main() {}
