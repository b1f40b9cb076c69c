//! `docs/concepts.md` points at real places: every example line it links exists and
//! is not blank, and every test it names is a `#[test]` function of the file it names.
use std::path::Path;

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The text between each `open` and the next `close` after it.
fn spans<'a>(text: &'a str, open: &'a str, close: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    text.match_indices(open).filter_map(move |(at, _)| {
        let rest = &text[at + open.len()..];
        rest.find(close).map(|end| &rest[..end])
    })
}

#[test]
fn concept_index_links_existing_example_lines() {
    let index = read("docs/concepts.md");
    let mut links = 0;
    for link in spans(&index, "](../examples/", ")") {
        let (file, line) = link.split_once("#L").unwrap_or_else(|| panic!("no line in link {link}"));
        let line: usize = line.parse().unwrap_or_else(|_| panic!("line of {link}"));
        let source = read(&format!("examples/{file}"));
        let text = source.lines().nth(line - 1).unwrap_or_else(|| panic!("{file} has no line {line}"));
        let code = text.trim();
        assert!(code.chars().any(char::is_alphanumeric), "examples/{file}:{line} is blank: {text:?}");
        links += 1;
    }
    assert!(links >= 30, "only {links} example links found");
}

#[test]
fn concept_index_names_existing_tests() {
    let index = read("docs/concepts.md");
    let mut named = 0;
    for (at, _) in index.match_indices("`tests/") {
        // A reference reads `tests/<file>.rs` `<test name>`.
        let rest = &index[at + 1..];
        let Some((file, after)) = rest.split_once("` `") else { continue };
        if !file.ends_with(".rs") || file.contains('`') {
            continue;
        }
        let reference = file.trim_start_matches("tests/");
        let test = &after[..after.find('`').expect("a closing backtick")];
        let source = read(&format!("tests/{reference}"));
        let definition = format!("fn {test}(");
        let at = source.find(&definition).unwrap_or_else(|| panic!("tests/{reference} has no fn {test}"));
        let before = &source[..at];
        let attribute = before.rfind("#[test]").expect("a #[test] before the function");
        assert!(!before[attribute..].contains("\n}\n"), "tests/{reference}: fn {test} is not a #[test] function");
        named += 1;
    }
    assert!(named >= 30, "only {named} test references found");
}
