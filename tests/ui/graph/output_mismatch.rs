use nn_core::prelude::*;

network! {
    pub struct Net: [8] -> [3] graph {
        input x;
        h = fc(x): Dense { units: 4 };
        output h;
    }
}

fn main() {}
