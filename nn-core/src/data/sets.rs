//! Loaders for the public data sets the examples use (see `examples/data/SOURCES.md`).
use std::path::Path;

use super::csv::{CsvReader, Row, Samples, Targets};
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
    let mut rows = CsvReader::new().open(path)?;
    let mut samples = Samples::new(DIGIT_PIXELS, Targets::Label(DIGIT_CLASSES));
    rows.for_each(|row| samples.push(row))?;
    samples.finish(rows.file())
}

/// Fisher's iris flowers: 150 samples of 4 measurements in cm (sepal length, sepal
/// width, petal length, petal width) and the species index ([`IRIS_CLASSES`]).
///
/// The file starts with scikit-learn's header `150,4,setosa,versicolor,virginica`:
/// the number of rows, of features, then the class names. The loader checks the rows
/// against it: their count, their width, labels below the number of classes.
pub fn iris(path: impl AsRef<Path>) -> Result<Dataset, DataError> {
    let mut rows = CsvReader::new().open(path)?;
    let (header_line, rows_announced, mut samples) = {
        let Some(header) = rows.next_row()? else {
            return Err(DataError::new(rows.file(), None, None, DataErrorKind::Empty));
        };
        let count = |column: usize, what: &'static str| -> Result<usize, DataError> {
            let text = header.field(column).unwrap_or("");
            match text.parse::<usize>() {
                Ok(n) if n > 0 && text.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
                _ => Err(header.error(column, DataErrorKind::Invalid { expected: what, found: shorten(text) })),
            }
        };
        if header.len() < 3 {
            let expected = "rows,features,class names...".to_string();
            let found = shorten(&header.fields().collect::<Vec<_>>().join(","));
            return Err(header.error(header.len(), DataErrorKind::Header { expected, found }));
        }
        let announced = count(0, "the number of rows")?;
        let features = count(1, "the number of features")?;
        // The sizes only describe the rows: nothing is reserved from them.
        (header.line(), announced, Samples::new(features, Targets::Label(header.len() - 2)))
    };
    rows.for_each(|row| samples.push(row))?;
    if samples.rows() != rows_announced && samples.rows() > 0 {
        let kind = DataErrorKind::RowCount { expected: rows_announced, found: samples.rows() };
        return Err(DataError::new(rows.file(), Some(header_line), Some(1), kind));
    }
    samples.finish(rows.file())
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
    let mut rows = CsvReader::new().open(path)?;
    let mut words = Vec::new();
    rows.for_each(|row| {
        row.check_columns(1)?;
        let word = row.field(0).unwrap_or("");
        if word.is_empty() || !word.bytes().all(|b| b.is_ascii_lowercase()) {
            let kind = DataErrorKind::Invalid { expected: "a word of lowercase letters a-z", found: shorten(word) };
            return Err(row.error(0, kind));
        }
        words.push(word.to_string());
        Ok(())
    })?;
    if words.is_empty() {
        return Err(DataError::new(rows.file(), None, None, DataErrorKind::Empty));
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
    fn parse(self, row: &Row<'_>) -> Result<u32, DataError> {
        let text = row.field(0).unwrap_or("");
        let parsed = text.parse::<u32>().ok().filter(|&t| match self {
            Step::Week => text.len() == 8 && day_number(t).is_some(),
            Step::Year => true,
        });
        let expected = match self {
            Step::Week => "a date written YYYYMMDD",
            Step::Year => "a year",
        };
        parsed.ok_or_else(|| row.error(0, DataErrorKind::Invalid { expected, found: shorten(text) }))
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
    let mut rows = CsvReader::new().open(path)?;
    {
        let Some(found) = rows.next_row()? else {
            return Err(DataError::new(rows.file(), None, None, DataErrorKind::Empty));
        };
        if found.len() != 2 || !found.fields().zip(header).all(|(f, h)| f.eq_ignore_ascii_case(h)) {
            let found_text = shorten(&found.fields().collect::<Vec<_>>().join(","));
            return Err(found.error(0, DataErrorKind::Header { expected: header.join(","), found: found_text }));
        }
    }
    let mut times = Vec::new();
    let mut values = Vec::new();
    rows.for_each(|row| {
        row.check_columns(2)?;
        let time = step.parse(row)?;
        if let Some(&previous) = times.last() {
            if !step.follows(previous, time) {
                return Err(row.error(0, DataErrorKind::Step { previous, found: time, step: step.name() }));
            }
        }
        times.push(time);
        values.push(row.optional_number(1)?);
        Ok(())
    })?;
    // `None` when no row holds a value (or there are no rows).
    Series::interpolate(times, &values).ok_or_else(|| DataError::new(rows.file(), None, None, DataErrorKind::Empty))
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

    /// 80 MiB of comma lines compressed to a few hundred KB, as a file.
    fn comma_bomb(name: &str) -> std::path::PathBuf {
        use std::io::Write;
        let path = std::env::temp_dir().join(format!("nn-sets-{}-{name}", std::process::id()));
        let file = std::fs::File::create(&path).unwrap();
        let mut gz = flate2::write::GzEncoder::new(std::io::BufWriter::new(file), flate2::Compression::default());
        let mut line = vec![b','; 1023];
        line.push(b'\n');
        let chunk = line.repeat(1024);
        for _ in 0..80 {
            gz.write_all(&chunk).unwrap();
        }
        gz.finish().unwrap().flush().unwrap();
        path
    }

    #[test]
    fn a_gzip_bomb_of_commas_stops_at_the_limit() {
        let path = comma_bomb("bomb.csv.gz");
        assert!(std::fs::metadata(&path).unwrap().len() < 1 << 20);
        // The generic reader keeps rows, up to the default limit of 64 MiB of text.
        let err = CsvReader::new().read(&path).unwrap_err();
        assert!(matches!(err.kind, DataErrorKind::TooLarge { limit } if limit == 64 << 20), "{err}");
        assert_eq!(err.line, Some(65_537));
        // A loader stops at the first row, after checking the rest decompresses.
        let err = digits(&path).unwrap_err();
        assert!(matches!(err.kind, DataErrorKind::ColumnCount { expected: 65, found: 1024 }), "{err}");
        assert_eq!(err.line, Some(1));
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn truncated_gzip_is_reported_even_after_a_bad_row() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        for i in 0..20_000 {
            writeln!(gz, "{i},{}", i * 7).unwrap();
        }
        let bytes = gz.finish().unwrap();
        let path = std::env::temp_dir().join(format!("nn-sets-{}-cut.csv.gz", std::process::id()));
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        // Row 1 already has the wrong width; the truncation is what the file's problem is.
        let err = digits(&path).unwrap_err();
        assert!(matches!(err.kind, DataErrorKind::Gzip(_)), "{err}");
        assert!(err.line.is_some_and(|l| l > 1000), "{err}");
        std::fs::remove_file(&path).unwrap();
    }
}
