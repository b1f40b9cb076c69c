#!/usr/bin/env python3
"""PyTorch side of `examples/14_import_pytorch.rs`: a digits classifier exchanged as
safetensors in both directions.

    python3 tools/interop/torch_digits.py export
    python3 tools/interop/torch_digits.py check target/14_import_pytorch/trained.safetensors

`export` trains `TorchDigits` (below) in PyTorch on the bundled digits and writes

* `examples/data/torch_digits.safetensors`: its `state_dict` (`fc1.weight` `[128, 64]`,
  `fc1.bias`, `fc2.*`, `fc3.*`, float32), saved with `safetensors.torch.save_file`;
* `examples/data/torch_digits_test.safetensors`: the test images `inputs` `[359, 64]`
  (pixels / 16), their `labels` `[359]` (the digit) and `rows` `[359]` (their row in
  the CSV file), both as float32, and PyTorch's outputs on them, `logits` `[359, 10]`
  and `probabilities` `[359, 10]` (softmax of the logits), computed in float32 in
  `eval()` mode as a user's model computes them.

Running `export` again reproduces every tensor bit for bit (seeded, one thread,
deterministic algorithms); only the order of the metadata in the header may differ.

The split is by position in `examples/data/digits.csv.gz`: the rows whose index is 4
modulo 5 (4, 9, 14, ..., 359 rows, 20 %) are the test images, the other 1438 train.

`check` is the reverse direction. The Rust example trains the same network and saves
it (`nn_core::io::save_safetensors`) together with its own logits on the test images
(`<model>` and `<model stem>_outputs.safetensors`); `check` loads the model file
into `TorchDigits` with `load_state_dict(strict=True)` (every name and shape must match),
runs the test images and compares. It prints one JSON line and exits with status 1 if
the largest absolute difference of the logits exceeds 1e-5 or an argmax differs.
"""
from __future__ import annotations

import argparse
import csv
import gzip
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "examples" / "data"
DIGITS = DATA / "digits.csv.gz"
WEIGHTS = DATA / "torch_digits.safetensors"
TEST = DATA / "torch_digits_test.safetensors"

ROWS = 1797
# Every TEST_EVERY-th row, starting at TEST_EVERY - 1, is a test image.
TEST_EVERY = 5
SEED = 14
EPOCHS = 40
BATCH = 32
LEARNING_RATE = 1e-3
# Label smoothing keeps the logits small (below about 6 in magnitude instead of about
# 35), so that float32 rounding, which grows with them, stays far below the bar.
LABEL_SMOOTHING = 0.1
# The bars of the example, for both directions.
MAX_ABS_DIFF = 1e-5


class TorchDigits(nn.Module):
    """64 pixels -> 128 ReLU -> 64 ReLU -> 10 logits, the `network!` of the example:

        fc1: Dense { units: 128, activation: Relu },
        fc2: Dense { units: 64, activation: Relu },
        fc3: Dense { units: 10 },
    """

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(64, 128)
        self.fc2 = nn.Linear(128, 64)
        self.fc3 = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


def read_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """All 1797 rows: pixels / 16 as float32 `[1797, 64]` and labels `[1797]`."""
    with gzip.open(DIGITS, "rt") as f:
        rows = [[int(v) for v in row] for row in csv.reader(f) if row]
    table = torch.tensor(rows, dtype=torch.float32)
    return table[:, :64] / 16.0, table[:, 64].to(torch.int64)


def outputs(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(inputs)


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return (logits.argmax(dim=1) == labels).float().mean().item()


def export() -> None:
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    x, y = read_digits()
    assert len(x) == ROWS, len(x)
    is_test = torch.arange(ROWS) % TEST_EVERY == TEST_EVERY - 1
    test_rows = torch.nonzero(is_test).flatten()
    x_train, y_train = x[~is_test], y[~is_test]
    x_test, y_test = x[is_test], y[is_test]

    model = TorchDigits()
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=LABEL_SMOOTHING)
    for _ in range(EPOCHS):
        model.train()
        order = torch.randperm(len(x_train))
        for start in range(0, len(x_train), BATCH):
            batch = order[start : start + BATCH]
            optimizer.zero_grad()
            loss_fn(model(x_train[batch]), y_train[batch]).backward()
            optimizer.step()

    logits = outputs(model, x_test)
    test_accuracy = accuracy(logits, y_test)
    metadata = {
        "torch_version": torch.__version__,
        "generator": "tools/interop/torch_digits.py export",
        "module": "TorchDigits: fc1 Linear(64, 128), ReLU, fc2 Linear(128, 64), ReLU, fc3 Linear(64, 10)",
        "training": f"Adam lr={LEARNING_RATE}, {EPOCHS} epochs, batch {BATCH}, seed {SEED}, "
        f"CrossEntropyLoss(label_smoothing={LABEL_SMOOTHING})",
        "split": f"rows of digits.csv.gz with index % {TEST_EVERY} == {TEST_EVERY - 1} test, the others train",
        "test_accuracy": f"{test_accuracy:.6f}",
    }
    save_file(model.state_dict(), WEIGHTS, metadata=metadata)
    save_file(
        {
            "inputs": x_test.contiguous(),
            "labels": y_test.to(torch.float32),
            "rows": test_rows.to(torch.float32),
            "logits": logits.contiguous(),
            "probabilities": torch.softmax(logits, dim=1).contiguous(),
        },
        TEST,
        metadata=metadata,
    )
    # The files read back into a fresh module give the same outputs, bit for bit.
    fresh = TorchDigits()
    fresh.load_state_dict(load_file(WEIGHTS), strict=True)
    assert torch.equal(outputs(fresh, load_file(TEST)["inputs"]), logits)
    print(json.dumps({"written": [str(p.relative_to(ROOT)) for p in (WEIGHTS, TEST)], "test_accuracy": test_accuracy}))


def check(model_file: Path, outputs_file: Path | None) -> int:
    torch.set_num_threads(1)
    outputs_file = outputs_file or model_file.with_name(model_file.stem + "_outputs.safetensors")
    test = load_file(TEST)
    model = TorchDigits()
    # strict: a missing or unexpected name, or a different shape, raises.
    model.load_state_dict(load_file(model_file), strict=True)
    theirs = load_file(outputs_file)["logits"]
    ours = outputs(model, test["inputs"])
    if theirs.shape != ours.shape:
        print(f"{outputs_file}: logits of shape {list(theirs.shape)}, expected {list(ours.shape)}", file=sys.stderr)
        return 1
    max_abs_diff = (theirs - ours).abs().max().item()
    agreement = (theirs.argmax(dim=1) == ours.argmax(dim=1)).float().mean().item()
    labels = test["labels"].to(torch.int64)
    report = {
        "check": "rust_to_pytorch",
        "max_abs_diff": max_abs_diff,
        "argmax_agreement": agreement,
        "pytorch_test_accuracy": accuracy(ours, labels),
        "rust_test_accuracy": accuracy(theirs, labels),
    }
    print(json.dumps(report))
    return 0 if max_abs_diff <= MAX_ABS_DIFF and agreement == 1.0 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("export", help="train in PyTorch and write the files of examples/data")
    checking = commands.add_parser("check", help="load a model saved by the Rust example and compare outputs")
    checking.add_argument("model", type=Path, help="the safetensors file the example saved")
    checking.add_argument("outputs", type=Path, nargs="?", help="its logits (default: <model stem>_outputs.safetensors)")
    args = parser.parse_args()
    if args.command == "export":
        export()
        return 0
    return check(args.model, args.outputs)


if __name__ == "__main__":
    sys.exit(main())
