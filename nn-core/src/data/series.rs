//! `Series`: an evenly spaced time series, its missing steps filled in, and the
//! sliding windows that turn it into a supervised data set.
use crate::train::{Dataset, DatasetError};

/// Values at evenly spaced times (weeks, years), with a record of which were measured.
///
/// **Missing values** are filled by linear interpolation between the nearest measured
/// values before and after them (the steps are evenly spaced, so this is a straight
/// line in time); before the first or after the last measured value, the nearest
/// measured value is repeated. [`Series::observed`] tells measured values from filled
/// ones, so that a forecast is scored on measurements only.
///
/// ```
/// use nn_core::data::Series;
/// let s = Series::interpolate(vec![1, 2, 3, 4, 5], &[None, Some(1.0), None, None, Some(4.0)]).unwrap();
/// assert_eq!(s.values(), [1.0, 1.0, 2.0, 3.0, 4.0]);
/// assert_eq!(s.missing(), 3);
///
/// // Windows of 3 values, each followed by the value one step ahead.
/// let d = s.windows(3, 1).unwrap();
/// assert_eq!(d.len(), 2);
/// assert_eq!((d.input(1), d.target(1)), (&[1.0, 2.0, 3.0][..], &[4.0][..]));
/// assert_eq!(Series::window_target(3, 1, 1), 4); // sample 1's target is step 4
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    times: Vec<u32>,
    values: Vec<f32>,
    observed: Vec<bool>,
}

impl Series {
    /// A series from times and values, `None` marking a missing value, which is filled
    /// in by linear interpolation (see the type's documentation). `None` if the lengths
    /// differ or no value is present.
    pub fn interpolate(times: Vec<u32>, values: &[Option<f32>]) -> Option<Series> {
        if times.len() != values.len() {
            return None;
        }
        let known: Vec<usize> = (0..values.len()).filter(|&i| values[i].is_some()).collect();
        let (&first, &last) = (known.first()?, known.last()?);
        let at = |i: usize| values[i].unwrap_or(0.0);
        let mut filled = Vec::with_capacity(values.len());
        filled.extend(core::iter::repeat_n(at(first), first));
        for pair in known.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            let (va, vb) = (at(a), at(b));
            for i in a..b {
                let share = (i - a) as f32 / (b - a) as f32;
                filled.push(va + (vb - va) * share);
            }
        }
        filled.extend(core::iter::repeat_n(at(last), values.len() - last));
        let observed = values.iter().map(Option::is_some).collect();
        Some(Series { times, values: filled, observed })
    }

    /// The number of steps.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the series has no steps.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The time of each step as written in the file (`YYYYMMDD` for a date, the year
    /// for yearly data).
    pub fn times(&self) -> &[u32] {
        &self.times
    }

    /// The values, missing ones filled in.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// Whether each value was measured (`false`: filled in).
    pub fn observed(&self) -> &[bool] {
        &self.observed
    }

    /// The number of filled-in values.
    pub fn missing(&self) -> usize {
        self.observed.iter().filter(|&&o| !o).count()
    }

    /// Sliding windows as a data set: sample `k` has the `window` values from step
    /// `k` as input and, as its one target, the value `horizon` steps after the last
    /// of them (step [`Series::window_target`]`(window, horizon, k)`). Samples are in
    /// time order, so a chronological split is a split of the sample indices.
    /// An error if `window` is zero; no samples if the series is too short.
    pub fn windows(&self, window: usize, horizon: usize) -> Result<Dataset, DatasetError> {
        let count = self.len().saturating_sub((window + horizon).saturating_sub(1));
        let count = if window == 0 { 0 } else { count };
        let mut inputs = Vec::with_capacity(count * window);
        let mut targets = Vec::with_capacity(count);
        for k in 0..count {
            inputs.extend_from_slice(&self.values[k..k + window]);
            targets.push(self.values[Self::window_target(window, horizon, k)]);
        }
        Dataset::new(inputs, window, targets, 1)
    }

    /// The step whose value is the target of window sample `k`:
    /// `k + window - 1 + horizon`.
    pub const fn window_target(window: usize, horizon: usize, k: usize) -> usize {
        k + window - 1 + horizon
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolation_fills_inner_gaps_linearly_and_edges_with_the_nearest_value() {
        let s = Series::interpolate(vec![0, 1, 2, 3, 4, 5, 6], &[None, Some(2.0), None, None, None, Some(6.0), None])
            .unwrap();
        assert_eq!(s.values(), [2.0, 2.0, 3.0, 4.0, 5.0, 6.0, 6.0]);
        assert_eq!(s.observed(), [false, true, false, false, false, true, false]);
        assert_eq!(s.missing(), 5);
    }

    #[test]
    fn interpolation_needs_one_value_and_matching_lengths() {
        assert!(Series::interpolate(vec![0, 1], &[None, None]).is_none());
        assert!(Series::interpolate(vec![0], &[Some(1.0), Some(2.0)]).is_none());
        assert!(Series::interpolate(vec![], &[]).is_none());
    }

    #[test]
    fn windows_pair_inputs_with_the_value_ahead() {
        let s = Series::interpolate((0..6).collect(), &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0].map(Some)).unwrap();
        let d = s.windows(2, 2).unwrap();
        assert_eq!(d.len(), 3);
        assert_eq!(d.inputs(), [0.0, 1.0, 1.0, 2.0, 2.0, 3.0]);
        assert_eq!(d.targets(), [3.0, 4.0, 5.0]);
        assert!(s.windows(0, 1).is_err());
        assert_eq!(s.windows(6, 1).unwrap().len(), 0);
    }
}
