use nn_core::prelude::*;

network! {
    pub struct Encoder: [8] -> [4] {
        fc: Dense { units: 4 },
    }
}

network! {
    pub struct SharedOpaque: [8] -> [4] graph {
        input x;
        e = enc(x): Encoder;
        f = enc(e);
        output f;
    }

    pub struct AssertedOpaque: [8] -> [5] graph {
        input x;
        e = enc(x): Encoder => [5];
        output e;
    }

    pub struct OutputOpaque: [8] -> [6] graph {
        input x;
        e = enc(x): Encoder;
        output e;
    }
}

fn main() {}
