//! Helpers shared by the tutorial examples and the integration tests: where the
//! bundled data sets are, a stopwatch, a model's tensors by name, and the one-line
//! JSON report every example ends with.
//!
//! ```
//! use nn_examples::{data_file, JsonObject};
//! assert!(data_file("iris.csv").is_file());
//! let line = JsonObject::new()
//!     .string("example", "demo")
//!     .number("test_accuracy", 0.97222222)
//!     .object("baseline", JsonObject::new().number("mae", 1.5));
//! assert_eq!(line.to_string(), r#"{"example":"demo","test_accuracy":0.972222,"baseline":{"mae":1.5}}"#);
//! ```
use std::fmt;
use std::path::PathBuf;
use std::time::Instant;

/// The path of a bundled data file (`examples/data/<name>`), independent of the
/// working directory: examples and tests run from anywhere.
pub fn data_file(name: &str) -> PathBuf {
    [env!("CARGO_MANIFEST_DIR"), "examples", "data", name].iter().collect()
}

/// Runs `f` and returns its result with the wall-clock seconds it took.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let start = Instant::now();
    let value = f();
    (value, start.elapsed().as_secs_f64())
}

/// The tensor `name` of `model` (`fc1.weight`, or a buffer such as
/// `bn1.running_mean`): its shape (PyTorch's layout) and its values.
pub fn model_tensor<'a, L: nn_core::Network>(
    model: &'a nn_core::Model<L>,
    name: &str,
) -> Result<(Vec<usize>, &'a [f32]), String> {
    let mut found = None;
    model.visit_tensors(&mut |t| {
        if t.path.to_string() == name {
            found = Some((t.shape.to_vec(), t.offset, t.len, t.trainable));
        }
    });
    let (shape, offset, len, trainable) = found.ok_or_else(|| format!("the model has no tensor `{name}`"))?;
    let values = if trainable { model.params() } else { model.buffers() };
    Ok((shape, &values[offset..offset + len]))
}

/// Decimal places kept for numbers in a report: enough for metrics, short to read.
const DECIMALS: i32 = 6;

/// A JSON object written field by field, for the one-line report an example prints
/// last (no JSON dependency). Numbers are rounded to 6 decimal places; NaN and
/// infinities become `null`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JsonObject {
    text: String,
}

impl JsonObject {
    /// An empty object.
    pub fn new() -> Self {
        JsonObject::default()
    }

    fn key(mut self, key: &str) -> Self {
        if !self.text.is_empty() {
            self.text.push(',');
        }
        push_string(&mut self.text, key);
        self.text.push(':');
        self
    }

    /// Adds a string field.
    pub fn string(self, key: &str, value: &str) -> Self {
        let mut s = self.key(key);
        push_string(&mut s.text, value);
        s
    }

    /// Adds a number field.
    pub fn number(self, key: &str, value: f64) -> Self {
        let mut s = self.key(key);
        if value.is_finite() {
            let scale = 10f64.powi(DECIMALS);
            // Adding 0.0 turns a rounded -0.0 into 0.0; huge values need no rounding.
            let scaled = value * scale;
            let rounded = if scaled.abs() < 1e15 { scaled.round() / scale + 0.0 } else { value };
            // `{:?}` keeps a decimal point (`1.0`) and never loses digits.
            s.text.push_str(&format!("{rounded:?}"));
        } else {
            s.text.push_str("null");
        }
        s
    }

    /// Adds a number field with all its digits, unrounded: for small figures such as
    /// numerical errors (`3.8e-6`), which 6 decimal places would hide. NaN and
    /// infinities become `null`.
    pub fn exact_number(self, key: &str, value: f64) -> Self {
        let mut s = self.key(key);
        if value.is_finite() {
            s.text.push_str(&format!("{value:?}"));
        } else {
            s.text.push_str("null");
        }
        s
    }

    /// Adds an integer field.
    pub fn integer(self, key: &str, value: i64) -> Self {
        let mut s = self.key(key);
        s.text.push_str(&value.to_string());
        s
    }

    /// Adds a nested object.
    pub fn object(self, key: &str, value: JsonObject) -> Self {
        let mut s = self.key(key);
        s.text.push_str(&value.to_string());
        s
    }
}

impl fmt::Display for JsonObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{}}}", self.text)
    }
}

/// Appends `value` as a quoted JSON string.
fn push_string(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escapes_strings_and_writes_numbers_as_json() {
        let line = JsonObject::new()
            .string("say \"hi\"", "a\\b\n\u{1}")
            .number("one", 1.0)
            .number("nan", f64::NAN)
            .number("small", -0.0000004)
            .number("huge", 1.5e300)
            .exact_number("error", 3.814697265625e-6)
            .exact_number("inf", f64::INFINITY)
            .integer("epochs", 30);
        assert_eq!(
            line.to_string(),
            r#"{"say \"hi\"":"a\\b\n\u0001","one":1.0,"nan":null,"small":0.0,"huge":1.5e300,"error":3.814697265625e-6,"inf":null,"epochs":30}"#
        );
        assert_eq!(JsonObject::new().to_string(), "{}");
    }
}
