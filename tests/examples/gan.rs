//! The GAN examples, run in release as a reader runs them (`cargo run --release
//! --example NAME`), checked against the bars they promise through the JSON line they
//! print last, and the pictures they write.
//!
//! Unlike the other example tests, these build and run the example binaries in release
//! instead of calling `run` from the test: adversarial training is thousands of steps
//! of several networks, about a minute each in release and several times that in the
//! test profile. The full runs are checked, not shortened ones.
use std::path::Path;
use std::process::Command;

/// Runs `cargo run --release --example <name>` and returns its last line of output.
fn run_example(name: &str) -> String {
    let output = Command::new(env!("CARGO"))
        .args(["run", "--release", "--quiet", "--example", name])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run cargo for {name}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{name} failed: {}\n{stdout}", String::from_utf8_lossy(&output.stderr));
    stdout.lines().last().unwrap_or_default().to_owned()
}

/// The number of field `key` of a one-line JSON object.
fn number(line: &str, key: &str) -> f64 {
    let pattern = format!("\"{key}\":");
    let start = line.find(&pattern).unwrap_or_else(|| panic!("no `{key}` in {line}")) + pattern.len();
    let text: String = line[start..].chars().take_while(|c| !matches!(c, ',' | '}')).collect();
    text.parse().unwrap_or_else(|e| panic!("`{key}` = `{text}` in {line}: {e}"))
}

/// Width and height of a PNG file.
fn png_size(path: &Path) -> (u32, u32) {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let reader = png::Decoder::new(std::io::BufReader::new(file)).read_info().expect("a PNG");
    (reader.info().width, reader.info().height)
}

fn target_file(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target").join(name)
}

#[test]
fn the_number_parser_reads_the_json_line() {
    let line = r#"{"example":"x","share":0.75,"classes":10,"last":-1.5e-3}"#;
    assert_eq!((number(line, "share"), number(line, "classes"), number(line, "last")), (0.75, 10.0, -1.5e-3));
}

#[test]
fn dcgan_samples_are_confidently_recognised_digits_of_every_class() {
    let pictures = [target_file("11_dcgan_progress.png"), target_file("11_dcgan_samples.png")];
    pictures.iter().for_each(|p| drop(std::fs::remove_file(p)));
    let line = run_example("11_dcgan");
    assert!(line.starts_with(r#"{"example":"11_dcgan""#), "{line}");
    let (share, classes) = (number(&line, "confident_share"), number(&line, "classes_present"));
    assert!(share >= 0.7, "confident share {share}: {line}");
    assert!(classes >= 9.0, "classes present {classes}: {line}");
    // The judge itself reads real digits.
    assert!(number(&line, "judge_accuracy") >= 0.97, "{line}");
    // Ten images of 8x8 pixels per row, each pixel 4x4, 1 pixel apart: 8 snapshot rows
    // during training plus the last epoch, and a 10x10 grid of samples.
    assert_eq!(png_size(&pictures[0]), (331, 9 * 33 + 1));
    assert_eq!(png_size(&pictures[1]), (331, 331));
}

#[test]
fn cyclegan_translates_held_out_digits_closer_than_half_the_identity_error() {
    let picture = target_file("12_cyclegan_translations.png");
    let _ = std::fs::remove_file(&picture);
    let line = run_example("12_cyclegan");
    assert!(line.starts_with(r#"{"example":"12_cyclegan""#), "{line}");
    let translation = number(&line, "translation_error");
    let identity = number(&line, "identity_error");
    assert!(translation < 0.5 * identity, "translation error {translation} vs identity error {identity}: {line}");
    assert!(number(&line, "cycle_error") < 0.5 * identity, "{line}");
    // Four rows (originals, translations, true transformations, reconstructions) of ten.
    assert_eq!(png_size(&picture), (331, 4 * 33 + 1));
}
