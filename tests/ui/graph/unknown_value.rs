use nn_core::prelude::*;

network! {
    pub struct Net: [8] -> [8] graph {
        input input_x;
        h = fc1(inputx): Dense { units: 8 };
        output h;
    }
}

fn main() {}
