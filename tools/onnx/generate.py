#!/usr/bin/env python3
"""Golden fixtures of the ONNX importer (`nn-import`): small PyTorch models exported
with `torch.onnx.export`, and onnxruntime's outputs on seeded inputs.

    python3 tools/onnx/generate.py [NAME...]

writes (every model, or only those named), for each model NAME below, into `tests/import/models/`:

* `NAME.onnx`: the model, exported in `eval()` mode with a batch of one;
* `NAME.safetensors`: `inputs` `[samples, ...]` (float32; for `tokens`, the int64
  token ids as float32) and onnxruntime's `outputs` on them, each sample run on its
  own (the model's batch is one).

and `unsupported.onnx`, a model with several operators the library lacks, whose
import must list them all, and `dynamic_time.onnx`, an LSTM whose time axis is
dynamic, whose import must ask for it to be fixed; `pair.onnx`, a model of two
inputs and two outputs (its fixture `pair.safetensors` holds `inputs_a`, `inputs_b`,
`outputs_score` and `outputs_rec`); and `attention_torchscript.onnx` and
`attention_scaled.onnx`, attentions the importer must report. The tests (`tests/import/`) need neither torch nor
onnxruntime: they import the committed `.onnx` files and compare with the committed
outputs. Needs torch, onnx, onnxscript and onnxruntime.
"""
from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "import" / "models"
SAMPLES = 5


def save_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> None:
    """A safetensors file of float32 tensors (the format's header, then the data)."""
    header, data, offset = {}, b"", 0
    for name, array in tensors.items():
        raw = np.ascontiguousarray(array, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [offset, offset + len(raw)]}
        data += raw
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":"))
    text += " " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text.encode() + data)


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(16, 32)
        self.fc2 = nn.Linear(32, 16)
        self.out = nn.Linear(16, 4)

    def forward(self, x):
        return self.out(torch.tanh(self.fc2(torch.relu(self.fc1(x)))))


class CnnBn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(6)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(6, 8, 3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8 * 3 * 3, 10)

    def forward(self, x):
        x = self.pool(torch.relu(self.bn1(self.conv1(x))))
        x = nn.functional.leaky_relu(self.bn2(self.conv2(x)), 0.2)
        return torch.softmax(self.fc(torch.flatten(x, 1)), dim=1)


