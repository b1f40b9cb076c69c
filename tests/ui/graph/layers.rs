use nn_core::prelude::*;

network! {
    pub struct TwoValues: [8] -> [8] graph {
        input x;
        h = fc(x, x): Dense { units: 8 };
        output h;
    }

    pub struct NotDeclared: [8] -> [8] graph {
        input x;
        h = fc(x);
        output h;
    }

    pub struct TiedNotDense: [8] -> [8] graph {
        input x;
        h = enc(x): Dense { units: 4 };
        y = dec(h): Relu { tied: enc };
        output y;
    }

    pub struct TiedToConv: [1, 4, 4] -> [16] graph {
        input x;
        c = conv(x): Conv2d { filters: 1, kernel: 1 };
        f = flat(c): Flatten;
        y = dec(f): Dense { tied: conv };
        output y;
    }

    pub struct TiedUnits: [8] -> [8] graph {
        input x;
        h = enc(x): Dense { units: 4 };
        y = dec(h): Dense { units: 6, tied: enc };
        output y;
    }

    pub struct TiedInput: [8] -> [8] graph {
        input x;
        h = enc(x): Dense { units: 4 };
        y = dec(x): Dense { tied: enc };
        output y;
    }

    pub struct TiedValue: [8] -> [8] graph {
        input x;
        h = enc(x): Dense { units: 4 };
        y = dec(h): Dense { tied: 3 };
        output y;
    }
}

fn main() {}
