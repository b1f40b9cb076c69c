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
//! assert!(table.header().unwrap().fields().eq(["x", "y", "label"]));
//! let data = table.classification(2, 2).unwrap();
//! assert_eq!(data.inputs(), [0.5, 1.5, 2.0, 3.0]);
//! assert_eq!(data.targets(), [1.0, 0.0]);
//!
//! let err = CsvReader::new().read_bytes("bad.csv", b"1,2,3\n4,x,6\n").unwrap().numbers(3).unwrap_err();
//! assert_eq!(err.to_string(), "bad.csv: line 2, column 2: expected a finite number, found `x`");
//! ```
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use super::error::{shorten, DataError, DataErrorKind};
use crate::train::Dataset;

/// The first two bytes of every gzip member.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The default [`CsvReader::limit`]: 64 MiB of text.
pub const DEFAULT_LIMIT: u32 = 64 << 20;

/// Reads CSV files into a [`Table`].
///
/// **Memory follows the data read.** The reader streams the file (decompressing as it
/// goes) and stops with [`DataErrorKind::TooLarge`] once it has read more text than its
/// [`limit`](CsvReader::limit) (64 MiB by default). A [`Table`] keeps the fields' text
/// in one buffer with 4 bytes of index per field and 8 per row: at most 6.5 bytes per
/// byte of text (a file of one-character lines), plus what its vectors reserve while
/// growing. Nothing is reserved from a count a file announces. The loaders
/// ([`digits`](super::digits), [`iris`](super::iris), ...) check every row as it is
/// read and keep only its numbers, so a malformed file fails at its first bad row.
#[derive(Clone, Copy, Debug)]
pub struct CsvReader {
    header: bool,
    delimiter: char,
    limit: u32,
}

impl Default for CsvReader {
    fn default() -> Self {
        Self::new()
    }
}

impl CsvReader {
    /// A reader for comma-separated files without a header line, with the default
    /// [limit](CsvReader::limit).
    pub const fn new() -> Self {
        CsvReader { header: false, delimiter: ',', limit: DEFAULT_LIMIT }
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

    /// The most text, in bytes after decompression, that a file may hold
    /// ([`DEFAULT_LIMIT`]: 64 MiB; at most 4 GiB). A file holding more is a
    /// [`DataErrorKind::TooLarge`] error at the line where the limit was passed, raised
    /// before the reader holds more than the limit.
    ///
    /// ```
    /// use nn_core::data::{CsvReader, DataErrorKind};
    /// let err = CsvReader::new().limit(8).read_bytes("big.csv", b"1,2\n3,4\n5,6\n").unwrap_err();
    /// assert!(matches!(err.kind, DataErrorKind::TooLarge { limit: 8 }));
    /// assert_eq!(err.to_string(), "big.csv: line 3: the file holds more than 8 bytes of text (the reader's limit)");
    /// ```
    pub const fn limit(mut self, bytes: u32) -> Self {
        self.limit = bytes;
        self
    }

    /// Reads the file at `path` (gzip-compressed or not).
    pub fn read(&self, path: impl AsRef<Path>) -> Result<Table, DataError> {
        let mut table = Table::new(path.as_ref());
        self.open(path)?.for_each(|row| {
            table.push(row, self.header);
            Ok(())
        })?;
        Ok(table)
    }

    /// Reads a file's contents already in memory; `file` names it in errors. A name
    /// ending in `.gz` must hold gzip data.
    pub fn read_bytes(&self, file: impl AsRef<Path>, bytes: &[u8]) -> Result<Table, DataError> {
        let mut table = Table::new(file.as_ref());
        self.rows_of(file.as_ref(), bytes)?.for_each(|row| {
            table.push(row, self.header);
            Ok(())
        })?;
        Ok(table)
    }

    /// The rows of the file at `path`, read one at a time (the header, if any, is the
    /// first row).
    pub(crate) fn open(&self, path: impl AsRef<Path>) -> Result<RowReader<Box<dyn BufRead>>, DataError> {
        let path = path.as_ref();
        let io = |e| DataError::new(path, None, None, DataErrorKind::Io(e));
        let file = BufReader::new(File::open(path).map_err(io)?);
        self.rows_of(path, file)
    }

    /// The rows of the text (or gzip data) `source` yields.
    fn rows_of<'r>(
        &self,
        file: &Path,
        mut source: impl BufRead + 'r,
    ) -> Result<RowReader<Box<dyn BufRead + 'r>>, DataError> {
        let start =
            peek(&mut source, GZIP_MAGIC.len()).map_err(|e| DataError::new(file, None, None, DataErrorKind::Io(e)))?;
        let gzip = start.starts_with(&GZIP_MAGIC);
        if !gzip && !start.is_empty() && file.extension().is_some_and(|e| e.eq_ignore_ascii_case("gz")) {
            let e =
                std::io::Error::new(std::io::ErrorKind::InvalidData, "the file does not start with the gzip signature");
            return Err(DataError::new(file, None, None, DataErrorKind::Gzip(e)));
        }
        let text: Box<dyn BufRead + 'r> = if gzip {
            Box::new(BufReader::new(flate2::bufread::MultiGzDecoder::new(source)))
        } else {
            Box::new(source)
        };
        Ok(RowReader {
            text: text.take(u64::from(self.limit) + 1),
            gzip,
            file: file.to_path_buf(),
            delimiter: self.delimiter,
            limit: self.limit,
            line: 0,
            buf: Vec::new(),
            row_text: String::new(),
            ends: Vec::new(),
        })
    }
}

