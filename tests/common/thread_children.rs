//! The harness of the tests that compare one thread and two bit for bit: an ignored
//! test of the same binary computes the outputs in a child process under
//! `MATMUL_NUM_THREADS` (with the `threading` feature; without it every child runs on
//! one thread) and prints their bits; the comparing test runs it once per thread count
//! and compares the lines. The child inherits the environment, `NN_ISA` included.
use std::process::Command;

/// Whether this process is a child started by [`bits_under_threads`] with `marker`.
pub fn is_child(marker: &str) -> bool {
    std::env::var_os(marker).is_some()
}

/// Prints `values` (finite, or the test fails naming `name`) as one line of their
/// bits, `bits <name>: <hex> <hex> ...`.
pub fn print_bits(name: &str, values: &[f32]) {
    assert!(values.iter().all(|v| v.is_finite()), "{name}: not finite");
    let bits: Vec<String> = values.iter().map(|v| format!("{:08x}", v.to_bits())).collect();
    println!("bits {name}: {}", bits.join(" "));
}

/// Runs the ignored test `test` (its path in this binary) in a child process with
/// `MATMUL_NUM_THREADS=threads` and `marker` set, and returns the lines it printed
/// with [`print_bits`]. Fails if the child fails.
pub fn bits_under_threads(test: &str, marker: &str, threads: &str) -> Vec<String> {
    let exe = std::env::current_exe().expect("the test binary's path");
    let run = Command::new(&exe)
        .args([test, "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env("MATMUL_NUM_THREADS", threads)
        .env(marker, "1")
        .output()
        .expect("the test binary runs");
    assert!(run.status.success(), "{threads} thread(s): {}", String::from_utf8_lossy(&run.stderr));
    // (libtest prints the test's name before the child's first line, on the same line:
    // the children print a line of their own first.)
    String::from_utf8_lossy(&run.stdout).lines().filter(|l| l.starts_with("bits ")).map(str::to_owned).collect()
}

/// [`bits_under_threads`] with one thread and with two: fails unless both children
/// printed `lines` lines and the same bits in each, naming the first line that differs.
pub fn assert_one_and_two_threads_agree(test: &str, marker: &str, lines: usize) {
    let (one, two) = (bits_under_threads(test, marker, "1"), bits_under_threads(test, marker, "2"));
    assert_eq!(one.len(), lines, "lines of outputs of one thread");
    assert_eq!(two.len(), lines, "lines of outputs of two threads");
    for (a, b) in one.iter().zip(&two) {
        let name = a.split(':').next().unwrap_or_default();
        assert!(a == b, "{name}: one thread and two differ");
    }
}
