//! Loaders for the public data sets the examples use (see `examples/data/SOURCES.md`).
use std::path::Path;

use super::csv::{CsvReader, Row, Table};
use super::error::{shorten, DataError, DataErrorKind};
use super::series::Series;
use crate::train::Dataset;

/// Pixels per digit image (8 x 8).
pub const DIGIT_PIXELS: usize = 64;
/// Digit classes (0 to 9).
pub const DIGIT_CLASSES: usize = 10;
/// Iris class names, in the order of their indices.
pub const IRIS_CLASSES: [&str; 3] = ["setosa", "versicolor", "virginica"];

/// The UCI handwritten digits: 8x8 grey-level images, 1797 in the bundled file.
///
/// Each line holds 64 pixel values (0 to 16, row by row) and the digit (0 to 9). The
/// file may be gzip-compressed (`digits.csv.gz`) or plain. Inputs are the 64 pixels
/// as `f32`, unscaled; the target is the digit as one `f32`, the form
/// `SparseCategoricalCrossEntropy` takes. A label that is not an integer from 0 to 9
/// is an error naming its line.
pub fn digits(path: impl AsRef<Path>) -> Result<Dataset, DataError> {
    CsvReader::new().read(path)?.classification(DIGIT_PIXELS, DIGIT_CLASSES)
}

/// Fisher's iris flowers: 150 samples of 4 measurements in cm (sepal length, sepal
/// width, petal length, petal width) and the species index ([`IRIS_CLASSES`]).
///
/// The file starts with scikit-learn's header `150,4,setosa,versicolor,virginica`:
/// the number of rows, of features, then the class names. The loader checks the rows
/// against it: their count, their width, labels below the number of classes.
pub fn iris(path: impl AsRef<Path>) -> Result<Dataset, DataError> {
    let table = CsvReader::new().header(true).read(path)?;
    let Some(header) = table.header() else {
        return Err(DataError::new(table.file(), None, None, DataErrorKind::Empty));
    };
    let count = |column: usize, what: &'static str| -> Result<usize, DataError> {
        let text = header.field(column).unwrap_or("");
        match text.parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(table.error(header, column, DataErrorKind::Invalid { expected: what, found: shorten(text) })),
        }
    };
    if header.len() < 3 {
        let expected = "rows,features,class names...".to_string();
        let found = shorten(&header.fields().join(","));
        return Err(table.error(header, header.len(), DataErrorKind::Header { expected, found }));
    }
    let rows = count(0, "the number of rows")?;
    let features = count(1, "the number of features")?;
    let classes = header.len() - 2;
    let data = table.classification(features, classes)?;
    if data.len() != rows {
        let kind = DataErrorKind::RowCount { expected: rows, found: data.len() };
        return Err(table.error(header, 0, kind));
    }
    Ok(data)
}

/// Weekly atmospheric CO2 at Mauna Loa in ppm, from 1958-03-29 to 2001-12-29 (2284
/// weeks in the bundled file, 59 of them without a measurement).
///
/// The file has the header `date,co2`, then one row per week: the date as `YYYYMMDD`
/// and the concentration, **empty when the week was not measured**. Every week must
/// have a row, 7 days after the previous one. Missing weeks are filled by **linear
/// interpolation** between the nearest measured weeks, so that the series keeps one
/// value per week and "52 steps earlier" is always a year earlier;
/// [`Series::observed`] marks the measured weeks.
pub fn co2(path: impl AsRef<Path>) -> Result<Series, DataError> {
    read_series(path, ["date", "co2"], Step::Week)
}

/// Yearly sunspot activity (the yearly mean sunspot number), 1700 to 2008 (309
/// years in the bundled file).
///
/// The file has the header `"YEAR","SUNACTIVITY"`, then one row per year; an empty
/// value would be filled as in [`co2`].
pub fn sunspots(path: impl AsRef<Path>) -> Result<Series, DataError> {
    read_series(path, ["YEAR", "SUNACTIVITY"], Step::Year)
}