/// Up to `n` first bytes of `source`, left unread.
fn peek(source: &mut impl BufRead, n: usize) -> std::io::Result<Vec<u8>> {
    loop {
        match source.fill_buf() {
            Ok(b) => return Ok(b[..b.len().min(n)].to_vec()),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Reads rows one at a time, keeping only the current one: the loaders check each row
/// as it arrives.
pub(crate) struct RowReader<R> {
    text: std::io::Take<R>,
    gzip: bool,
    file: PathBuf,
    delimiter: char,
    limit: u32,
    line: usize,
    buf: Vec<u8>,
    row_text: String,
    ends: Vec<u32>,
}

impl<R: BufRead> RowReader<R> {
    /// The file read.
    pub(crate) fn file(&self) -> &Path {
        &self.file
    }

    /// Calls `f` on every remaining row, stopping at the first error. When a row of
    /// gzip data is wrong, the rest is decompressed (and dropped) to see whether the
    /// data is corrupt, which is the error then reported: corruption inside the
    /// compressed stream is only detected at its end, after garbage rows.
    pub(crate) fn for_each(&mut self, mut f: impl FnMut(&Row<'_>) -> Result<(), DataError>) -> Result<(), DataError> {
        let mut failed = None;
        while let Some(row) = self.next_row()? {
            if let Err(e) = f(&row) {
                failed = Some(e);
                break;
            }
        }
        let Some(error) = failed else {
            return Ok(());
        };
        if self.gzip {
            if let Some(corrupt) = self.drain() {
                return Err(corrupt);
            }
        }
        Err(error)
    }

    /// Reads the rest of the text (up to the limit) without keeping it; returns the
    /// error of a decoder that fails, at the line it fails on.
    fn drain(&mut self) -> Option<DataError> {
        let mut complete_lines = 0;
        loop {
            let chunk = match self.text.fill_buf() {
                Ok([]) => return None,
                Ok(chunk) => chunk,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let line = self.line + 1 + complete_lines;
                    return Some(DataError::new(&self.file, Some(line), None, DataErrorKind::Gzip(e)));
                }
            };
            let n = chunk.len();
            complete_lines += chunk.iter().filter(|&&b| b == b'\n').count();
            self.text.consume(n);
        }
    }

    /// The next non-blank line, split into fields; `None` at the end of the file.
    pub(crate) fn next_row(&mut self) -> Result<Option<Row<'_>>, DataError> {
        loop {
            self.buf.clear();
            self.line += 1;
            let error = |kind| DataError::new(&self.file, Some(self.line), None, kind);
            match self.text.read_until(b'\n', &mut self.buf) {
                Ok(0) => return Ok(None),
                Ok(_) => {}
                Err(e) if self.gzip => return Err(error(DataErrorKind::Gzip(e))),
                Err(e) => return Err(error(DataErrorKind::Io(e))),
            }
            if self.text.limit() == 0 {
                return Err(error(DataErrorKind::TooLarge { limit: self.limit }));
            }
            let mut bytes = self.buf.as_slice();
            if self.line == 1 {
                bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
            }
            let text = std::str::from_utf8(bytes).map_err(|_| error(DataErrorKind::NotUtf8))?;
            let text = text.trim_end_matches(['\n', '\r']);
            if text.trim().is_empty() {
                continue;
            }
            self.row_text.clear();
            self.ends.clear();
            split_fields(text, self.delimiter, &mut self.row_text, &mut self.ends).map_err(|column| {
                DataError::new(&self.file, Some(self.line), Some(column), DataErrorKind::UnterminatedQuote)
            })?;
            return Ok(Some(Row {
                file: &self.file,
                line: self.line,
                text: &self.row_text,
                base: 0,
                ends: &self.ends,
            }));
        }
    }
}

/// Appends the unquoted, trimmed fields of `line` to `text` and the end of each (an
/// offset into `text`) to `ends`. `Err` holds the 1-based column of an unterminated
/// quote. Offsets fit in `u32`: the text read never exceeds the reader's limit.
fn split_fields(line: &str, delimiter: char, text: &mut String, ends: &mut Vec<u32>) -> Result<(), usize> {
    let first = ends.len();
    let mut rest = line;
    loop {
        let start = rest.trim_start();
        let after = match start.strip_prefix('"') {
            Some(quoted) => {
                let mut chars = quoted.char_indices();
                let mut end = None;
                while let Some((i, c)) = chars.next() {
                    if c != '"' {
                        text.push(c);
                    } else if quoted[i + 1..].starts_with('"') {
                        text.push('"');
                        chars.next();
                    } else {
                        end = Some(i + 1);
                        break;
                    }
                }
                match end {
                    Some(end) => &quoted[end..],
                    None => return Err(ends.len() - first + 1),
                }
            }
            None => rest,
        };
        let (value, next) = match after.find(delimiter) {
            Some(at) => (&after[..at], Some(&after[at + delimiter.len_utf8()..])),
            None => (after, None),
        };
        text.push_str(value.trim());
        ends.push(text.len() as u32);
        match next {
            Some(next) => rest = next,
            None => return Ok(()),
        }
    }
}

/// The rows of a CSV file, each with its line number, and its header if asked for.
///
/// The fields' text is kept in one buffer (see [`CsvReader`] for the memory it takes).
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    file: PathBuf,
    header: Option<OwnedRow>,
    /// The fields of every row, one after the other.
    text: String,
    /// The end of each field in `text`.
    ends: Vec<u32>,
    /// Each row's line and the index in `ends` of its first field.
    rows: Vec<(u32, u32)>,
}

/// A row kept apart from the table's buffers (the header).
#[derive(Clone, Debug, PartialEq)]
struct OwnedRow {
    line: usize,
    text: String,
    ends: Vec<u32>,
}

/// One line of a CSV file, split into fields, with what its errors need to name it.
#[derive(Clone, Copy, Debug)]
pub struct Row<'a> {
    file: &'a Path,
    line: usize,
    /// The row's fields, one after the other, from offset `base` of the buffer.
    text: &'a str,
    base: u32,
    /// The end of each field, as offsets in the buffer `text` starts at `base` of.
    ends: &'a [u32],
}

