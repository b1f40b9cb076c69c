//! A small CSV reader for numeric data files, plain or gzip-compressed.
//!
//! Fields are separated by a delimiter (`,` by default) and trimmed of surrounding
//! spaces; a field may be quoted (`"YEAR"`, with `""` for a quote inside), but a
//! field never spans lines. Blank lines are skipped, `\r\n` line ends and a UTF-8
//! byte-order mark are accepted. A file starting with the gzip signature is
//! decompressed, whatever its name.
//!
//! Column indices in this API start at 0, as Rust's; error messages count lines and
//! columns from 1, as editors do.
//!
//! ```
//! use nn_core::data::CsvReader;
//! let table = CsvReader::new()
//!     .header(true)
//!     .read_bytes("inline.csv", b"x,y,label\n0.5,1.5,1\n2,3,0\n")
//!     .unwrap();
//! assert_eq!(table.header().unwrap().fields(), ["x", "y", "label"]);
//! let data = table.classification(2, 2).unwrap();
//! assert_eq!(data.inputs(), [0.5, 1.5, 2.0, 3.0]);
//! assert_eq!(data.targets(), [1.0, 0.0]);
//!
//! let err = CsvReader::new().read_bytes("bad.csv", b"1,2,3\n4,x,6\n").unwrap().numbers(3).unwrap_err();
//! assert_eq!(err.to_string(), "bad.csv: line 2, column 2: expected a finite number, found `x`");
//! ```
use std::io::BufRead;
use std::path::{Path, PathBuf};

use super::error::{shorten, DataError, DataErrorKind};
use crate::train::Dataset;

/// The first two bytes of every gzip member.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Reads CSV files into a [`Table`].
#[derive(Clone, Copy, Debug)]
pub struct CsvReader {
    header: bool,
    delimiter: char,
}

impl Default for CsvReader {
    fn default() -> Self {
        Self::new()
    }
}

impl CsvReader {
    /// A reader for comma-separated files without a header line.
    pub const fn new() -> Self {
        CsvReader { header: false, delimiter: ',' }
    }

    /// Whether the first non-blank line is a header rather than data.
    pub const fn header(mut self, header: bool) -> Self {
        self.header = header;
        self
    }

    /// The field separator (`,` by default; `;` or `\t` for other files).
    pub const fn delimiter(mut self, delimiter: char) -> Self {
        self.delimiter = delimiter;
        self
    }

    /// Reads the file at `path` (gzip-compressed or not).
    pub fn read(&self, path: impl AsRef<Path>) -> Result<Table, DataError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| DataError::new(path, None, None, DataErrorKind::Io(e)))?;
        self.read_bytes(path, &bytes)
    }

    /// Reads a file's contents already in memory; `file` names it in errors. A name
    /// ending in `.gz` must hold gzip data.
    pub fn read_bytes(&self, file: impl AsRef<Path>, bytes: &[u8]) -> Result<Table, DataError> {
        let file = file.as_ref();
        let gzip = bytes.starts_with(&GZIP_MAGIC);
        if !gzip && !bytes.is_empty() && file.extension().is_some_and(|e| e.eq_ignore_ascii_case("gz")) {
            let e =
                std::io::Error::new(std::io::ErrorKind::InvalidData, "the file does not start with the gzip signature");
            return Err(DataError::new(file, None, None, DataErrorKind::Gzip(e)));
        }
        let mut table = Table { file: file.to_path_buf(), header: None, rows: Vec::new() };
        if gzip {
            let decoder = flate2::bufread::MultiGzDecoder::new(bytes);
            self.parse(&mut table, std::io::BufReader::new(decoder))?;
        } else {
            self.parse(&mut table, bytes)?;
        }
        Ok(table)
    }

    /// Splits the text from `reader` into the header and rows of `table`.
    fn parse(&self, table: &mut Table, mut reader: impl BufRead) -> Result<(), DataError> {
        let mut buf = Vec::new();
        let mut line = 0;
        loop {
            buf.clear();
            line += 1;
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                // Only a decoder can fail on an in-memory reader.
                Err(e) => return Err(table.error_at(line, None, DataErrorKind::Gzip(e))),
            }
            let mut bytes = buf.as_slice();
            if line == 1 {
                bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
            }
            let text = std::str::from_utf8(bytes).map_err(|_| table.error_at(line, None, DataErrorKind::NotUtf8))?;
            let text = text.trim_end_matches(['\n', '\r']);
            if text.trim().is_empty() {
                continue;
            }
            let fields = split_fields(text, self.delimiter)
                .map_err(|column| table.error_at(line, Some(column), DataErrorKind::UnterminatedQuote))?;
            let row = Row { line, fields };
            if self.header && table.header.is_none() {
                table.header = Some(row);
            } else {
                table.rows.push(row);
            }
        }
    }
}

