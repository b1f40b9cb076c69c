//! Data files that announce huge sizes, hold more text than the reader accepts, or
//! write a label that only rounds to a class: typed errors, with memory that follows
//! the data actually read.
use std::path::PathBuf;

use nn_core::data::{self, CsvReader, DataErrorKind, DEFAULT_LIMIT};
use nn_examples::data_file;

/// A file with `contents` in the temporary directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &[u8]) -> Self {
        let path = std::env::temp_dir().join(format!("nn-hardening-data-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).expect("write a temporary file");
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn an_iris_header_announcing_2_to_the_40_features_is_a_column_error() {
    // Used to reserve 4 TB from the header before reading a row, and abort.
    let file = TempFile::new("iris-huge.csv", b"1,1099511627776,a,b\n1,2,0\n");
    let err = data::iris(&file.0).unwrap_err();
    assert!(matches!(err.kind, DataErrorKind::ColumnCount { expected: 1_099_511_627_777, found: 3 }), "{err}");
    assert_eq!((err.line, err.column), (Some(2), Some(4)));

    let file = TempFile::new("iris-max.csv", format!("1,{},a,b\n1,2,0\n", usize::MAX).as_bytes());
    let err = data::iris(&file.0).unwrap_err();
    assert!(matches!(err.kind, DataErrorKind::ColumnCount { found: 3, .. }), "{err}");

    let file = TempFile::new("iris-rows.csv", b"18446744073709551615,2,a,b\n1,2,0\n");
    let err = data::iris(&file.0).unwrap_err();
    assert!(matches!(err.kind, DataErrorKind::RowCount { expected: usize::MAX, found: 1 }), "{err}");
}

#[test]
fn more_text_than_the_limit_is_a_typed_error_naming_the_limit() {
    // The bundled digits hold 264,712 bytes of text once decompressed.
    assert_eq!(DEFAULT_LIMIT, 64 << 20);
    let err = CsvReader::new().limit(100_000).read(data_file("digits.csv.gz")).unwrap_err();
    assert!(matches!(err.kind, DataErrorKind::TooLarge { limit: 100_000 }), "{err}");
    let line = err.line.unwrap();
    assert!((300..=700).contains(&line), "{err}");
    assert!(err.to_string().ends_with("the file holds more than 100000 bytes of text (the reader's limit)"), "{err}");
    let table = CsvReader::new().limit(264_712).read(data_file("digits.csv.gz")).unwrap();
    assert_eq!(table.len(), 1797);
    assert!(CsvReader::new().limit(264_711).read(data_file("digits.csv.gz")).is_err());
}

#[test]
fn a_label_that_rounds_to_a_class_is_out_of_range() {
    let row: Vec<String> = (0..64).map(|_| "0".to_string()).collect();
    for (label, ok) in [("9", true), ("9.0", true), ("9.0000001", false), ("8.99999999", false), ("+9", false)] {
        let file = TempFile::new("label.csv", format!("{},{label}\n", row.join(",")).as_bytes());
        match data::digits(&file.0) {
            Ok(d) => {
                assert!(ok, "{label} accepted");
                assert_eq!(d.targets(), [9.0]);
            }
            Err(err) => {
                assert!(!ok, "{label}: {err}");
                assert!(matches!(&err.kind, DataErrorKind::LabelOutOfRange { found, classes: 10 } if found == label));
                assert_eq!((err.line, err.column), (Some(1), Some(65)));
            }
        }
    }
}

#[test]
fn a_malformed_row_stops_a_loader_at_that_row() {
    // 200,000 lines of commas after a bad first line: the loader stops at line 1.
    let mut text = String::from("1,2\n");
    for _ in 0..200_000 {
        text.push_str(",,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,\n");
    }
    let file = TempFile::new("commas.csv", text.as_bytes());
    let err = data::digits(&file.0).unwrap_err();
    assert!(matches!(err.kind, DataErrorKind::ColumnCount { expected: 65, found: 2 }), "{err}");
    assert_eq!(err.line, Some(1));
}