impl<'a> Row<'a> {
    /// The 1-based line in the file.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The fields, unquoted and trimmed.
    pub fn fields(&self) -> impl ExactSizeIterator<Item = &'a str> + 'a {
        let row = *self;
        (0..row.len()).map(move |c| row.text_of(c))
    }

    /// The number of fields.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the row has no fields (never, for a row read from a file).
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Field `column` (from 0), if the row has it.
    pub fn field(&self, column: usize) -> Option<&'a str> {
        (column < self.len()).then(|| self.text_of(column))
    }

    fn text_of(&self, column: usize) -> &'a str {
        let start = if column == 0 { self.base } else { self.ends[column - 1] };
        &self.text[(start - self.base) as usize..(self.ends[column] - self.base) as usize]
    }

    /// An error about field `column` (from 0) of this row.
    pub fn error(&self, column: usize, kind: DataErrorKind) -> DataError {
        DataError::new(self.file, Some(self.line), Some(column.saturating_add(1)), kind)
    }

    /// Checks that the row has exactly `expected` fields. The error points at the
    /// first missing or the first extra column.
    pub fn check_columns(&self, expected: usize) -> Result<(), DataError> {
        let found = self.len();
        if found == expected {
            Ok(())
        } else {
            Err(self.error(found.min(expected), DataErrorKind::ColumnCount { expected, found }))
        }
    }

    /// Field `column` (from 0) as a finite number; an empty field is an error.
    pub fn number(&self, column: usize) -> Result<f32, DataError> {
        self.optional_number(column)?.ok_or_else(|| self.error(column, DataErrorKind::MissingValue))
    }

    /// Field `column` (from 0) as a finite number, or `None` when it is empty or
    /// absent (a missing observation).
    pub fn optional_number(&self, column: usize) -> Result<Option<f32>, DataError> {
        let text = self.field(column).unwrap_or("");
        if text.is_empty() {
            return Ok(None);
        }
        match text.parse::<f32>() {
            Ok(v) if v.is_finite() => Ok(Some(v)),
            _ => Err(self.error(column, DataErrorKind::NotANumber { found: shorten(text) })),
        }
    }

    /// Field `column` (from 0) as a class index in `0..classes`, returned as the
    /// `f32` a [`Dataset`] target holds. The index is read from the text, as an
    /// integer: `3` and `3.0` are accepted, `3.5`, `-1`, `3e0` and `3.0000001` (which
    /// an `f32` would round to 3) are not.
    pub fn label(&self, column: usize, classes: usize) -> Result<f32, DataError> {
        let text = self.field(column).unwrap_or("");
        if text.is_empty() {
            return Err(self.error(column, DataErrorKind::MissingValue));
        }
        let whole = match text.split_once('.') {
            Some((whole, fraction)) if !fraction.is_empty() && fraction.bytes().all(|b| b == b'0') => whole,
            Some(_) => "",
            None => text,
        };
        match whole.parse::<usize>() {
            Ok(index) if whole.bytes().all(|b| b.is_ascii_digit()) && index < classes => Ok(index as f32),
            _ => Err(self.error(column, DataErrorKind::LabelOutOfRange { found: shorten(text), classes })),
        }
    }

    /// This row with its own copy of the text.
    fn detach(self) -> OwnedRow {
        let ends = self.ends.iter().map(|e| e - self.base).collect();
        OwnedRow { line: self.line, text: self.text.to_string(), ends }
    }
}

