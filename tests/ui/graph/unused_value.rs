use nn_core::prelude::*;

network! {
    pub struct Net: [16] -> [4] graph {
        input x;
        output x;
    }
}

network! {
    pub struct Unused: [16] -> [4] graph {
        input x;
        h = fc(x): Dense { units: 4 };
        k = extra(x): Dense { units: 4 };
        output h;
    }
}

fn main() {}
