//! Data sets and loaders (needs `std`).
//!
//! | item | gives |
//! |---|---|
//! | [`CsvReader`] | a [`Table`] of rows from a CSV file, plain or gzip-compressed |
//! | [`Table::numbers`] | the raw values, row after row |
//! | [`Table::classification`], [`Table::regression`] | a [`Dataset`](crate::train::Dataset) |
//! | [`digits`], [`iris`] | the bundled classification sets as a `Dataset` |
//! | [`co2`], [`sunspots`] | the bundled time series as a [`Series`] |
//! | [`Series::windows`] | sliding windows of a series as a `Dataset` for forecasting |
//! | [`words`] | the bundled word list, one lowercase word per line |
//!
//! No input makes a loader panic: everything wrong with a file is a [`DataError`]
//! naming the file, the 1-based line and column, and what was found. Memory follows
//! the data read: the loaders check each row as it is read, and a file holding more
//! than 64 MiB of text (after decompression) is an error, [`DataErrorKind::TooLarge`]
//! (set another limit with [`CsvReader::limit`]):
//!
//! ```
//! use nn_core::data::CsvReader;
//! let table = CsvReader::new().read_bytes("digits.csv", b"0,16,3\n0,16,12\n").unwrap();
//! let err = table.classification(2, 10).unwrap_err();
//! assert_eq!(err.to_string(), "digits.csv: line 2, column 3: label `12` is not a class index from 0 to 9");
//! ```
mod csv;
mod error;
mod series;
mod sets;

pub use csv::{CsvReader, Row, Table, DEFAULT_LIMIT};
pub use error::{DataError, DataErrorKind};
pub use series::Series;
pub use sets::words;
pub use sets::{co2, digits, iris, sunspots, DIGIT_CLASSES, DIGIT_PIXELS, IRIS_CLASSES};