impl PartialEq for Row<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.line == other.line && self.fields().eq(other.fields())
    }
}

/// Numbers of rows gathered as they are read into the samples of a [`Dataset`].
pub(crate) struct Samples {
    inputs: usize,
    targets: Targets,
    x: Vec<f32>,
    t: Vec<f32>,
    rows: usize,
}

/// What follows the inputs in a row.
#[derive(Clone, Copy)]
pub(crate) enum Targets {
    /// This many numbers.
    Values(usize),
    /// One class index below this many classes.
    Label(usize),
}

impl Samples {
    /// Rows of `inputs` numbers followed by `targets`. Nothing is reserved until rows
    /// arrive: the sizes may come from a file.
    pub(crate) fn new(inputs: usize, targets: Targets) -> Self {
        Samples { inputs, targets, x: Vec::new(), t: Vec::new(), rows: 0 }
    }

    /// Checks `row` and keeps its numbers.
    pub(crate) fn push(&mut self, row: &Row<'_>) -> Result<(), DataError> {
        let width = match self.targets {
            Targets::Values(n) => n,
            Targets::Label(_) => 1,
        };
        row.check_columns(self.inputs.saturating_add(width))?;
        for c in 0..self.inputs {
            self.x.push(row.number(c)?);
        }
        match self.targets {
            Targets::Values(n) => {
                for c in self.inputs..self.inputs + n {
                    self.t.push(row.number(c)?);
                }
            }
            Targets::Label(classes) => self.t.push(row.label(self.inputs, classes)?),
        }
        self.rows += 1;
        Ok(())
    }