class Cnn1d(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv1d(3, 8, 5, stride=2, padding=2)
        self.pool = nn.AvgPool1d(2)
        self.conv2 = nn.Conv1d(8, 8, 3, dilation=2)
        self.gap = nn.AdaptiveAvgPool1d(1)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        x = self.pool(nn.functional.elu(self.conv1(x)))
        x = self.gap(torch.sigmoid(self.conv2(x)))
        return self.fc(torch.flatten(x, 1))


class LstmNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(6, 12, batch_first=True)
        self.fc = nn.Linear(12, 3)

    def forward(self, x):
        _, (h, _) = self.lstm(x)
        return self.fc(h[-1])


class BiGru(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(5, 8, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        out, _ = self.gru(x)
        return self.fc(out)


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Linear(12, 16)
        self.fc1 = nn.Linear(16, 16)
        self.fc2 = nn.Linear(16, 16)
        self.side = nn.Linear(16, 4)
        self.head = nn.Linear(20, 5)

    def forward(self, x):
        h = torch.relu(self.stem(x))
        y = torch.relu(h + self.fc2(torch.relu(self.fc1(h))))
        return self.head(torch.cat([y, self.side(h) * torch.sigmoid(self.side(h))], dim=1))


class Autoencoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(20, 8), nn.ReLU(), nn.Linear(8, 3))
        self.decoder = nn.Sequential(nn.Linear(3, 8), nn.GELU(), nn.Linear(8, 20), nn.Sigmoid())

    def forward(self, x):
        return self.decoder(self.encoder(x))


class Decoder(nn.Module):
    """A DCGAN-like decoder: dense, reshape, transposed convolutions."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 8 * 3 * 3)
        self.up1 = nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1)
        self.up2 = nn.ConvTranspose2d(4, 1, 3, stride=2, padding=1, output_padding=1)

    def forward(self, z):
        x = torch.relu(self.fc(z)).reshape(-1, 8, 3, 3)
        return torch.sigmoid(self.up2(torch.relu(self.up1(x))))


class TokenGru(nn.Module):
    """Token ids through an embedding, a layer norm and a GRU (`nn.RNN` exports as an
    unrolled loop of `Slice`, `MatMul` and `Tanh`, not as ONNX `RNN`)."""

    VOCAB = 12

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(self.VOCAB, 6)
        self.norm = nn.LayerNorm(6)
        self.gru = nn.GRU(6, 8, batch_first=True)
        self.fc = nn.Linear(8, 3)

    def forward(self, tokens):
        _, h = self.gru(self.norm(self.embed(tokens)))
        return self.fc(h[-1])


class Grouped(nn.Module):
    """A grouped convolution, a depthwise one and a pointwise one (a separable block)."""

    def __init__(self):
        super().__init__()
        self.grouped = nn.Conv2d(4, 8, 3, padding=1, groups=2)
        self.depthwise = nn.Conv2d(8, 8, 3, stride=2, groups=8, bias=False)
        self.pointwise = nn.Conv2d(8, 4, 1)
        self.temporal = nn.Conv1d(4, 6, 3, groups=2)
        self.fc = nn.Linear(6 * 7, 3)

    def forward(self, x):
        x = torch.relu(self.grouped(x))
        x = torch.relu(self.pointwise(torch.relu(self.depthwise(x))))
        x = torch.tanh(self.temporal(x.reshape(-1, 4, 9)))
        return self.fc(torch.flatten(x, 1))


class Transformer(nn.Module):
    """A Transformer encoder classifier: a feature projection, two post-norm encoder
    layers, a multi-head attention of its own and a dense head over the flattened
    sequence."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(5, 8)
        layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.attn = nn.MultiheadAttention(8, 4, batch_first=True)
        self.head = nn.Linear(6 * 8, 3)

    def forward(self, x):
        h = self.encoder(self.embed(x))
        h, _ = self.attn(h, h, h)
        return self.head(torch.flatten(h, 1))


class SelfAttention(nn.Module):
    """`nn.MultiheadAttention` alone, for the exporter variants."""

    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)

    def forward(self, x):
        return self.attn(x, x, x, need_weights=False)[0]


class OddlyScaledAttention(nn.Module):
    """An attention written out by hand with the scale 1 / D rather than
    1 / sqrt(D / H): it exports as the same pattern as `nn.MultiheadAttention`, but
    the library's layer does not compute it."""

    def __init__(self):
        super().__init__()
        self.in_proj = nn.Linear(8, 24)
        self.out_proj = nn.Linear(8, 8)

    def forward(self, x):
        q, k, v = self.in_proj(x).chunk(3, dim=-1)
        weights = torch.softmax(q @ k.transpose(1, 2) / 8.0, dim=-1)
        return self.out_proj(weights @ v)


class Pair(nn.Module):
    """Two inputs and two outputs: a score of the pair and a reconstruction of `b`."""

    def __init__(self):
        super().__init__()
        self.fa = nn.Linear(3, 4)
        self.fb = nn.Linear(2, 4)
        self.head = nn.Linear(8, 1)
        self.dec = nn.Linear(8, 2)

    def forward(self, a, b):
        h = torch.cat([torch.tanh(self.fa(a)), torch.tanh(self.fb(b))], dim=1)
        return self.head(h), torch.sigmoid(self.dec(h))


def export_pair() -> None:
    """`pair.onnx` and its fixture: `inputs_a`, `inputs_b`, `outputs_score`,
    `outputs_rec`."""
    torch.manual_seed(2201)
    model = Pair().eval()
    path = OUT / "pair.onnx"
    with torch.no_grad():
        torch.onnx.export(
            model,
            (torch.zeros(1, 3), torch.zeros(1, 2)),
            path,
            input_names=["a", "b"],
            output_names=["score", "rec"],
            dynamo=True,
            external_data=False,
        )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(2202)
    a = torch.randn((SAMPLES, 3), generator=generator).numpy()
    b = torch.randn((SAMPLES, 2), generator=generator).numpy()
    runs = [session.run(None, {"a": a[i : i + 1], "b": b[i : i + 1]}) for i in range(SAMPLES)]
    tensors = {"inputs_a": a, "inputs_b": b}
    tensors["outputs_score"] = np.concatenate([r[0] for r in runs])
    tensors["outputs_rec"] = np.concatenate([r[1] for r in runs])
    save_safetensors(OUT / "pair.safetensors", tensors)
    print("pair: written")


class Unsupported(nn.Module):
    """Operators the library lacks: a sine, a reflecting pad, a cumulative sum (the
    grouped convolution between them is supported)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, groups=2)
        self.fc = nn.Linear(4 * 4 * 6, 3)

    def forward(self, x):
        x = torch.sin(x)
        x = self.conv(x)
        x = nn.functional.pad(x, (1, 1, 0, 0), mode="reflect")
        x = torch.cumsum(x, dim=3)
        return self.fc(torch.flatten(x, 1))


MODELS = {
    "mlp": (Mlp, (16,)),
    "cnn_bn": (CnnBn, (1, 12, 12)),
    "cnn1d": (Cnn1d, (3, 32)),
    "lstm": (LstmNet, (7, 6)),
    "bigru": (BiGru, (6, 5)),
    "residual": (Residual, (12,)),
    "autoencoder": (Autoencoder, (20,)),
    "tokens": (TokenGru, (7,)),
    "decoder": (Decoder, (4,)),
    "grouped": (Grouped, (4, 7, 7)),
    "transformer": (Transformer, (6, 5)),
}


def randomize_batch_norms(model: nn.Module, generator: torch.Generator) -> None:
    """Running statistics and affine parameters away from their initial values."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=generator) * 0.5)
            m.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=generator) * 0.2)


