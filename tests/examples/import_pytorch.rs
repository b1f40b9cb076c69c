//! The PyTorch interop example, checked against the figures it promises: PyTorch's
//! network runs here with the same outputs, and the network trained here is saved as
//! PyTorch's `state_dict`.
//!
//! The PyTorch side of the way back (`tools/interop/torch_digits.py check`) runs when
//! `python3` can import `torch` and `safetensors`; without them, the Rust side still
//! checks that the saved file has exactly the names, shapes and dtypes of PyTorch's
//! committed `state_dict` file and loads back bit for bit.

#[allow(dead_code)]
#[path = "../../examples/14_import_pytorch.rs"]
mod example;

use std::path::Path;
use std::process::Command;

use example::{header_of, read_tensors, run, EPOCHS, MAX_ABS_DIFF, TORCH_WEIGHTS};
use nn_examples::data_file;

/// Whether `python3` with PyTorch and safetensors is available.
fn python_with_torch() -> bool {
    Command::new("python3").args(["-c", "import torch, safetensors"]).output().is_ok_and(|out| out.status.success())
}

#[test]
fn pytorch_network_runs_here_and_ours_runs_in_pytorch() {
    let folder = Path::new(env!("CARGO_TARGET_TMPDIR")).join("14_import_pytorch");
    let report = run(EPOCHS, &folder).unwrap();

    // PyTorch to here.
    assert_eq!(report.loaded, ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias"]);
    assert_eq!(report.test_samples, 359);
    assert!(report.inputs_match_data, "the committed test images are not the digits file's test rows");
    assert!(report.max_abs_diff <= MAX_ABS_DIFF, "logits differ from PyTorch's by {}", report.max_abs_diff);
    assert!(report.max_abs_diff_probabilities <= MAX_ABS_DIFF, "{}", report.max_abs_diff_probabilities);
    assert_eq!(report.argmax_agreement, 1.0);
    assert_eq!(report.test_accuracy, report.pytorch_test_accuracy);
    assert!(report.pytorch_test_accuracy >= 0.97, "{}", report.pytorch_test_accuracy);

    // Here to PyTorch, the Rust side.
    assert!(report.trained_accuracy >= 0.97, "trained here: test accuracy {}", report.trained_accuracy);
    assert!(report.same_names_and_shapes, "{:?}", header_of(&report.trained_file).unwrap());
    assert_eq!(header_of(&report.trained_file).unwrap(), header_of(&data_file(TORCH_WEIGHTS)).unwrap());
    assert!(report.round_trip_exact);
    let outputs = read_tensors(&report.trained_outputs).unwrap();
    assert_eq!(outputs["logits"].0, [359, 10]);

    // Here to PyTorch, PyTorch's side.
    if !python_with_torch() {
        eprintln!("python3 with torch and safetensors is not available: PyTorch's side of the check is skipped");
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/interop/torch_digits.py");
    let out = Command::new("python3").arg(script).arg("check").arg(&report.trained_file).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("\"argmax_agreement\": 1.0"), "{stdout}");
}
