use nn_core::prelude::*;

network! {
    pub struct TwoInputStatements: [8] -> [8] graph {
        input x;
        input y;
        h = fc(x): Dense { units: 8 };
        output h;
    }

    pub struct NoInput: [8] -> [8] graph {
        output h;
    }

    pub struct NoOutput: [8] -> [8] graph {
        input x;
        h = fc(x): Dense { units: 8 };
    }

    pub struct InputCount: [8] -> [8] graph {
        input x, y;
        h = fc(x): Dense { units: 8 };
        output h;
    }

    pub struct OutputCount: [8] -> ([8], [8]) graph {
        input x;
        h = fc(x): Dense { units: 8 };
        output h;
    }

    pub struct OutputTwice: [8] -> ([8], [8]) graph {
        input x;
        h = fc(x): Dense { units: 8 };
        output h, h;
    }

    pub struct DefinedTwice: [8] -> [8] graph {
        input x;
        h = fc1(x): Dense { units: 8 };
        h = fc2(h): Dense { units: 8 };
        output h;
    }
}

fn main() {}
