use nn_core::prelude::*;

network! {
    pub struct MissingEquals: [8] -> [8] graph {
        input x;
        h fc(x): Dense { units: 8 };
        output h;
    }

    pub struct MissingSemicolon: [8] -> [8] graph {
        input x;
        h = fc(x): Dense { units: 8 }
        output h;
    }

    pub struct MissingCall: [8] -> [8] graph {
        input x;
        h = fc;
        output h;
    }
}

fn main() {}
