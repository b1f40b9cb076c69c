use nn_core::prelude::*;

network! {
    /// The names before `=` are value names (or `_`).
    pub struct Literal: [10, 4] -> [8] graph {
        input x;
        (y, 2) = gru(x): Gru { units: 8 };
        output y;
    }
}

network! {
    /// The names are followed by `=`.
    pub struct NoEquals: [10, 4] -> [8] graph {
        input x;
        (y, h) gru(x): Gru { units: 8 };
        output y;
    }
}

network! {
    /// A GRU's final state needs a name after the output.
    pub struct OneName: [10, 4] -> [8] graph {
        input x;
        (y) = gru(x): Gru { units: 8 };
        output y;
    }
}

network! {
    /// At least one name.
    pub struct NoNames: [10, 4] -> [8] graph {
        input x;
        () = gru(x): Gru { units: 8 };
        output y;
    }
}

fn main() {}
