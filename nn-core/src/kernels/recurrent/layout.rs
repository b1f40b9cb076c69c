//! The shapes of a recurrent stack: its configuration, where each layer's parameters
//! and each region of the cache lie, and the state slices of its entry points.

/// The recurrent cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellKind {
    /// Elman RNN with `tanh`.
    RnnTanh,
    /// Elman RNN with ReLU.
    RnnRelu,
    /// Long short-term memory.
    Lstm,
    /// Gated recurrent unit.
    Gru,
}

impl CellKind {
    /// Gates per hidden unit: 1, 4 or 3.
    pub const fn gates(self) -> usize {
        match self {
            CellKind::RnnTanh | CellKind::RnnRelu => 1,
            CellKind::Lstm => 4,
            CellKind::Gru => 3,
        }
    }
}

/// How the two directions of a bidirectional layer are combined into its output.
///
/// Between stacked layers the directions are always concatenated (PyTorch); the merge
/// mode applies to the output of the last layer only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Merge {
    /// `[forward, backward]`, width `2 H` (PyTorch's output).
    Concat,
    /// `forward + backward`, width `H`.
    Sum,
    /// `(forward + backward) / 2`, width `H`.
    Mean,
    /// `forward * backward`, width `H`.
    Multiply,
}

impl Merge {
    /// The merged width of two directions of `hidden` units.
    pub const fn width(self, hidden: usize) -> usize {
        match self {
            Merge::Concat => 2 * hidden,
            _ => hidden,
        }
    }
}

/// Parameters per sample of a stack: `G H (I + H + 2)` per layer and direction.
pub const fn params_len(gates: usize, features: usize, hidden: usize, layers: usize, directions: usize) -> usize {
    let gh = gates * hidden;
    let first = gh * (features + hidden + 2);
    let above = gh * (directions * hidden + hidden + 2);
    directions * (first + (layers - 1) * above)
}

/// Cache floats per sample: per layer its output sequence `[T, D H]`, and per layer and
/// direction the gate activations `[T, G H]`, the cell states (LSTM) or `q_n` (GRU)
/// `[T, H]`, and the initial `h` and `c`.
pub const fn cache_len(gates: usize, steps: usize, hidden: usize, layers: usize, directions: usize) -> usize {
    let l = Layout::per_sample(gates, steps, hidden, directions);
    layers * l.layer
}

/// Scratch floats per sample: the gradients of the gate inputs `[T, G H]` and of the
/// recurrent projections `[T, G H]`, two sequence buffers `[T, D H]`, the previous
/// hidden state of every step `[T, H]` and two state vectors `[H]`. Inference uses
/// less (two sequence buffers, two projections `[G H]` and two states).
pub const fn scratch_len(gates: usize, steps: usize, hidden: usize, directions: usize) -> usize {
    let gh = gates * hidden;
    2 * steps * gh + 2 * steps * directions * hidden + steps * hidden + 2 * hidden
}

/// The full description of a recurrent stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// The cell.
    pub cell: CellKind,
    /// Time steps `T`.
    pub steps: usize,
    /// Input features `F`.
    pub features: usize,
    /// Hidden units `H`.
    pub hidden: usize,
    /// Stacked layers `L`.
    pub layers: usize,
    /// Directions `D`: 1, or 2 for bidirectional.
    pub directions: usize,
    /// How the directions of the last layer are combined.
    pub merge: Merge,
    /// Output every step (`[T, O]`) or the final hidden states (`[O]`).
    pub return_sequences: bool,
    /// Backpropagate through at most this many steps (chunks of `truncate` steps, see
    /// [`backward`](super::backward)); 0 for the whole sequence.
    pub truncate: usize,
}

/// The four parameter tensors of one layer and direction.
pub(super) struct Weights<'a> {
    pub(super) ih: &'a [f32],
    pub(super) hh: &'a [f32],
    pub(super) b_ih: &'a [f32],
    pub(super) b_hh: &'a [f32],
}

impl Config {
    /// `G H`: the width of the gate vector.
    pub const fn gate_width(&self) -> usize {
        self.cell.gates() * self.hidden
    }

    /// The input width of layer `l`.
    pub const fn input_width(&self, layer: usize) -> usize {
        if layer == 0 {
            self.features
        } else {
            self.directions * self.hidden
        }
    }

    /// Parameters of one direction of layer `l`.
    pub const fn direction_params(&self, layer: usize) -> usize {
        self.gate_width() * (self.input_width(layer) + self.hidden + 2)
    }

    /// The offset of the parameters of layer `l`, direction `d`.
    pub const fn param_offset(&self, layer: usize, direction: usize) -> usize {
        let first = self.direction_params(0);
        if layer == 0 {
            direction * first
        } else {
            self.directions * first + ((layer - 1) * self.directions + direction) * self.direction_params(1)
        }
    }

    /// All parameters.
    pub const fn params(&self) -> usize {
        params_len(self.cell.gates(), self.features, self.hidden, self.layers, self.directions)
    }

    /// The width of one output step.
    pub const fn output_width(&self) -> usize {
        if self.directions == 1 {
            self.hidden
        } else {
            self.merge.width(self.hidden)
        }
    }

    /// Output floats per sample.
    pub const fn output_len(&self) -> usize {
        if self.return_sequences {
            self.steps * self.output_width()
        } else {
            self.output_width()
        }
    }

