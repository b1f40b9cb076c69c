use nn_core::prelude::*;

network! {
    /// A merge gives one value.
    pub struct Net: ([8], [8]) -> [8] graph {
        input a, b;
        (s, t) = add(a, b);
        z = multiply(s, t);
        output z;
    }
}

fn main() {}
