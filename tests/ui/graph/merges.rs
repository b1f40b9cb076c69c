use nn_core::prelude::*;

network! {
    pub struct OneValue: [8] -> [8] graph {
        input x;
        h = add(x);
        output h;
    }

    pub struct AxisOutOfRange: [8] -> [16] graph {
        input x;
        h = fc(x): Dense { units: 8 };
        c = concat(x, h, axis: 1);
        output c;
    }

    pub struct ConcatOfTypeOnly: [8] -> [12] graph {
        input x;
        e = enc(x): Encoder;
        c = concat(x, e);
        output c;
    }

    pub struct AxisOnLayer: [8] -> [8] graph {
        input x;
        h = fc(x, axis: 0): Dense { units: 8 };
        output h;
    }

    pub struct MergeAsLayer: [8] -> [8] graph {
        input x;
        h = add(x): Dense { units: 8 };
        output h;
    }
}

network! {
    pub struct Encoder: [8] -> [4] {
        fc: Dense { units: 4 },
    }
}

fn main() {}
