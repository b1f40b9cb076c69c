//! `DataError`: what went wrong reading a data file, and where.
use std::fmt;
use std::path::{Path, PathBuf};

use crate::train::DatasetError;

/// A data file that could not be read or does not hold what the loader expects.
///
/// It names the file, the 1-based line and the 1-based column (the field number, not
/// the character), when they are known, and says what was wrong:
///
/// ```text
/// examples/data/digits.csv.gz: line 3, column 65: label `10` is not a class index from 0 to 9
/// ```
#[derive(Debug)]
pub struct DataError {
    /// The file read.
    pub file: PathBuf,
    /// The 1-based line of the file (of the decompressed text for a gzip file).
    pub line: Option<usize>,
    /// The 1-based column: the number of the comma-separated field.
    pub column: Option<usize>,
    /// What was wrong.
    pub kind: DataErrorKind,
}

/// What was wrong with a data file.
#[derive(Debug)]
#[non_exhaustive]
pub enum DataErrorKind {
    /// The file could not be read.
    Io(std::io::Error),
    /// The gzip data is corrupt or truncated (the line is the first one that could not
    /// be decompressed).
    Gzip(std::io::Error),
    /// A line is not valid UTF-8.
    NotUtf8,
    /// The file holds no data rows (it is empty, or holds only a header).
    Empty,
    /// A field that should hold a finite number does not.
    NotANumber {
        /// The field's text (shortened if long).
        found: String,
    },
    /// A field that should hold a value is empty.
    MissingValue,
    /// A field is not of the expected form (a date, a year).
    Invalid {
        /// What the field should hold.
        expected: &'static str,
        /// The field's text (shortened if long).
        found: String,
    },
    /// A row has the wrong number of fields.
    ColumnCount {
        /// Fields the loader expects.
        expected: usize,
        /// Fields the row has.
        found: usize,
    },
    /// A class label that is not an integer in `0..classes`.
    LabelOutOfRange {
        /// The field's text (shortened if long).
        found: String,
        /// The number of classes.
        classes: usize,
    },
    /// A quoted field whose closing quote is missing.
    UnterminatedQuote,
    /// The header line is not the one the loader expects.
    Header {
        /// The expected header (or its form).
        expected: String,
        /// The header found (shortened if long).
        found: String,
    },
    /// The header announces a number of rows the file does not have.
    RowCount {
        /// Rows announced.
        expected: usize,
        /// Rows found.
        found: usize,
    },
    /// A time step that does not follow the previous row's by the series' step.
    Step {
        /// The previous row's time.
        previous: u32,
        /// This row's time.
        found: u32,
        /// The step between rows (`"7 days"`, `"1 year"`).
        step: &'static str,
    },
    /// The values read do not form a data set (a sample width of zero).
    Dataset(DatasetError),
    /// The file holds more text than the reader accepts (see
    /// [`CsvReader::limit`](super::CsvReader::limit)); the line is where the limit was
    /// passed.
    TooLarge {
        /// The reader's limit in bytes of text (after decompression).
        limit: u32,
    },
}

impl DataError {
    /// An error in `file` at the given 1-based line and column.
    pub fn new(file: &Path, line: Option<usize>, column: Option<usize>, kind: DataErrorKind) -> Self {
        DataError { file: file.to_path_buf(), line, column, kind }
    }
}

/// At most this many characters of a field are quoted in a message.
const QUOTED_CHARS: usize = 40;

/// `text`, cut to [`QUOTED_CHARS`] characters with an ellipsis.
pub(crate) fn shorten(text: &str) -> String {
    match text.char_indices().nth(QUOTED_CHARS) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_string(),
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, ": line {l}, column {c}")?,
            (Some(l), None) => write!(f, ": line {l}")?,
            (None, Some(c)) => write!(f, ": column {c}")?,
            (None, None) => {}
        }
        write!(f, ": {}", self.kind)
    }
}

impl fmt::Display for DataErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataErrorKind::Io(e) => write!(f, "cannot read the file: {e}"),
            DataErrorKind::Gzip(e) => write!(f, "the gzip data is corrupt or truncated: {e}"),
            DataErrorKind::NotUtf8 => f.write_str("the line is not valid UTF-8 text"),
            DataErrorKind::Empty => f.write_str("the file has no data rows"),
            DataErrorKind::NotANumber { found } => {
                write!(f, "expected a finite number, found `{found}`")
            }
            DataErrorKind::MissingValue => f.write_str("expected a number, found an empty field"),
            DataErrorKind::Invalid { expected, found } => {
                write!(f, "expected {expected}, found `{found}`")
            }
            DataErrorKind::ColumnCount { expected, found } => {
                write!(f, "expected {expected} columns, found {found}")
            }
            DataErrorKind::LabelOutOfRange { found, classes } => {
                write!(f, "label `{found}` is not a class index from 0 to {}", classes.saturating_sub(1))
            }
            DataErrorKind::UnterminatedQuote => f.write_str("a quoted field has no closing quote"),
            DataErrorKind::Header { expected, found } => {
                write!(f, "expected the header `{expected}`, found `{found}`")
            }
            DataErrorKind::RowCount { expected, found } => {
                write!(f, "the header announces {expected} rows, the file has {found}")
            }
            DataErrorKind::Dataset(e) => write!(f, "the values do not form a data set: {e}"),
            DataErrorKind::TooLarge { limit } => {
                write!(f, "the file holds more than {limit} bytes of text (the reader's limit)")
            }
            DataErrorKind::Step { previous, found, step } => write!(
                f,
                "`{found}` is not {step} after the previous row's `{previous}`; \
                 every step must have a row (an empty value marks a missing one)"
            ),
        }
    }
}

impl std::error::Error for DataError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            DataErrorKind::Io(e) | DataErrorKind::Gzip(e) => Some(e),
            _ => None,
        }
    }
}
