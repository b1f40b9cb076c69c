//! The diagnostics of `network!`: one case per error under `tests/ui/<topic>/`, with
//! the expected compiler output beside it, and passing cases under `tests/ui/pass/`.
#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.pass("tests/ui/attention/pass/*.rs");
    for topic in [
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
    ] {
        t.compile_fail(format!("tests/ui/{topic}/*.rs"));
    }
}
