//! The data loaders on the bundled files (counts and values checked against the data
//! sets' published descriptions) and on malformed files (every error names the file,
//! line and column).
use std::path::PathBuf;

use nn_core::data::{self, DataError, DataErrorKind};
use nn_examples::data_file;

/// A file with `contents` in the temporary directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &[u8]) -> Self {
        let path = std::env::temp_dir().join(format!("nn-data-loaders-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).expect("write a temporary file");
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The first rows of the digits file, as plain text.
const DIGIT_ROWS: &str = "\
0,0,5,13,9,1,0,0,0,0,13,15,10,15,5,0,0,3,15,2,0,11,8,0,0,4,12,0,0,8,8,0,0,5,8,0,0,9,8,0,0,4,11,0,1,12,7,0,0,2,14,5,10,12,0,0,0,0,6,13,10,0,0,0,0
0,0,0,12,13,5,0,0,0,0,0,11,16,9,0,0,0,0,3,15,16,6,0,0,0,7,15,16,16,2,0,0,0,0,1,16,16,3,0,0,0,0,1,16,16,6,0,0,0,0,1,16,16,6,0,0,0,0,0,11,16,10,0,0,1
0,0,0,4,15,12,0,0,0,0,3,16,15,14,0,0,0,0,8,13,8,16,0,0,0,0,1,6,15,11,0,0,0,1,8,13,15,1,0,0,0,9,16,16,5,0,0,0,0,3,13,16,16,11,5,0,0,0,0,3,11,16,9,0,2
";

/// `DIGIT_ROWS` with line `line` (from 1) replaced by `edit(line)`.
fn digits_with(line: usize, edit: impl Fn(&str) -> String) -> String {
    DIGIT_ROWS.lines().enumerate().map(|(i, l)| if i + 1 == line { edit(l) } else { l.to_string() } + "\n").collect()
}

/// Loads `contents` as a digits file and returns the error.
fn digits_error(name: &str, contents: &str) -> DataError {
    let file = TempFile::new(name, contents.as_bytes());
    data::digits(&file.0).expect_err("a malformed file must not load")
}

/// Checks an error's position and that its message states it.
fn assert_at(err: &DataError, line: Option<usize>, column: Option<usize>) {
    assert_eq!((err.line, err.column), (line, column), "{err}");
    let message = err.to_string();
    assert!(message.starts_with(&err.file.display().to_string()), "{message}");
    match (line, column) {
        (Some(l), Some(c)) => assert!(message.contains(&format!(": line {l}, column {c}: ")), "{message}"),
        (Some(l), None) => assert!(message.contains(&format!(": line {l}: ")), "{message}"),
        _ => assert!(!message.contains(": line "), "{message}"),
    }
}

#[test]
fn digits_load_all_1797_images_with_their_labels() {
    let d = data::digits(data_file("digits.csv.gz")).unwrap();
    assert_eq!((d.len(), d.input_len(), d.target_len()), (1797, 64, 1));
    // The first image (a 0) as printed by `zcat digits.csv.gz | head -1`.
    let first: Vec<f32> = DIGIT_ROWS.lines().next().unwrap().split(',').map(|v| v.parse().unwrap()).collect();
    assert_eq!(d.input(0), &first[..64]);
    assert_eq!(d.target(0), [0.0]);
    assert_eq!(d.target(1796), [8.0]);
    // Class sizes from scikit-learn's description of `load_digits`.
    let mut counts = [0usize; 10];
    d.targets().iter().for_each(|&t| counts[t as usize] += 1);
    assert_eq!(counts, [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]);
    let (min, max) = d.inputs().iter().fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    assert_eq!((min, max), (0.0, 16.0));
}

#[test]
fn digits_also_load_from_plain_csv() {
    let file = TempFile::new("digits.csv", DIGIT_ROWS.as_bytes());
    let d = data::digits(&file.0).unwrap();
    assert_eq!(d.len(), 3);
    assert_eq!(d.targets(), [0.0, 1.0, 2.0]);
    assert_eq!(&d.input(2)[..5], [0.0, 0.0, 0.0, 4.0, 15.0]);
}

#[test]
fn a_letter_in_a_pixel_column_names_its_line_and_column() {
    let text = digits_with(2, |l| l.replacen("13", "1x", 1));
    let err = digits_error("letter.csv", &text);
    assert!(matches!(&err.kind, DataErrorKind::NotANumber { found } if found == "1x"), "{err}");
    assert_at(&err, Some(2), Some(5));
    assert!(err.to_string().ends_with("expected a finite number, found `1x`"), "{err}");
}

#[test]
fn a_missing_column_names_the_first_absent_column() {
    let text = digits_with(3, |l| l.split_once(',').unwrap().1.to_string());
    let err = digits_error("short.csv", &text);
    assert!(matches!(err.kind, DataErrorKind::ColumnCount { expected: 65, found: 64 }), "{err}");
    assert_at(&err, Some(3), Some(65));
    assert!(err.to_string().ends_with("expected 65 columns, found 64"), "{err}");
}

#[test]
fn an_extra_column_names_the_first_extra_column() {
    let text = digits_with(1, |l| format!("{l},0"));
    let err = digits_error("long.csv", &text);
    assert!(matches!(err.kind, DataErrorKind::ColumnCount { expected: 65, found: 66 }), "{err}");
    assert_at(&err, Some(1), Some(66));
}

#[test]
fn label_10_or_a_fraction_is_out_of_range() {
    for bad in ["10", "2.5", "-1"] {
        let text = digits_with(2, |l| format!("{}{bad}", &l[..l.len() - 1]));
        let err = digits_error("label.csv", &text);
        assert!(matches!(&err.kind, DataErrorKind::LabelOutOfRange { found, classes: 10 } if found == bad), "{err}");
        assert_at(&err, Some(2), Some(65));
        assert!(err.to_string().ends_with(&format!("label `{bad}` is not a class index from 0 to 9")), "{err}");
    }
}

#[test]
fn an_empty_pixel_is_a_missing_value() {
    let text = digits_with(3, |l| l.replacen("0,", ",", 1));
    let err = digits_error("hole.csv", &text);
    assert!(matches!(err.kind, DataErrorKind::MissingValue), "{err}");
    assert_at(&err, Some(3), Some(1));
}

#[test]
fn empty_files_have_no_data_rows() {
    for (name, contents) in [("empty.csv", ""), ("blank.csv", "\n \n\r\n")] {
        let err = digits_error(name, contents);
        assert!(matches!(err.kind, DataErrorKind::Empty), "{err}");
        assert_at(&err, None, None);
        assert!(err.to_string().ends_with("the file has no data rows"), "{err}");
    }
    let file = TempFile::new("header-only.csv", b"150,4,setosa,versicolor,virginica\n");
    let err = data::iris(&file.0).unwrap_err();
    assert!(matches!(err.kind, DataErrorKind::Empty), "{err}");
}

#[test]
fn a_truncated_gzip_file_is_a_gzip_error_at_the_line_it_breaks() {
    let bytes = std::fs::read(data_file("digits.csv.gz")).unwrap();
    // Python's zlib decompresses 894 whole lines from the first half of the bytes, so
    // line 895 is the first that cannot be read.
    let file = TempFile::new("half.csv.gz", &bytes[..bytes.len() / 2]);
    let err = data::digits(&file.0).unwrap_err();
    assert!(matches!(err.kind, DataErrorKind::Gzip(_)), "{err}");
    assert_at(&err, Some(895), None);
    assert!(err.to_string().contains("gzip"), "{err}");
    assert!(std::error::Error::source(&err).is_some());

    // Cut inside the 10-byte gzip header: nothing decompresses.
    let file = TempFile::new("header.csv.gz", &bytes[..6]);
    let err = data::digits(&file.0).unwrap_err();
    assert!(matches!(err.kind, DataErrorKind::Gzip(_)), "{err}");
    assert_at(&err, Some(1), None);

    // Corrupt bytes in the middle of the stream.
    let mut corrupt = bytes.clone();
    corrupt[bytes.len() / 3..bytes.len() / 3 + 64].fill(0xff);
    let file = TempFile::new("corrupt.csv.gz", &corrupt);
    let err = data::digits(&file.0).unwrap_err();
    assert!(matches!(err.kind, DataErrorKind::Gzip(_) | DataErrorKind::NotANumber { .. }), "{err}");
}

#[test]
fn a_missing_file_is_an_io_error_naming_it() {
    let path = data_file("no-such-file.csv");
    let err = data::digits(&path).unwrap_err();
    assert!(matches!(&err.kind, DataErrorKind::Io(e) if e.kind() == std::io::ErrorKind::NotFound), "{err}");
    assert!(err.to_string().starts_with(&path.display().to_string()), "{err}");
}

#[test]
fn binary_garbage_is_an_error_not_a_panic() {
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let file = TempFile::new("garbage.csv", &garbage);
    assert!(data::digits(&file.0).is_err());
    assert!(data::iris(&file.0).is_err());
    assert!(data::co2(&file.0).is_err());
    assert!(data::sunspots(&file.0).is_err());
}

#[test]
fn iris_loads_150_flowers_in_3_classes() {
    let d = data::iris(data_file("iris.csv")).unwrap();
    assert_eq!((d.len(), d.input_len(), d.target_len()), (150, 4, 1));
    assert_eq!(d.input(0), [5.1, 3.5, 1.4, 0.2]);
    assert_eq!(d.target(0), [0.0]);
    assert_eq!(d.input(149), [5.9, 3.0, 5.1, 1.8]);
    assert_eq!(d.target(149), [2.0]);
    let mut counts = [0usize; 3];
    d.targets().iter().for_each(|&t| counts[t as usize] += 1);
    assert_eq!(counts, [50, 50, 50]);
    // Feature means from scikit-learn's description of `load_iris` (two decimals).
    let (mean, _) = d.feature_stats();
    for (m, expected) in mean.iter().zip([5.84, 3.05, 3.76, 1.20]) {
        assert!((m - expected).abs() < 0.01, "mean {m}, documented {expected}");
    }
    assert_eq!(data::IRIS_CLASSES, ["setosa", "versicolor", "virginica"]);
}

#[test]
fn iris_rows_are_checked_against_the_header() {
    let good = std::fs::read_to_string(data_file("iris.csv")).unwrap();
    let cases: [(&str, String, Option<usize>, Option<usize>); 4] = [
        ("count", good.replacen("150,", "151,", 1), Some(1), Some(1)),
        ("label", good.replacen("5.1,3.5,1.4,0.2,0", "5.1,3.5,1.4,0.2,3", 1), Some(2), Some(5)),
        ("width", good.replacen("4.9,3.0,1.4,0.2,0", "4.9,3.0,1.4,0", 1), Some(3), Some(5)),
        ("header", good.replacen("150,4,", "many,4,", 1), Some(1), Some(1)),
    ];
    for (name, text, line, column) in cases {
        let file = TempFile::new(&format!("iris-{name}.csv"), text.as_bytes());
        let err = data::iris(&file.0).unwrap_err();
        assert_at(&err, line, column);
    }
}

#[test]
fn co2_fills_59_missing_weeks_by_linear_interpolation() {
    let s = data::co2(data_file("co2.csv")).unwrap();
    assert_eq!(s.len(), 2284);
    assert_eq!(s.missing(), 59);
    assert_eq!((s.times()[0], s.values()[0]), (19580329, 316.1));
    assert_eq!((s.times()[2283], s.values()[2283]), (20011229, 371.5));
    // 19580510 lies between 316.9 (a week before) and 317.5 (a week after).
    assert_eq!(s.times()[6], 19580510);
    assert!(!s.observed()[6]);
    assert!((s.values()[6] - 317.2).abs() < 1e-4);
    // Five empty weeks between 317.9 (19580524) and 315.8 (19580705): steps of -0.35.
    for (k, expected) in [317.55, 317.2, 316.85, 316.5, 316.15].into_iter().enumerate() {
        assert!((s.values()[9 + k] - expected).abs() < 1e-4, "week {k}: {}", s.values()[9 + k]);
    }
    assert!(s.observed()[8] && s.observed()[14]);
}

#[test]
fn co2_rejects_an_absent_week_and_a_bad_date() {
    let good = std::fs::read_to_string(data_file("co2.csv")).unwrap();
    let skipped = good.replacen("19580405,317.3\n", "", 1);
    let file = TempFile::new("co2-gap.csv", skipped.as_bytes());
    let err = data::co2(&file.0).unwrap_err();
    assert!(matches!(err.kind, DataErrorKind::Step { previous: 19580329, found: 19580412, .. }), "{err}");
    assert_at(&err, Some(3), Some(1));

    let bad_date = good.replacen("19580419,", "19581319,", 1);
    let file = TempFile::new("co2-date.csv", bad_date.as_bytes());
    let err = data::co2(&file.0).unwrap_err();
    assert!(matches!(err.kind, DataErrorKind::Invalid { .. }), "{err}");
    assert_at(&err, Some(5), Some(1));

    let letter = good.replacen("19580412,317.6", "19580412,317.x", 1);
    let file = TempFile::new("co2-letter.csv", letter.as_bytes());
    let err = data::co2(&file.0).unwrap_err();
    assert!(matches!(err.kind, DataErrorKind::NotANumber { .. }), "{err}");
    assert_at(&err, Some(4), Some(2));

    let file = TempFile::new("co2-wrong-file.csv", &std::fs::read(data_file("sunspots.csv")).unwrap());
    let err = data::co2(&file.0).unwrap_err();
    assert!(matches!(err.kind, DataErrorKind::Header { .. }), "{err}");
    assert_at(&err, Some(1), Some(1));
}

#[test]
fn sunspots_load_309_years() {
    let s = data::sunspots(data_file("sunspots.csv")).unwrap();
    assert_eq!(s.len(), 309);
    assert_eq!(s.missing(), 0);
    assert_eq!((s.times()[0], s.values()[0], s.values()[1]), (1700, 5.0, 11.0));
    assert_eq!((s.times()[308], s.values()[308]), (2008, 2.9));
    let windows = s.windows(10, 1).unwrap();
    assert_eq!(windows.len(), 299);
    assert_eq!(windows.target(0), [s.values()[10]]);
}

#[test]
fn bundled_data_is_found_from_any_working_directory() {
    let path = data_file("digits.csv.gz");
    assert!(path.is_absolute() && path.is_file(), "{}", path.display());
}

#[test]
fn words_load_4364_lowercase_words_of_4_to_8_letters() {
    let words = data::words(data_file("words.txt")).unwrap();
    assert_eq!(words.len(), 4364);
    assert_eq!((words[0].as_str(), words[1].as_str(), words[4363].as_str()), ("aardvark", "abandon", "zooming"));
    assert!(words.iter().all(|w| (4..=8).contains(&w.len()) && w.bytes().all(|b| b.is_ascii_lowercase())));
}

#[test]
fn a_word_with_a_capital_an_apostrophe_or_a_comma_names_its_line() {
    for (name, contents, line, column) in [
        ("words-capital.txt", "apple\n\nBanana\n", 3, 1),
        ("words-apostrophe.txt", "apple\npear's\n", 2, 1),
        ("words-space.txt", "apple pie\n", 1, 1),
        ("words-digit.txt", "apple\npear\nplum2\n", 3, 1),
    ] {
        let file = TempFile::new(name, contents.as_bytes());
        let err = data::words(&file.0).unwrap_err();
        assert!(matches!(err.kind, DataErrorKind::Invalid { .. }), "{err}");
        assert_at(&err, Some(line), Some(column));
    }
    let file = TempFile::new("words-comma.txt", b"apple\npear,plum\n");
    let err = data::words(&file.0).unwrap_err();
    assert!(matches!(err.kind, DataErrorKind::ColumnCount { expected: 1, found: 2 }), "{err}");
    assert_at(&err, Some(2), Some(2));
    let file = TempFile::new("words-empty.txt", b"\n\n");
    assert!(matches!(data::words(&file.0).unwrap_err().kind, DataErrorKind::Empty));
    let file = TempFile::new("words-latin1.txt", b"apple\ncaf\xe9\n");
    let err = data::words(&file.0).unwrap_err();
    assert!(matches!(err.kind, DataErrorKind::NotUtf8), "{err}");
    assert_at(&err, Some(2), None);
}
