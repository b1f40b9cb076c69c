"""Writes the PyTorch-made safetensors files that `tests/io/roundtrip.rs` loads.

Run from the repository root: `python3 tests/io_fixtures/generate.py`. Needs torch and
safetensors. The files are committed, so the tests need no Python.

- `torch_classifier.safetensors`: `safetensors.torch.save_file(module.state_dict())` of
  the module below, the `Classifier` of `tests/common/io_nets.rs`, with the metadata
  `{"format": "pt"}` that PyTorch tooling writes.
- `torch_classifier_io.safetensors`: an `input` batch `[3, 64]` and the module's
  `output` `[3, 10]` for it, computed in float64 and stored as float32.
- `torch_dtypes.safetensors`: the state of `Centered` (`norm.weight [8]`,
  `norm.running_mean [8]`, `fc.weight [3, 8]`, `fc.bias [3]`) stored as F16, BF16 and
  F64 under the prefixes `f16.`, `bf16.`, `f64.`, and the same values converted to
  float32 by torch under `f16_as_f32.`, `bf16_as_f32.`, `f64_as_f32.`. `fc.weight`
  holds edge cases: subnormal and largest halves, negative zero, values that round.
- `torch_batchnorm.safetensors`: the `state_dict` of `bn: BatchNorm1d(4)` then
  `fc: Linear(4, 2)` after three training batches (`bn.num_batches_tracked` is the
  `I64` scalar 3), with an `input` batch `[5, 4]` and the inference-mode `output`
  `[5, 2]` stored under the `__` prefix, which a model load ignores.
"""
import torch
from safetensors.torch import save_file

torch.manual_seed(20261127)


class Encoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(64, 32)
        self.fc2 = torch.nn.Linear(32, 16)

    def forward(self, x):
        return torch.tanh(self.fc2(torch.relu(self.fc1(x))))


class Classifier(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = Encoder()
        self.head = torch.nn.Linear(16, 10)

    def forward(self, x):
        return self.head(self.encoder(x))


model = Classifier()
save_file(model.state_dict(), "tests/io_fixtures/torch_classifier.safetensors", metadata={"format": "pt"})

x = torch.rand(3, 64) * 2 - 1
with torch.no_grad():
    y = model.double()(x.double()).float()
save_file({"input": x, "output": y}, "tests/io_fixtures/torch_classifier_io.safetensors")

special = torch.tensor(
    [
        6e-8, -6e-8, 3.1e-5, 6.1e-5, 65504.0, -65504.0, -0.0, 0.0,
        1 / 3, -2 / 3, 1e-3, 3.14159265, 2.718281828, 1e30, -1e-30, 123456.789,
        0.1, 0.2, 0.3, 1.0009765625, 1.00048828125, 1.0 + 2**-8, 1.0 + 2**-9, -7.0,
    ],
    dtype=torch.float64,
).reshape(3, 8)
state = {
    "norm.weight": torch.randn(8, dtype=torch.float64),
    "norm.running_mean": torch.randn(8, dtype=torch.float64) * 10,
    "fc.weight": special,
    "fc.bias": torch.randn(3, dtype=torch.float64) * 1e-3,
}
tensors = {}
for tag, dtype in [("f16", torch.float16), ("bf16", torch.bfloat16), ("f64", torch.float64)]:
    for name, value in state.items():
        stored = value.to(dtype)
        tensors[f"{tag}.{name}"] = stored
        tensors[f"{tag}_as_f32.{name}"] = stored.to(torch.float32)
save_file(tensors, "tests/io_fixtures/torch_dtypes.safetensors", metadata={"format": "pt"})


class Normed(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.bn = torch.nn.BatchNorm1d(4)
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(self.bn(x))


normed = Normed()
with torch.no_grad():
    normed.bn.weight.copy_(torch.rand(4) + 0.5)
    normed.bn.bias.copy_(torch.randn(4) * 0.1)
    normed.train()
    for _ in range(3):
        normed(torch.randn(6, 4) * 2 + 1)
    normed.eval()
    x = torch.randn(5, 4)
    y = normed.double()(x.double()).float()
    normed.float()
tensors = dict(normed.state_dict())
assert tensors["bn.num_batches_tracked"].dtype == torch.int64
tensors["__input"] = x
tensors["__output"] = y
save_file(tensors, "tests/io_fixtures/torch_batchnorm.safetensors", metadata={"format": "pt"})
