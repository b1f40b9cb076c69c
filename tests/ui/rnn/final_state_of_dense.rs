use nn_core::prelude::*;

network! {
    /// Only a recurrent layer returns a final state.
    pub struct Net: [4] -> [8] graph {
        input x;
        (y, h) = fc(x): Dense { units: 8 };
        z = add(y, h);
        output z;
    }
}

fn main() {}
