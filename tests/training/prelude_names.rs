//! A model file's own `Mode`, `Metric`, `Schedule` or `Select` coexists with
//! `use nn_core::prelude::*;`: the prelude holds what a model file needs, not the
//! training settings with generic names. The user's names are glob-imported too
//! (`use super::*`), the case where two globs exporting one name would be E0659.

/// The user's own names, as an application might define them.
mod app {
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Mode {
        Train,
        Serve,
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Metric {
        pub id: u32,
    }

    pub struct Schedule(pub u8);

    pub enum Select {
        First,
    }
}

mod model_file {
    use super::app::*;
    use nn_core::prelude::*;

    network! {
        pub struct Net: [2] -> [1] { out: Dense { units: 1 } }
    }

    /// Uses both the user's names and the prelude's.
    pub fn run(mode: Mode) -> (Mode, Metric, usize, u8, bool) {
        let model = Model::<Net>::new(1);
        let y = model.predict(&[1.0, 2.0]).unwrap();
        let first = matches!(Select::First, Select::First);
        (mode, Metric { id: 7 }, y.len(), Schedule(3).0, first)
    }
}

#[test]
fn own_mode_and_metric_coexist_with_the_prelude() {
    let (mode, metric, outputs, schedule, first) = model_file::run(app::Mode::Serve);
    assert_eq!(mode, app::Mode::Serve);
    assert_ne!(mode, app::Mode::Train);
    assert_eq!(metric, app::Metric { id: 7 });
    assert_eq!((outputs, schedule, first), (1, 3, true));
}
