//! The C ABI: `nn-capi` built as a static library, called by a C program built with
//! `gcc` (`tests/capi/digits.c`), gives the `std` models' outputs bit for bit on the
//! whole digits test split. The `std` models load the same safetensors files at run
//! time; the library has them baked in at compile time.
use std::path::{Path, PathBuf};
use std::process::Command;

use nn_core::data;
use nn_core::io::{load_safetensors, LoadOptions};
use nn_core::prelude::*;
use nn_examples::data_file;

#[path = "../../no-std-check/src/nets.rs"]
#[allow(dead_code)]
mod nets;
use nets::{DigitsCnn, DigitsMlp};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(command: &mut Command) {
    let output = command.output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(output.status.success(), "{command:?}: {}\n{}", output.status, String::from_utf8_lossy(&output.stderr));
}

fn std_model<L: Network>(file: &str) -> Model<L> {
    let mut model = Model::<L>::zeros();
    load_safetensors(&mut model, root().join("no-std-check/weights").join(file), &LoadOptions::default()).unwrap();
    model
}

#[test]
fn c_program_matches_std_models_bit_for_bit() {
    // The release library, in the workspace's target directory (wherever it is:
    // `CARGO_TARGET_TMPDIR` is its `tmp` folder).
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new(cargo).args(["build", "--release", "-p", "nn-capi"]).current_dir(root()));
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().expect("the target directory holds `tmp`");
    let library = target.join("release");
    assert!(library.join("libnn_capi.a").exists());

    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("capi");
    std::fs::create_dir_all(&dir).unwrap();
    let program = dir.join("digits");
    run(Command::new("gcc")
        .arg("-O2")
        .arg("-I")
        .arg(root().join("nn-capi/include"))
        .arg(root().join("tests/capi/digits.c"))
        .arg("-L")
        .arg(&library)
        .args(["-lnn_capi", "-lm", "-lpthread", "-ldl", "-o"])
        .arg(&program));

    let mut digits = data::digits(data_file("digits.csv.gz")).unwrap();
    digits.scale_inputs(1.0 / 16.0);
    let (_, test) = digits.split(0.2, 1);
    assert_eq!(test.len(), 359);
    let bytes: Vec<u8> = test.inputs().iter().flat_map(|v| v.to_ne_bytes()).collect();
    let (inputs, outputs) = (dir.join("inputs.f32"), dir.join("outputs.f32"));
    std::fs::write(&inputs, bytes).unwrap();
    run(Command::new(&program).arg(&inputs).arg(&outputs));

    let found: Vec<f32> = std::fs::read(&outputs)
        .unwrap()
        .chunks_exact(4)
        .map(|b| f32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    assert_eq!(found.len(), test.len() * 20);
    let mlp = std_model::<DigitsMlp>("digits_mlp.safetensors");
    let cnn = std_model::<DigitsCnn>("digits_cnn.safetensors");
    let mut correct = 0;
    for i in 0..test.len() {
        let x = test.input(i);
        let from_mlp = mlp.predict_one(&Tensor::from_slice(x).unwrap());
        let from_cnn = cnn.predict_one(&Tensor::from_slice(x).unwrap());
        let (c_mlp, c_cnn) = found[20 * i..20 * i + 20].split_at(10);
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(c_mlp), bits(&from_mlp[..]), "MLP, test image {i}");
        assert_eq!(bits(c_cnn), bits(&from_cnn[..]), "CNN, test image {i}");
        correct += usize::from(nets::argmax(c_mlp) == test.target(i)[0] as usize);
    }
    // The figures of `firmware_digits`: the library is the trained classifier.
    assert_eq!(correct, 354, "MLP test accuracy {}", correct as f32 / test.len() as f32);
}
