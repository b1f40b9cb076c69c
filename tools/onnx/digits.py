#!/usr/bin/env python3
"""PyTorch side of `examples/16_import_onnx.rs`: a digits CNN trained in PyTorch and
exported to ONNX.

    python3 tools/onnx/digits.py

trains `DigitCnn` (below) on the bundled digits (the rows whose index is not 4 modulo
5; the other 359 rows are the test images, the split of `tools/interop/torch_digits.py`),
exports it with `torch.onnx.export` to `examples/data/onnx_digits.onnx`, runs
onnxruntime on the test images and writes `examples/data/onnx_digits_test.safetensors`:
the test images `inputs` `[359, 1, 8, 8]` (pixels / 16), their `labels` `[359]` (as
float32) and onnxruntime's `logits` `[359, 10]`.

The example imports the model with `nn-import` (the committed import is
`examples/imported/digit_cnn.rs` and `examples/data/onnx_digits.safetensors`;
`nn-import/tests/regenerate.rs` checks that importing again gives the same files) and
compares its logits with onnxruntime's. Needs torch, onnx, onnxscript, onnxruntime.
"""
from __future__ import annotations

import csv
import gzip
import importlib.util
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "examples" / "data"
SEED = 16
EPOCHS = 30
TEST_EVERY = 5

spec = importlib.util.spec_from_file_location("generate", Path(__file__).with_name("generate.py"))
generate = importlib.util.module_from_spec(spec)
spec.loader.exec_module(generate)


class DigitCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(16 * 4 * 4, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.pool(torch.relu(self.conv2(x)))
        return self.fc2(torch.relu(self.fc1(torch.flatten(x, 1))))


def load():
    with gzip.open(DATA / "digits.csv.gz", "rt") as f:
        rows = [[int(v) for v in row] for row in csv.reader(f) if row]
    table = torch.tensor(rows, dtype=torch.float32)
    return (table[:, :64] / 16.0).reshape(-1, 1, 8, 8), table[:, 64].to(torch.int64)


def main() -> None:
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    images, labels = load()
    index = torch.arange(len(images))
    test, train = index % TEST_EVERY == TEST_EVERY - 1, index % TEST_EVERY != TEST_EVERY - 1
    model = DigitCnn()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss = nn.CrossEntropyLoss(label_smoothing=0.1)
    x, y = images[train], labels[train]
    for _ in range(EPOCHS):
        model.train()
        order = torch.randperm(len(x))
        for start in range(0, len(x), 32):
            batch = order[start : start + 32]
            optimizer.zero_grad()
            loss(model(x[batch]), y[batch]).backward()
            optimizer.step()
    model.eval()
    path = DATA / "onnx_digits.onnx"
    with torch.no_grad():
        generate.export(model, (1, 8, 8), path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs = images[test].numpy()
    logits = np.concatenate([session.run(None, {"x": inputs[i : i + 1]})[0] for i in range(len(inputs))])
    accuracy = float((logits.argmax(1) == labels[test].numpy()).mean())
    generate.save_safetensors(
        DATA / "onnx_digits_test.safetensors",
        {"inputs": inputs, "labels": labels[test].numpy().astype(np.float32), "logits": logits},
    )
    print(f"onnxruntime test accuracy {accuracy:.4f} on {len(inputs)} images; {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