/// The fields of one line; `Err` holds the 1-based column of an unterminated quote.
fn split_fields(line: &str, delimiter: char) -> Result<Vec<String>, usize> {
    let mut fields = Vec::new();
    let mut rest = line;
    loop {
        let start = rest.trim_start();
        let (mut value, after) = match start.strip_prefix('"') {
            Some(quoted) => {
                let mut value = String::new();
                let mut chars = quoted.char_indices();
                let mut end = None;
                while let Some((i, c)) = chars.next() {
                    if c != '"' {
                        value.push(c);
                    } else if quoted[i + 1..].starts_with('"') {
                        value.push('"');
                        chars.next();
                    } else {
                        end = Some(i + 1);
                        break;
                    }
                }
                match end {
                    Some(end) => (value, &quoted[end..]),
                    None => return Err(fields.len() + 1),
                }
            }
            None => (String::new(), rest),
        };
        match after.find(delimiter) {
            Some(at) => {
                value.push_str(after[..at].trim());
                fields.push(value);
                rest = &after[at + delimiter.len_utf8()..];
            }
            None => {
                value.push_str(after.trim());
                fields.push(value);
                return Ok(fields);
            }
        }
    }
}

/// The rows of a CSV file, each with its line number, and its header if asked for.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    file: PathBuf,
    header: Option<Row>,
    rows: Vec<Row>,
}

/// One line of a CSV file, split into fields.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    line: usize,
    fields: Vec<String>,
}

impl Row {
    /// The 1-based line in the file.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The fields, unquoted and trimmed.
    pub fn fields(&self) -> &[String] {
        &self.fields
    }

    /// The number of fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether the row has no fields (never, for a row read from a file).
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Field `column` (from 0), if the row has it.
    pub fn field(&self, column: usize) -> Option<&str> {
        self.fields.get(column).map(String::as_str)
    }
}

impl Table {
    /// The file the table was read from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The header line, when the reader expected one and the file had a non-blank line.
    pub fn header(&self) -> Option<&Row> {
        self.header.as_ref()
    }

    /// The data rows.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// The number of data rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are no data rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// An error in this table's file at a 1-based line and column.
    fn error_at(&self, line: usize, column: Option<usize>, kind: DataErrorKind) -> DataError {
        DataError::new(&self.file, Some(line), column, kind)
    }

    /// An error about field `column` (from 0) of `row`.
    pub fn error(&self, row: &Row, column: usize, kind: DataErrorKind) -> DataError {
        self.error_at(row.line, Some(column + 1), kind)
    }

    /// `Err(Empty)` when there are no data rows.
    pub fn require_rows(&self) -> Result<(), DataError> {
        if self.rows.is_empty() {
            Err(DataError::new(&self.file, None, None, DataErrorKind::Empty))
        } else {
            Ok(())
        }
    }

    /// Checks that `row` has exactly `expected` fields. The error points at the first
    /// missing or the first extra column.
    pub fn check_columns(&self, row: &Row, expected: usize) -> Result<(), DataError> {
        let found = row.len();
        if found == expected {
            Ok(())
        } else {
            Err(self.error(row, found.min(expected), DataErrorKind::ColumnCount { expected, found }))
        }
    }

    /// Field `column` (from 0) of `row` as a finite number; an empty field is an error.
    pub fn number(&self, row: &Row, column: usize) -> Result<f32, DataError> {
        self.optional_number(row, column)?.ok_or_else(|| self.error(row, column, DataErrorKind::MissingValue))
    }

    /// Field `column` (from 0) of `row` as a finite number, or `None` when it is
    /// empty or absent (a missing observation).
    pub fn optional_number(&self, row: &Row, column: usize) -> Result<Option<f32>, DataError> {
        let text = row.field(column).unwrap_or("");
        if text.is_empty() {
            return Ok(None);
        }
        match text.parse::<f32>() {
            Ok(v) if v.is_finite() => Ok(Some(v)),
            _ => Err(self.error(row, column, DataErrorKind::NotANumber { found: shorten(text) })),
        }
    }

    /// Field `column` (from 0) of `row` as a class index in `0..classes`, returned as
    /// the `f32` a [`Dataset`] target holds. `3` and `3.0` are accepted.
    pub fn label(&self, row: &Row, column: usize, classes: usize) -> Result<f32, DataError> {
        let value = self.number(row, column)?;
        if value >= 0.0 && value.fract() == 0.0 && (value as usize) < classes {
            Ok(value)
        } else {
            let found = shorten(row.field(column).unwrap_or(""));
            Err(self.error(row, column, DataErrorKind::LabelOutOfRange { found, classes }))
        }
    }

    /// Every row as `columns` numbers, row after row in one array: the raw values.
    pub fn numbers(&self, columns: usize) -> Result<Vec<f32>, DataError> {
        self.require_rows()?;
        let mut values = Vec::with_capacity(self.rows.len() * columns);
        for row in &self.rows {
            self.check_columns(row, columns)?;
            for c in 0..columns {
                values.push(self.number(row, c)?);
            }
        }
        Ok(values)
    }