    /// The rows pushed so far.
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// The data set of the rows pushed; `Empty` if there were none.
    pub(crate) fn finish(self, file: &Path) -> Result<Dataset, DataError> {
        if self.rows == 0 {
            return Err(DataError::new(file, None, None, DataErrorKind::Empty));
        }
        let width = match self.targets {
            Targets::Values(n) => n,
            Targets::Label(_) => 1,
        };
        Dataset::new(self.x, self.inputs, self.t, width)
            .map_err(|e| DataError::new(file, None, None, DataErrorKind::Dataset(e)))
    }
}

impl Table {
    fn new(file: &Path) -> Self {
        Table { file: file.to_path_buf(), header: None, text: String::new(), ends: Vec::new(), rows: Vec::new() }
    }

    /// Appends a row read from the file (the header if one is expected and none was
    /// read yet).
    fn push(&mut self, row: &Row<'_>, header: bool) {
        if header && self.header.is_none() {
            self.header = Some(row.detach());
            return;
        }
        // Lines, offsets and field counts stay below the reader's limit (`u32`).
        self.rows.push((row.line as u32, self.ends.len() as u32));
        let base = self.text.len() as u32;
        self.text.push_str(row.text);
        self.ends.extend(row.ends.iter().map(|e| e - row.base + base));
    }

