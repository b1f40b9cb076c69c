//! The diagnostics of `network!` and `include_weights!`: one case per error under
//! `tests/ui/<topic>/`, with the expected compiler output beside it, and passing cases
//! under `tests/ui/pass/` and `tests/ui/attention/pass/`.
use std::io::Write;

const TOPICS: [&str; 13] = [
    "shapes",
    "options",
    "names",
    "composition",
    "assertions",
    "syntax",
    "rnn",
    "conv",
    "attention",
    "weights",
    "graph",
    "stack",
    "tokens",
];

#[test]
fn ui() {
    let count = |dir: String| {
        std::fs::read_dir(dir)
            .map_or(0, |d| d.flatten().filter(|e| e.path().extension().is_some_and(|x| x == "rs")).count())
    };
    let failing: usize = TOPICS.iter().map(|topic| count(format!("tests/ui/{topic}"))).sum();
    let passing = count("tests/ui/pass".into()) + count("tests/ui/attention/pass".into());
    // Straight to the terminal: the test harness would hold back `eprintln!` until the end.
    let _ = writeln!(
        std::io::stderr(),
        "trybuild: building the library for {passing} passing and {failing} compile-fail cases, then building \
         all cases in one batch, the longest test of the suite; each result is printed when the batch is done"
    );
    // trybuild builds its cases with cargo's default `dev` profile; debug information
    // there only slows building and linking the library again for them.
    if std::env::var_os("CARGO_PROFILE_DEV_DEBUG").is_none() {
        std::env::set_var("CARGO_PROFILE_DEV_DEBUG", "false");
    }
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.pass("tests/ui/attention/pass/*.rs");
    for topic in TOPICS {
        t.compile_fail(format!("tests/ui/{topic}/*.rs"));
    }
}
