use nn_core::prelude::*;

network! {
    /// Statements belong to the graph form, which is `graph { .. }`.
    pub struct Net: [8] -> [4] {
        input x;
        h = fc(x): Dense { units: 4 };
        output h;
    }
}

fn main() {}