    /// State floats per sample (`h` or `c`): `L D H`.
    pub const fn state_len(&self) -> usize {
        self.layers * self.directions * self.hidden
    }

    /// Cache floats per sample.
    pub const fn cache_len(&self) -> usize {
        cache_len(self.cell.gates(), self.steps, self.hidden, self.layers, self.directions)
    }

    /// Scratch floats per sample.
    pub const fn scratch_len(&self) -> usize {
        scratch_len(self.cell.gates(), self.steps, self.hidden, self.directions)
    }

    pub(super) fn weights<'a>(&self, params: &'a [f32], layer: usize, direction: usize) -> Weights<'a> {
        let (gh, i, h) = (self.gate_width(), self.input_width(layer), self.hidden);
        let p = &params[self.param_offset(layer, direction)..][..self.direction_params(layer)];
        let (ih, p) = p.split_at(gh * i);
        let (hh, p) = p.split_at(gh * h);
        let (b_ih, b_hh) = p.split_at(gh);
        Weights { ih, hh, b_ih, b_hh }
    }

    /// The time index of processing step `s` in direction `d`.
    #[inline]
    pub(super) const fn time(&self, direction: usize, s: usize) -> usize {
        if direction == 0 {
            s
        } else {
            self.steps - 1 - s
        }
    }
}

/// Region sizes of the cache, per sample.
#[derive(Clone, Copy)]
pub(super) struct Layout {
    /// One layer's output sequence `[T, D H]`.
    pub(super) out: usize,
    /// Gate activations `[T, G H]`.
    pub(super) gates: usize,
    /// Cell states (LSTM) or `q_n` (GRU) `[T, H]`; empty for RNN.
    pub(super) extra: usize,
    /// Initial `h` and `c`: `[2 H]`.
    pub(super) init: usize,
    /// One direction: `gates + extra + init`.
    pub(super) dir: usize,
    /// One layer: `out + D dir`.
    pub(super) layer: usize,
}

impl Layout {
    const fn per_sample(gates: usize, steps: usize, hidden: usize, directions: usize) -> Self {
        let out = steps * directions * hidden;
        let g = steps * gates * hidden;
        let extra = if gates > 1 { steps * hidden } else { 0 };
        let init = 2 * hidden;
        let dir = g + extra + init;
        Layout { out, gates: g, extra, init, dir, layer: out + directions * dir }
    }

    /// The layout of `cfg`.
    ///
    /// # Panics
    /// If a region of one sample has more floats than a `usize` counts.
    pub(super) fn of(cfg: &Config) -> Self {
        // `layer` is the largest region and every other is a part of it: computed with
        // checks, it bounds the unchecked products of `per_sample`.
        let (gates, steps, hidden, directions) = (cfg.cell.gates(), cfg.steps, cfg.hidden, cfg.directions);
        let layer = (|| {
            let out = steps.checked_mul(directions)?.checked_mul(hidden)?;
            let dir = steps.checked_mul(gates + 1)?.checked_add(2)?.checked_mul(hidden)?;
            out.checked_add(directions.checked_mul(dir)?)
        })();
        assert!(layer.is_some(), "recurrent {cfg:?}: a sample's cache has more floats than a usize counts");
        Self::per_sample(gates, steps, hidden, directions)
    }

    /// Every region of a batch of `b` samples (the cache holds `b` times each).
    ///
    /// # Panics
    /// If a region has more floats than a `usize` counts.
    pub(super) fn times(self, b: usize) -> Self {
        // `layer` is at least every other region (`directions >= 1`).
        assert!(
            b.checked_mul(self.layer).is_some() && b.checked_mul(self.out).is_some(),
            "recurrent: a batch of {b} has more floats than a usize counts"
        );
        Layout {
            out: b * self.out,
            gates: b * self.gates,
            extra: b * self.extra,
            init: b * self.init,
            dir: b * self.dir,
            layer: b * self.layer,
        }
    }
}

/// Initial states: `h` (and `c`, LSTM only), each `[B, L D, H]`.
#[derive(Clone, Copy, Debug)]
pub struct States<'a> {
    /// Hidden states.
    pub h: &'a [f32],
    /// Cell states (LSTM; ignored by other cells, may be empty).
    pub c: &'a [f32],
}

/// Final states or gradients of initial states: `h` (and `c`, LSTM only), each
/// `[B, L D, H]`.
#[derive(Debug)]
pub struct StatesMut<'a> {
    /// Hidden states.
    pub h: &'a mut [f32],
    /// Cell states (LSTM; untouched for other cells, may be empty).
    pub c: &'a mut [f32],
}

/// Checks slice lengths against the configuration; returns the batch size.
pub(super) fn batch_of(cfg: &Config, x: &[f32], y: &[f32]) -> usize {
    assert!(
        cfg.steps > 0 && cfg.hidden > 0 && cfg.layers > 0 && (cfg.directions == 1 || cfg.directions == 2),
        "recurrent: empty configuration"
    );
    let Some(per) = cfg.steps.checked_mul(cfg.features).filter(|&per| per > 0) else {
        panic!("recurrent {cfg:?}: a sample is empty or has more floats than a usize counts");
    };
    let batch = x.len() / per;
    // Checked first: every per-sample product (and so `output_len`) fits.
    let _ = Layout::of(cfg).times(batch);
    let out = batch.checked_mul(cfg.output_len());
    assert!(out.is_some_and(|len| y.len() >= len), "recurrent: output slice too short");
    batch
}