def perturb_parameters(model: nn.Module, generator: torch.Generator) -> None:
    """Noise on every parameter: the copies of an encoder layer, its layer norms and
    its zero biases all differ (the exporter would otherwise store equal tensors once)."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=generator) * 0.2)


def export(model: nn.Module, sample: tuple[int, ...], path: Path) -> None:
    tokens = isinstance(model, TokenGru)
    example = torch.zeros((1, *sample), dtype=torch.int64 if tokens else torch.float32)
    # The exporter's optimizer would fold the batch norms into the convolutions.
    keep_batch_norm = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    torch.onnx.export(
        model,
        (example,),
        path,
        input_names=["x"],
        output_names=["y"],
        dynamo=True,
        external_data=False,
        optimize=not keep_batch_norm,
    )
    if keep_batch_norm:
        # Constant folding alone: the exported bias and shape computations become
        # initializers, the batch norms stay.
        from onnxscript import ir, optimizer

        graph = ir.from_proto(onnx.load(path))
        optimizer.fold_constants(graph)
        optimizer.remove_unused_nodes(graph)
        onnx.save(ir.to_proto(graph), path)
    onnx.checker.check_model(onnx.load(path))


def main() -> None:
    # `generate.py grouped transformer` rewrites only those fixtures (and
    # `unsupported`/`dynamic_time` only when named); the others' weights are drawn all
    # the same, so that each model is the same whichever are written.
    only = set(sys.argv[1:])
    OUT.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(22)
    for index, (name, (cls, sample)) in enumerate(MODELS.items()):
        generator = torch.Generator().manual_seed(100 + index)
        model = cls()
        randomize_batch_norms(model, generator)
        if cls is Transformer:
            perturb_parameters(model, generator)
        model.eval()
        if only and name not in only:
            continue
        path = OUT / f"{name}.onnx"
        with torch.no_grad():
            export(model, sample, path)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        if cls is TokenGru:
            # Token ids: the model reads int64, the library's network the same ids as f32.
            ids = torch.randint(0, TokenGru.VOCAB, (SAMPLES, *sample), generator=generator).numpy()
            feeds = [ids[i : i + 1] for i in range(SAMPLES)]
            inputs = ids.astype(np.float32)
        else:
            inputs = torch.randn((SAMPLES, *sample), generator=generator).numpy().astype(np.float32)
            feeds = [inputs[i : i + 1] for i in range(SAMPLES)]
        outputs = np.concatenate([session.run(None, {"x": feed})[0] for feed in feeds])
        save_safetensors(OUT / f"{name}.safetensors", {"inputs": inputs, "outputs": outputs})
        print(f"{name}: {path.stat().st_size} bytes, outputs {list(outputs.shape)}")
    if not only or "pair" in only:
        export_pair()
    if not only or "unsupported" in only:
        with torch.no_grad():
            export(Unsupported().eval(), (4, 6, 6), OUT / "unsupported.onnx")
        print("unsupported: written")
    # The attention as the TorchScript exporter (`dynamo=False`) writes it, with its
    # shape computations, and an attention the library's layer does not compute: both
    # must be reported, each node or the pattern as one.
    if not only or "attention_variants" in only:
        # Outside `no_grad`: there, the module would run (and export) as one fused
        # operator that the TorchScript exporter does not know.
        torch.onnx.export(
            SelfAttention().eval(),
            (torch.zeros(1, 5, 8),),
            OUT / "attention_torchscript.onnx",
            input_names=["x"],
            output_names=["y"],
            dynamo=False,
        )
        with torch.no_grad():
            export(OddlyScaledAttention().eval(), (5, 8), OUT / "attention_scaled.onnx")
        print("attention variants: written")
    if only and "dynamic_time" not in only:
        return
    # A sequence model whose batch and time axes are dynamic: the importer must ask
    # for the time axis to be fixed.
    torch.onnx.export(
        LstmNet().eval(),
        (torch.zeros(2, 7, 6),),
        OUT / "dynamic_time.onnx",
        input_names=["x"],
        output_names=["y"],
        dynamo=True,
        external_data=False,
        dynamic_shapes={"x": {0: torch.export.Dim("batch"), 1: torch.export.Dim("time")}},
    )
    print("dynamic_time: written")


if __name__ == "__main__":
    main()
