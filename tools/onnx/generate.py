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
`outputs_score` and `outputs_rec`); `lstm_state.onnx` and `gru_state.onnx`, recurrent
layers whose initial states are model inputs (their fixtures hold `inputs_x`, the
states `inputs_h0` (and `inputs_c0`) in PyTorch's layout `[directions, samples,
hidden]`, and `outputs`), and `rnn_constant_state.onnx`, an `RNN` from a constant
non-zero state, which the import must report; and `attention_torchscript.onnx` and
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


class PreNormEncoder(nn.Module):
    """One pre-norm encoder layer with GELU (`norm_first=True`) between two
    projections."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(4, 8)
        self.layer = nn.TransformerEncoderLayer(8, 2, 12, activation="gelu", norm_first=True, batch_first=True)
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        return self.head(self.layer(self.embed(x)))


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


class Clipped(nn.Module):
    """`torch.clamp(x, 0, 6)` on the input, `nn.ReLU6` after a dense layer (both
    `Clip(0, 6)`, the library's `Relu6`) and `torch.clamp(x, min=0)` (`Clip` with a lower
    bound only, a `Relu`)."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.relu6 = nn.ReLU6()
        self.fc2 = nn.Linear(16, 8)
        self.out = nn.Linear(8, 4)
        with torch.no_grad():
            # Pre-activations well past 6, so that the upper bound clips.
            self.fc1.weight.mul_(6.0)

    def forward(self, x):
        h = self.relu6(self.fc1(torch.clamp(x, 0, 6)))
        return self.out(torch.clamp(self.fc2(h), min=0))


def clip_inputs(generator: torch.Generator) -> np.ndarray:
    """Samples of `Clipped`: values on both sides of the bounds, and exactly 0 and 6."""
    x = torch.randn((SAMPLES, 8), generator=generator) * 4.0 + 3.0
    x[:, 0] = 0.0
    x[:, 1] = 6.0
    x[0, 2:4] = torch.tensor([-0.0, 6.0])
    return x.numpy().astype(np.float32)


def export_clip_bounds() -> None:
    """`clip_bounds.onnx`, written with `onnx.helper` (the exporter writes a lower
    bound alone as `Max`): `Clip` with its upper bound omitted and `Clip(0, inf)`,
    both a `Relu`, and its fixture; and `clip_unsupported.onnx`, whose clips to
    [-1, 1] and [0, 5] the library cannot express and the import must report."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(2203)

    def const(name: str, values) -> onnx.TensorProto:
        return numpy_helper.from_array(np.asarray(values, dtype=np.float32), name)

    def model(nodes, inits, width: int, out: int) -> onnx.ModelProto:
        graph = helper.make_graph(
            nodes,
            "clip",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, width])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, out])],
            inits,
        )
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="onnx.helper")
        onnx.checker.check_model(m)
        return m

    inits = [
        const("zero", 0.0),
        const("inf", np.inf),
        const("fc1.weight", rng.normal(size=(8, 6)) * 2.0),
        const("fc1.bias", rng.normal(size=8) * 0.5),
        const("fc2.weight", rng.normal(size=(3, 8))),
        const("fc2.bias", rng.normal(size=3) * 0.5),
    ]
    nodes = [
        helper.make_node("Clip", ["x", "zero"], ["low"], name="clip_min_only"),
        helper.make_node("Gemm", ["low", "fc1.weight", "fc1.bias"], ["h"], name="fc1", transB=1),
        helper.make_node("Clip", ["h", "zero", "inf"], ["h_relu"], name="clip_zero_inf"),
        helper.make_node("Gemm", ["h_relu", "fc2.weight", "fc2.bias"], ["y"], name="fc2", transB=1),
    ]
    path = OUT / "clip_bounds.onnx"
    onnx.save(model(nodes, inits, 6, 3), path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs = (rng.normal(size=(SAMPLES, 6)) * 2.0).astype(np.float32)
    inputs[:, 0] = 0.0
    outputs = np.concatenate([session.run(None, {"x": inputs[i : i + 1]})[0] for i in range(SAMPLES)])
    save_safetensors(OUT / "clip_bounds.safetensors", {"inputs": inputs, "outputs": outputs})

    inits = [
        const("minus_one", -1.0),
        const("one", 1.0),
        const("zero", 0.0),
        const("five", 5.0),
        const("fc.weight", rng.normal(size=(4, 6))),
        const("fc.bias", rng.normal(size=4)),
    ]
    nodes = [
        helper.make_node("Clip", ["x", "minus_one", "one"], ["c"], name="hardtanh"),
        helper.make_node("Gemm", ["c", "fc.weight", "fc.bias"], ["h"], name="fc", transB=1),
        helper.make_node("Clip", ["h", "zero", "five"], ["y"], name="relu5"),
    ]
    # With the inferred shapes, the import goes on past the first clip to the second.
    onnx.save(onnx.shape_inference.infer_shapes(model(nodes, inits, 6, 4)), OUT / "clip_unsupported.onnx")
    print("clip bounds: written")


def export_operators() -> None:
    """Operators the PyTorch models above do not export, written with `onnx.helper`
    (opset 13), each with its fixture: `ops_rnn.onnx`, an ONNX `RNN` run both ways
    (`nn.RNN` exports as an unrolled loop instead) and one forward with `Relu`
    activations; `ops_pool.onnx`, `Identity`, a 2-D `AveragePool`, `Dropout`,
    `GlobalAveragePool` and `Flatten`; and `rnn_reverse.onnx`, an `RNN` run backwards
    only, which the import must report."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(2204)

    def const(name: str, values, dtype=np.float32) -> onnx.TensorProto:
        return numpy_helper.from_array(np.asarray(values, dtype=dtype), name)

    def write(name: str, nodes, inits, x_shape, y_shape) -> None:
        graph = helper.make_graph(
            nodes,
            name,
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, *x_shape])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, *y_shape])],
            inits,
        )
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="onnx.helper")
        onnx.checker.check_model(m)
        path = OUT / f"{name}.onnx"
        onnx.save(m, path)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        inputs = rng.normal(size=(SAMPLES, *x_shape)).astype(np.float32)
        outputs = np.concatenate([session.run(None, {"x": inputs[i : i + 1]})[0] for i in range(SAMPLES)])
        save_safetensors(OUT / f"{name}.safetensors", {"inputs": inputs, "outputs": outputs})
        print(f"{name}: written")

    # x [1, 5, 3] -> [5, 1, 3] -> RNN both ways (hidden 4) -> Y [5, 2, 1, 4]
    # -> [1, 5, 2, 4] -> [1, 5, 8] -> RNN forward, Relu (hidden 3) -> Y_h [1, 1, 3] -> [1, 3].
    t, f, h1, h2 = 5, 3, 4, 3
    inits = [
        const("rnn1.W", rng.normal(size=(2, h1, f)) * 0.6),
        const("rnn1.R", rng.normal(size=(2, h1, h1)) * 0.4),
        const("rnn1.B", rng.normal(size=(2, 2 * h1)) * 0.3),
        const("rnn2.W", rng.normal(size=(1, h2, 2 * h1)) * 0.4),
        const("rnn2.R", rng.normal(size=(1, h2, h2)) * 0.3),
        const("rnn2.B", rng.normal(size=(1, 2 * h2)) * 0.3),
        const("shape", [1, t, 2 * h1], np.int64),
        const("axis0", [0], np.int64),
    ]
    nodes = [
        helper.make_node("Transpose", ["x"], ["x_t"], name="to_time_major", perm=[1, 0, 2]),
        helper.make_node("RNN", ["x_t", "rnn1.W", "rnn1.R", "rnn1.B"], ["y1", ""], name="rnn1",
                         hidden_size=h1, direction="bidirectional"),
        helper.make_node("Transpose", ["y1"], ["y1_b"], name="to_batch_major", perm=[2, 0, 1, 3]),
        helper.make_node("Reshape", ["y1_b", "shape"], ["y1_seq"], name="merge_directions"),
        helper.make_node("Transpose", ["y1_seq"], ["y1_t"], name="to_time_major_2", perm=[1, 0, 2]),
        helper.make_node("RNN", ["y1_t", "rnn2.W", "rnn2.R", "rnn2.B"], ["", "h"], name="rnn2",
                         hidden_size=h2, activations=["Relu"]),
        helper.make_node("Squeeze", ["h", "axis0"], ["y"], name="last_state"),
    ]
    write("ops_rnn", nodes, inits, (t, f), (h2,))

    # The same first RNN run backwards only (`direction = reverse`), which the library's
    # layers do not do: the import must report it.
    reverse = [
        helper.make_node("Transpose", ["x"], ["x_t"], name="to_time_major", perm=[1, 0, 2]),
        helper.make_node("RNN", ["x_t", "w", "r"], ["", "h"], name="rnn_reverse", hidden_size=h1, direction="reverse"),
        helper.make_node("Squeeze", ["h", "axis0"], ["y"], name="last_state"),
    ]
    other = np.random.default_rng(2205)
    reverse_inits = [const("w", other.normal(size=(1, h1, f))), const("r", other.normal(size=(1, h1, h1))), inits[-1]]
    graph = helper.make_graph(
        reverse,
        "rnn_reverse",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, t, f])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, h1])],
        reverse_inits,
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="onnx.helper")
    onnx.checker.check_model(m)
    onnx.save(m, OUT / "rnn_reverse.onnx")

    # x [1, 2, 6, 6] -> Conv 3x3 (pad 1) -> Identity -> AveragePool 2x2 -> Dropout
    # -> GlobalAveragePool -> Flatten -> Gemm -> [1, 3].
    inits = [
        const("conv.weight", rng.normal(size=(4, 2, 3, 3)) * 0.4),
        const("conv.bias", rng.normal(size=4) * 0.2),
        const("fc.weight", rng.normal(size=(3, 4))),
        const("fc.bias", rng.normal(size=3) * 0.2),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "conv.weight", "conv.bias"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Identity", ["c"], ["c_id"], name="identity"),
        helper.make_node("AveragePool", ["c_id"], ["p"], name="avg_pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Dropout", ["p"], ["p_drop"], name="dropout"),
        helper.make_node("GlobalAveragePool", ["p_drop"], ["g"], name="global_avg_pool"),
        helper.make_node("Flatten", ["g"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["y"], name="fc", transB=1),
    ]
    write("ops_pool", nodes, inits, (2, 6, 6), (3,))


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


class LstmState(nn.Module):
    """An LSTM from a given `(h0, c0)`; its final hidden state through a linear layer."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(6, 12, batch_first=True)
        self.fc = nn.Linear(12, 3)

    def forward(self, x, h0, c0):
        _, (h, _) = self.lstm(x, (h0, c0))
        return self.fc(h[-1])


class GruState(nn.Module):
    """A bidirectional GRU from a given `h0`; its output sequence through a linear layer."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(5, 8, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(16, 4)

    def forward(self, x, h0):
        out, _ = self.gru(x, h0)
        return self.fc(out)


def export_state(name: str, model: nn.Module, sample: tuple[int, ...], states: list[str], rows: int, hidden: int) -> None:
    """`NAME.onnx`, whose inputs are `x` and the initial states `states` (ONNX's
    `[directions, batch, hidden]`), and its fixture: `inputs_x`, `inputs_<state>` in
    PyTorch's layout `[directions, samples, hidden]`, and `outputs`."""
    path = OUT / f"{name}.onnx"
    example = (torch.zeros(1, *sample),) + tuple(torch.zeros(rows, 1, hidden) for _ in states)
    with torch.no_grad():
        torch.onnx.export(
            model,
            example,
            path,
            input_names=["x", *states],
            output_names=["y"],
            dynamo=True,
            external_data=False,
        )
    onnx.checker.check_model(onnx.load(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(2300 + len(states))
    x = torch.randn((SAMPLES, *sample), generator=generator).numpy()
    given = {s: torch.randn((rows, SAMPLES, hidden), generator=generator).numpy() for s in states}
    runs = []
    for i in range(SAMPLES):
        feeds = {"x": x[i : i + 1]}
        feeds.update({s: v[:, i : i + 1] for s, v in given.items()})
        runs.append(session.run(None, feeds)[0])
    tensors = {"inputs_x": x}
    tensors.update({f"inputs_{s}": v for s, v in given.items()})
    tensors["outputs"] = np.concatenate(runs)
    save_safetensors(OUT / f"{name}.safetensors", tensors)
    print(f"{name}: written, outputs {list(tensors['outputs'].shape)}")


def export_constant_state() -> None:
    """`rnn_constant_state.onnx` (`onnx.helper`, opset 13): an `RNN` whose
    `initial_h` is a constant that is not zero, which the import must report."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(2303)
    t, f, h = 4, 3, 2
    inits = [
        numpy_helper.from_array(rng.normal(size=(1, h, f)).astype(np.float32), "w"),
        numpy_helper.from_array(rng.normal(size=(1, h, h)).astype(np.float32), "r"),
        numpy_helper.from_array(np.zeros(2 * h, dtype=np.float32).reshape(1, 2 * h), "b"),
        numpy_helper.from_array(rng.normal(size=(1, 1, h)).astype(np.float32), "h0"),
        numpy_helper.from_array(np.array([0], dtype=np.int64), "axis0"),
    ]
    nodes = [
        helper.make_node("Transpose", ["x"], ["x_t"], perm=[1, 0, 2]),
        helper.make_node("RNN", ["x_t", "w", "r", "b", "", "h0"], ["", "h"], name="rnn_h0", hidden_size=h),
        helper.make_node("Squeeze", ["h", "axis0"], ["y"], name="last_state"),
    ]
    graph = helper.make_graph(
        nodes,
        "rnn_constant_state",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, t, f])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, h])],
        inits,
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="onnx.helper")
    onnx.checker.check_model(m)
    onnx.save(m, OUT / "rnn_constant_state.onnx")
    print("rnn_constant_state: written")


def export_states() -> None:
    export_constant_state()
    torch.manual_seed(2301)
    export_state("lstm_state", LstmState().eval(), (7, 6), ["h0", "c0"], 1, 12)
    torch.manual_seed(2302)
    export_state("gru_state", GruState().eval(), (6, 5), ["h0"], 2, 8)


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
    "clip": (Clipped, (8,)),
    "encoder_prenorm": (PreNormEncoder, (5, 4)),
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
        if cls in (Transformer, PreNormEncoder):
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
        elif cls is Clipped:
            inputs = clip_inputs(generator)
            feeds = [inputs[i : i + 1] for i in range(SAMPLES)]
        else:
            inputs = torch.randn((SAMPLES, *sample), generator=generator).numpy().astype(np.float32)
            feeds = [inputs[i : i + 1] for i in range(SAMPLES)]
        outputs = np.concatenate([session.run(None, {"x": feed})[0] for feed in feeds])
        save_safetensors(OUT / f"{name}.safetensors", {"inputs": inputs, "outputs": outputs})
        print(f"{name}: {path.stat().st_size} bytes, outputs {list(outputs.shape)}")
    if not only or "pair" in only:
        export_pair()
    if not only or "clip_bounds" in only:
        export_clip_bounds()
    if not only or "states" in only:
        export_states()
    if not only or "operators" in only:
        export_operators()
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
