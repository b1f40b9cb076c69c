//! Puts the board's memory layout (`boards/<board>.x`) on the linker's path as
//! `memory.x` and links with the runtime's script: each target is one board.
use std::{env, fs, path::PathBuf};

fn main() {
    println!("cargo:rustc-check-cfg=cfg(board, values(\"mps2-an386\", \"microbit\", \"virt\"))");
    println!("cargo:rerun-if-changed=boards");
    let target = env::var("TARGET").unwrap_or_default();
    let board = match target.as_str() {
        "thumbv7em-none-eabihf" => "mps2-an386",
        "thumbv6m-none-eabi" => "microbit",
        t if t.starts_with("riscv32") => "virt",
        // The host (`cargo check`, `cargo clippy` without a target): nothing to link.
        _ => return,
    };
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let layout = fs::read(format!("boards/{board}.x")).expect("the board's memory layout");
    fs::write(out.join("memory.x"), layout).expect("OUT_DIR is writable");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rustc-cfg=board=\"{board}\"");
    if board == "virt" {
        // riscv-rt's `link.x` expects the memory regions to be defined before it.
        println!("cargo:rustc-link-arg-bins=-Tmemory.x");
    }
    println!("cargo:rustc-link-arg-bins=-Tlink.x");
}