    /// The file the table was read from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The header line, when the reader expected one and the file had a non-blank line.
    pub fn header(&self) -> Option<Row<'_>> {
        self.header.as_ref().map(|h| Row { file: &self.file, line: h.line, text: &h.text, base: 0, ends: &h.ends })
    }

    /// Data row `index` (from 0).
    pub fn row(&self, index: usize) -> Option<Row<'_>> {
        (index < self.rows.len()).then(|| self.row_at(index))
    }

    /// Data row `index`, which is below `self.rows.len()`.
    fn row_at(&self, index: usize) -> Row<'_> {
        let (line, first) = self.rows[index];
        let last = self.rows.get(index + 1).map_or(self.ends.len(), |&(_, next)| next as usize);
        let ends = &self.ends[first as usize..last];
        let base = if first == 0 { 0 } else { self.ends[first as usize - 1] };
        let end = ends.last().copied().unwrap_or(base);
        let text = &self.text[base as usize..end as usize];
        Row { file: &self.file, line: line as usize, text, base, ends }
    }

    /// The data rows.
    pub fn rows(&self) -> impl ExactSizeIterator<Item = Row<'_>> + '_ {
        (0..self.rows.len()).map(|i| self.row_at(i))
    }

    /// The number of data rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are no data rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// `Err(Empty)` when there are no data rows.
    pub fn require_rows(&self) -> Result<(), DataError> {
        if self.rows.is_empty() {
            Err(DataError::new(&self.file, None, None, DataErrorKind::Empty))
        } else {
            Ok(())
        }
    }

    /// Every row as `columns` numbers, row after row in one array: the raw values.
    pub fn numbers(&self, columns: usize) -> Result<Vec<f32>, DataError> {
        self.require_rows()?;
        // No more numbers than fields read, whatever `columns` says.
        let mut values = Vec::with_capacity(self.ends.len());
        for row in self.rows() {
            row.check_columns(columns)?;
            for c in 0..columns {
                values.push(row.number(c)?);
            }
        }
        Ok(values)
    }

    /// A regression data set: every row holds `inputs` numbers, then `targets`
    /// numbers.
    pub fn regression(&self, inputs: usize, targets: usize) -> Result<Dataset, DataError> {
        self.samples(Samples::new(inputs, Targets::Values(targets)))
    }

    /// A classification data set: every row holds `inputs` numbers, then a class
    /// index in `0..classes` (the target, one `f32` per sample; see [`Row::label`]).
    pub fn classification(&self, inputs: usize, classes: usize) -> Result<Dataset, DataError> {
        self.samples(Samples::new(inputs, Targets::Label(classes)))
    }

    fn samples(&self, mut samples: Samples) -> Result<Dataset, DataError> {
        for row in self.rows() {
            samples.push(&row)?;
        }
        samples.finish(&self.file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(line: &str, delimiter: char) -> Result<Vec<String>, usize> {
        let (mut text, mut ends) = (String::new(), Vec::new());
        split_fields(line, delimiter, &mut text, &mut ends)?;
        let row = Row { file: Path::new("t.csv"), line: 1, text: &text, base: 0, ends: &ends };
        Ok(row.fields().map(str::to_string).collect())
    }

    fn table(text: &str) -> Table {
        CsvReader::new().read_bytes("t.csv", text.as_bytes()).unwrap()
    }

    #[test]
    fn fields_are_split_trimmed_and_unquoted() {
        assert_eq!(split("a, b ,c", ',').unwrap(), ["a", "b", "c"]);
        assert_eq!(split("\"YEAR\",\"SUN,ACTIVITY\"", ',').unwrap(), ["YEAR", "SUN,ACTIVITY"]);
        assert_eq!(split("\"say \"\"hi\"\"\",2", ',').unwrap(), ["say \"hi\"", "2"]);
        assert_eq!(split("1,,3,", ',').unwrap(), ["1", "", "3", ""]);
        assert_eq!(split("1\t2", '\t').unwrap(), ["1", "2"]);
        assert_eq!(split("1,\"open", ','), Err(2));
    }

    #[test]
    fn a_table_gives_back_every_row_and_field() {
        let t = CsvReader::new().header(true).read_bytes("t.csv", b"a,b\n\n1,,3\n\"x,y\"\n,\n").unwrap();
        assert!(t.header().unwrap().fields().eq(["a", "b"]));
        let rows: Vec<(usize, Vec<&str>)> = t.rows().map(|r| (r.line(), r.fields().collect())).collect();
        assert_eq!(rows, [(3, vec!["1", "", "3"]), (4, vec!["x,y"]), (5, vec!["", ""])]);
        assert_eq!(t.row(1).unwrap().field(0), Some("x,y"));
        assert_eq!(t.row(0).unwrap().field(3), None);
        assert!(t.row(3).is_none());
    }

    #[test]
    fn blank_lines_crlf_and_bom_are_accepted() {
        let t = table("\u{feff}1,2\r\n\r\n3,4\r\n");
        assert_eq!(t.rows().map(|r| r.line()).collect::<Vec<_>>(), [1, 3]);
        assert_eq!(t.numbers(2).unwrap(), [1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn numbers_reject_non_finite_values() {
        for bad in ["inf", "NaN", "-infinity", "1e40", "1,5"] {
            let text = format!("0;{bad}\n");
            let t = CsvReader::new().delimiter(';').read_bytes("t.csv", text.as_bytes()).unwrap();
            let err = t.numbers(2).unwrap_err();
            assert!(matches!(err.kind, DataErrorKind::NotANumber { .. }), "{bad}: {err}");
            assert_eq!((err.line, err.column), (Some(1), Some(2)));
        }
    }

    #[test]
    fn labels_must_be_integers_in_range() {
        let t = table("0\n2.0\n1.000\n3\n");
        let good: Vec<f32> = t.rows().map(|r| r.label(0, 4).unwrap()).collect();
        assert_eq!(good, [0.0, 2.0, 1.0, 3.0]);
        let err = t.row(3).unwrap().label(0, 3).unwrap_err();
        assert!(matches!(err.kind, DataErrorKind::LabelOutOfRange { classes: 3, .. }), "{err}");
        // 9.0000001 and 2.0000001 are 9.0 and 2.0 as f32: the text decides.
        let t = table("2.5\n-1\n9.0000001\n2.0000001\n+1\n1e0\n 1.\n.0\n0x1\n-0\n");
        for row in t.rows() {
            let err = row.label(0, 10).unwrap_err();
            assert!(matches!(err.kind, DataErrorKind::LabelOutOfRange { classes: 10, .. }), "{err}");
            assert_eq!((err.line, err.column), (Some(row.line()), Some(1)));
        }
        let err = table("1,\n").row(0).unwrap().label(1, 3).unwrap_err();
        assert!(matches!(err.kind, DataErrorKind::MissingValue), "{err}");
    }

    #[test]
    fn column_count_errors_point_at_the_first_missing_or_extra_column() {
        let t = table("1,2,3\n1,2\n1,2,3,4\n");
        let rows: Vec<Row<'_>> = t.rows().collect();
        assert!(rows[0].check_columns(3).is_ok());
        let short = rows[1].check_columns(3).unwrap_err();
        assert_eq!((short.line, short.column), (Some(2), Some(3)));
        let long = rows[2].check_columns(3).unwrap_err();
        assert_eq!((long.line, long.column), (Some(3), Some(4)));
    }

    #[test]
    fn a_gz_name_without_gzip_data_is_an_error() {
        let err = CsvReader::new().read_bytes("t.csv.gz", b"1,2\n").unwrap_err();
        assert!(matches!(err.kind, DataErrorKind::Gzip(_)), "{err}");
    }

    #[test]
    fn text_beyond_the_limit_is_an_error_at_its_line() {
        let text = b"1,2\n3,4\n";
        assert_eq!(CsvReader::new().limit(8).read_bytes("t.csv", text).unwrap().len(), 2);
        let err = CsvReader::new().limit(7).read_bytes("t.csv", text).unwrap_err();
        assert!(matches!(err.kind, DataErrorKind::TooLarge { limit: 7 }), "{err}");
        assert_eq!((err.line, err.column), (Some(2), None));
        // The limit counts decompressed text.
        let gzip = gzip(&[b','; 1 << 20]);
        assert!(gzip.len() < 2048);
        let err = CsvReader::new().limit(1 << 16).read_bytes("t.csv.gz", &gzip).unwrap_err();
        assert!(matches!(err.kind, DataErrorKind::TooLarge { limit: 65536 }), "{err}");
        assert_eq!(
            CsvReader::new().limit(1 << 20).read_bytes("t.csv.gz", &gzip).unwrap().row(0).unwrap().len(),
            (1 << 20) + 1
        );
    }

    #[test]
    fn a_table_of_empty_fields_keeps_4_bytes_per_field() {
        // One line of 2^20 commas: 2^20 + 1 empty fields.
        let t = CsvReader::new().read_bytes("t.csv", &[b','; 1 << 20]).unwrap();
        assert_eq!(t.row(0).unwrap().len(), (1 << 20) + 1);
        assert!(t.ends.capacity() * 4 + t.text.capacity() <= 8 << 20, "{}", t.ends.capacity());
        assert!(t.text.is_empty());
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn sizes_announced_by_a_file_reserve_nothing() {
        // 2^40 inputs per row: the row's own width is the error, nothing is allocated.
        let t = table("1,2,0\n");
        let err = t.classification(1 << 40, 3).unwrap_err();
        assert!(matches!(err.kind, DataErrorKind::ColumnCount { expected, found: 3 } if expected == (1 << 40) + 1));
        let err = t.regression(usize::MAX, 2).unwrap_err();
        assert!(matches!(err.kind, DataErrorKind::ColumnCount { expected: usize::MAX, found: 3 }), "{err}");
        assert!(matches!(t.numbers(usize::MAX).unwrap_err().kind, DataErrorKind::ColumnCount { .. }));
    }
}