    /// A regression data set: every row holds `inputs` numbers, then `targets`
    /// numbers.
    pub fn regression(&self, inputs: usize, targets: usize) -> Result<Dataset, DataError> {
        let width = inputs + targets;
        let values = self.numbers(width)?;
        let mut x = Vec::with_capacity(self.rows.len() * inputs);
        let mut t = Vec::with_capacity(self.rows.len() * targets);
        for row in values.chunks_exact(width.max(1)) {
            x.extend_from_slice(&row[..inputs]);
            t.extend_from_slice(&row[inputs..]);
        }
        self.dataset(x, inputs, t, targets)
    }

    /// A classification data set: every row holds `inputs` numbers, then a class
    /// index in `0..classes` (the target, one `f32` per sample).
    pub fn classification(&self, inputs: usize, classes: usize) -> Result<Dataset, DataError> {
        self.require_rows()?;
        let mut x = Vec::with_capacity(self.rows.len() * inputs);
        let mut t = Vec::with_capacity(self.rows.len());
        for row in &self.rows {
            self.check_columns(row, inputs + 1)?;
            for c in 0..inputs {
                x.push(self.number(row, c)?);
            }
            t.push(self.label(row, inputs, classes)?);
        }
        self.dataset(x, inputs, t, 1)
    }

    fn dataset(&self, x: Vec<f32>, inputs: usize, t: Vec<f32>, targets: usize) -> Result<Dataset, DataError> {
        Dataset::new(x, inputs, t, targets)
            .map_err(|e| DataError::new(&self.file, None, None, DataErrorKind::Dataset(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_split_trimmed_and_unquoted() {
        assert_eq!(split_fields("a, b ,c", ',').unwrap(), ["a", "b", "c"]);
        assert_eq!(split_fields("\"YEAR\",\"SUN,ACTIVITY\"", ',').unwrap(), ["YEAR", "SUN,ACTIVITY"]);
        assert_eq!(split_fields("\"say \"\"hi\"\"\",2", ',').unwrap(), ["say \"hi\"", "2"]);
        assert_eq!(split_fields("1,,3,", ',').unwrap(), ["1", "", "3", ""]);
        assert_eq!(split_fields("1\t2", '\t').unwrap(), ["1", "2"]);
        assert_eq!(split_fields("1,\"open", ','), Err(2));
    }

    #[test]
    fn blank_lines_crlf_and_bom_are_accepted() {
        let table = CsvReader::new().read_bytes("t.csv", "\u{feff}1,2\r\n\r\n3,4\r\n".as_bytes()).unwrap();
        assert_eq!(table.rows().iter().map(Row::line).collect::<Vec<_>>(), [1, 3]);
        assert_eq!(table.numbers(2).unwrap(), [1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn numbers_reject_non_finite_values() {
        for bad in ["inf", "NaN", "-infinity", "1e40", "1,5"] {
            let text = format!("0;{bad}\n");
            let table = CsvReader::new().delimiter(';').read_bytes("t.csv", text.as_bytes()).unwrap();
            let err = table.numbers(2).unwrap_err();
            assert!(matches!(err.kind, DataErrorKind::NotANumber { .. }), "{bad}: {err}");
            assert_eq!((err.line, err.column), (Some(1), Some(2)));
        }
    }

    #[test]
    fn labels_must_be_integers_in_range() {
        let table = CsvReader::new().read_bytes("t.csv", b"0\n2.0\n2.5\n-1\n3\n").unwrap();
        let rows = table.rows();
        assert_eq!(table.label(&rows[0], 0, 3).unwrap(), 0.0);
        assert_eq!(table.label(&rows[1], 0, 3).unwrap(), 2.0);
        for row in &rows[2..] {
            let err = table.label(row, 0, 3).unwrap_err();
            assert!(matches!(err.kind, DataErrorKind::LabelOutOfRange { classes: 3, .. }), "{err}");
        }
    }

    #[test]
    fn column_count_errors_point_at_the_first_missing_or_extra_column() {
        let table = CsvReader::new().read_bytes("t.csv", b"1,2,3\n1,2\n1,2,3,4\n").unwrap();
        let rows = table.rows();
        assert!(table.check_columns(&rows[0], 3).is_ok());
        let short = table.check_columns(&rows[1], 3).unwrap_err();
        assert_eq!((short.line, short.column), (Some(2), Some(3)));
        let long = table.check_columns(&rows[2], 3).unwrap_err();
        assert_eq!((long.line, long.column), (Some(3), Some(4)));
    }

    #[test]
    fn a_gz_name_without_gzip_data_is_an_error() {
        let err = CsvReader::new().read_bytes("t.csv.gz", b"1,2\n").unwrap_err();
        assert!(matches!(err.kind, DataErrorKind::Gzip(_)), "{err}");
    }
}
