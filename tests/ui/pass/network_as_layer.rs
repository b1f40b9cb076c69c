//! Networks used as layers: first, in the middle, last, and followed by layers whose
//! shapes the macro only knows as types.
#![deny(warnings, missing_docs)]
use nn_core::prelude::*;

mod towers {
    use nn_core::prelude::*;

    network! {
        pub struct Tower: [16] -> [8] {
            fc: Dense { units: 8, activation: Tanh },
        }
    }
}

network! {
    /// 4 -> 16.
    pub struct Stem: [4] -> [16] {
        fc: Dense { units: 16, activation: Relu },
    }

    /// The stem, a tower, then a head.
    pub struct Net: [4] -> [3] {
        stem: Stem => [16],
        act: Gelu,
        drop: Dropout { rate: 0.1 },
        tower: towers::Tower,
        gate: Sigmoid => [8],
        head: Dense { units: 3 },
    }

    /// Networks all the way down.
    pub struct Outer: [4] -> [8] {
        net: self::Stem,
        tower: towers::Tower,
    }
}

fn main() {
    assert_eq!(Net::PARAMS, Stem::PARAMS + towers::Tower::PARAMS + 8 * 3 + 3);
    let model = Model::<Net>::new(1);
    let y = model.predict_one(&[0.1, 0.2, 0.3, 0.4].into());
    assert!(y.iter().all(|v| v.is_finite()));

    let mut names = Vec::new();
    model.visit_tensors(&mut |t| names.push(t.path.to_string()));
    assert_eq!(
        names,
        ["stem.fc.weight", "stem.fc.bias", "tower.fc.weight", "tower.fc.bias", "head.weight", "head.bias"]
    );

    // `Outer` is `Stem` then `Tower`: the same numbers as running them in turn.
    let outer = Model::<Outer>::new(2);
    let (p_stem, p_tower) = outer.params().split_at(Stem::PARAMS);
    let stem = Model::<Stem>::from_state(Stem, p_stem.to_vec()).unwrap();
    let tower = Model::<towers::Tower>::from_state(towers::Tower, p_tower.to_vec()).unwrap();
    let x = [0.5, -1.0, 2.0, 0.0].into();
    assert_eq!(outer.predict_one(&x), tower.predict_one(&stem.predict_one(&x)));
}
