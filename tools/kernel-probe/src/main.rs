//! `kernel-probe FIRST COUNT`: runs the random kernel cases `FIRST..FIRST + COUNT` of
//! `nn-core/src/kernels/tests/cases.rs` (the generator of `nn-core`'s unit test
//! `kernels::tests::bounds`), printing
//! `case N` to stderr before each, so that a report of valgrind (on the same stream) or
//! a crash can be traced to its case, and a summary line at the end:
//! `cases C correct K rejected R wrong W accepted A`. Wrong and accepted cases are
//! printed with their inputs; then whether the CPU (as valgrind presents it) has the
//! AVX2 kernels' features.
use std::io::Write;

// The cases name the kernels and the random source as `crate::kernels` and
// `crate::rng`, their paths inside `nn-core`.
use nn_core::{kernels, rng};

#[path = "../../../nn-core/src/kernels/tests/cases.rs"]
mod kernel_cases;
use kernel_cases::Outcome;

fn main() {
    let args: Vec<u64> = std::env::args().skip(1).map(|a| a.parse().expect("FIRST COUNT")).collect();
    let [first, count] = args[..] else { panic!("usage: kernel-probe FIRST COUNT") };
    std::panic::set_hook(Box::new(|_| {}));
    let (mut correct, mut rejected, mut wrong, mut accepted) = (0u64, 0u64, 0u64, 0u64);
    let mut err = std::io::stderr().lock();
    for seed in first..first + count {
        writeln!(err, "case {seed}").unwrap();
        err.flush().unwrap();
        match kernel_cases::run(seed) {
            (_, Outcome::Correct) => correct += 1,
            (_, Outcome::Rejected) => rejected += 1,
            (kernel, Outcome::Wrong(what)) => {
                wrong += 1;
                writeln!(err, "wrong {seed} {kernel}: {what}").unwrap();
            }
            (kernel, Outcome::Accepted(what)) => {
                accepted += 1;
                writeln!(err, "accepted {seed} {kernel}: {what}").unwrap();
            }
        }
    }
    println!("cases {count} correct {correct} rejected {rejected} wrong {wrong} accepted {accepted}");
    #[cfg(target_arch = "x86_64")]
    println!("avx2+fma {}", std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma"));
}
