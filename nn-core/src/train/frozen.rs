//! Frozen parameters: the one mechanism by which a training run keeps tensors fixed.
use alloc::vec::Vec;
use core::ops::Range;

use super::regularize::Select;
use crate::layer::{Frozen, Layer};

/// The parameters a training run keeps bit for bit (`Fit::freeze`): their gradients
/// are not computed where a layer can skip them (the `frozen` of [`crate::layer::BackwardCtx`] through
/// [`FrozenParams::view`]), are zero when clipping and the optimizer see them, and
/// their values are put back after the optimizer step, which weight decay or momentum
/// would otherwise move.
pub(crate) struct FrozenParams {
    ranges: Vec<Range<usize>>,
    saved: Vec<f32>,
}

impl FrozenParams {
    /// The parameters of the tensors `selects` choose in `layer`.
    pub(crate) fn new<L: Layer>(selects: &[Select], layer: &L) -> Self {
        let ranges: Vec<_> = selects.iter().flat_map(|s| s.ranges(layer)).map(|(r, _)| r).collect();
        let saved = Vec::with_capacity(ranges.iter().map(|r| r.len()).sum());
        FrozenParams { ranges, saved }
    }

    /// The frozen set as a layer's backward sees it.
    pub(crate) fn view(&self) -> Frozen<'_> {
        Frozen::new(&self.ranges)
    }

    /// Before clipping and the optimizer step: zeroes the frozen gradients and keeps
    /// the frozen values.
    pub(crate) fn hold(&mut self, params: &[f32], grads: &mut [f32]) {
        self.saved.clear();
        for r in &self.ranges {
            grads[r.clone()].fill(0.0);
            self.saved.extend_from_slice(&params[r.clone()]);
        }
    }

    /// After the optimizer step: puts the kept values back.
    pub(crate) fn restore(&self, params: &mut [f32]) {
        let mut at = 0;
        for r in &self.ranges {
            params[r.clone()].copy_from_slice(&self.saved[at..at + r.len()]);
            at += r.len();
        }
    }
}