/// A word list: one word of lowercase ASCII letters (`a` to `z`) per line, as the
/// bundled subset of Debian's `wamerican` (`words.txt`, 4364 words of 4 to 8 letters).
///
/// Blank lines are skipped; the file may be gzip-compressed. A line holding anything
/// else (a capital, a digit, an apostrophe, a space inside the word, a comma) is an
/// error naming its line:
///
/// ```
/// # let path = std::env::temp_dir().join(format!("nn-words-doc-{}.txt", std::process::id()));
/// std::fs::write(&path, "apple\nBanana\n").unwrap();
/// let err = nn_core::data::words(&path).unwrap_err();
/// assert_eq!((err.line, err.column), (Some(2), Some(1)));
/// assert!(err.to_string().ends_with("expected a word of lowercase letters a-z, found `Banana`"));
/// # std::fs::remove_file(&path).unwrap();
/// ```
pub fn words(path: impl AsRef<Path>) -> Result<Vec<String>, DataError> {
    let table = CsvReader::new().read(path)?;
    table.require_rows()?;
    let mut words = Vec::with_capacity(table.len());
    for row in table.rows() {
        table.check_columns(row, 1)?;
        let word = row.field(0).unwrap_or("");
        if word.is_empty() || !word.bytes().all(|b| b.is_ascii_lowercase()) {
            let kind = DataErrorKind::Invalid { expected: "a word of lowercase letters a-z", found: shorten(word) };
            return Err(table.error(row, 0, kind));
        }
        words.push(word.to_string());
    }
    Ok(words)
}

/// The spacing of a series' rows.
#[derive(Clone, Copy)]
enum Step {
    /// `YYYYMMDD` dates 7 days apart.
    Week,
    /// Years 1 apart.
    Year,
}

impl Step {
    /// The time in column 0 of `row`.
    fn parse(self, table: &Table, row: &Row) -> Result<u32, DataError> {
        let text = row.field(0).unwrap_or("");
        let parsed = text.parse::<u32>().ok().filter(|&t| match self {
            Step::Week => text.len() == 8 && day_number(t).is_some(),
            Step::Year => true,
        });
        let expected = match self {
            Step::Week => "a date written YYYYMMDD",
            Step::Year => "a year",
        };
        parsed.ok_or_else(|| table.error(row, 0, DataErrorKind::Invalid { expected, found: shorten(text) }))
    }

    /// Whether `next` is one step after `previous`.
    fn follows(self, previous: u32, next: u32) -> bool {
        match self {
            Step::Week => match (day_number(previous), day_number(next)) {
                (Some(a), Some(b)) => b - a == 7,
                _ => false,
            },
            Step::Year => previous.checked_add(1) == Some(next),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Step::Week => "7 days",
            Step::Year => "1 year",
        }
    }
}

/// Reads a two-column series `time,value` with the given header, checking the step.
fn read_series(path: impl AsRef<Path>, header: [&str; 2], step: Step) -> Result<Series, DataError> {
    let table = CsvReader::new().header(true).read(path)?;
    let Some(found) = table.header() else {
        return Err(DataError::new(table.file(), None, None, DataErrorKind::Empty));
    };
    let matches = found.len() == 2 && found.fields().iter().zip(header).all(|(f, h)| f.eq_ignore_ascii_case(h));
    if !matches {
        let kind = DataErrorKind::Header { expected: header.join(","), found: shorten(&found.fields().join(",")) };
        return Err(table.error(found, 0, kind));
    }
    table.require_rows()?;
    let mut times = Vec::with_capacity(table.len());
    let mut values = Vec::with_capacity(table.len());
    for row in table.rows() {
        table.check_columns(row, 2)?;
        let time = step.parse(&table, row)?;
        if let Some(&previous) = times.last() {
            if !step.follows(previous, time) {
                return Err(table.error(row, 0, DataErrorKind::Step { previous, found: time, step: step.name() }));
            }
        }
        times.push(time);
        values.push(table.optional_number(row, 1)?);
    }
    Series::interpolate(times, &values).ok_or_else(|| {
        // Every value is missing: no row holds data.
        DataError::new(table.file(), None, None, DataErrorKind::Empty)
    })
}

/// Days since 1970-01-01 of a valid `YYYYMMDD` date (H. Hinnant's `days_from_civil`).
fn day_number(date: u32) -> Option<i64> {
    let (y, m, d) = ((date / 10_000) as i64, (date / 100 % 100) as i64, (date % 100) as i64);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&m) || d < 1 || d > month_days[(m - 1) as usize] {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    Some(era * 146_097 + day_of_era - 719_468)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_numbers_match_the_calendar() {
        assert_eq!(day_number(19700101), Some(0));
        assert_eq!(day_number(20000301), Some(11_017));
        assert_eq!(day_number(19580329), Some(-4_296));
        assert_eq!(day_number(20000229), Some(11_016));
        assert_eq!(day_number(19000229), None);
        assert_eq!(day_number(19581301), None);
        assert_eq!(day_number(19580100), None);
        assert!(Step::Week.follows(19581229, 19590105));
        assert!(!Step::Week.follows(19581229, 19590112));
    }
}
