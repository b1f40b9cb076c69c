#!/usr/bin/env python3
"""The PyTorch and NumPy side of the speed benchmarks: the work of `nn-bench`
(benches/src/bench.rs) with the same shapes, in PyTorch eager, and GEMM with NumPy.

    python3 tools/bench/pytorch_bench.py --threads N [--budget SECONDS] [--only CASE,...]
    python3 tools/bench/pytorch_bench.py --train-digits [--epochs N]

Prints one JSON line: seconds per call, the best and the median of many samples, per
case. Inference runs under `torch.no_grad()` in `eval()` mode; a training step is
`zero_grad`, forward, cross-entropy, `backward`, `Adam.step`, in `train()` mode.
The thread count is fixed before NumPy and PyTorch are imported (OpenBLAS and OpenMP
read it once) and again with `torch.set_num_threads`.
"""
import argparse
import gzip
import json
import os
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--budget", type=float, default=1.0, help="seconds of samples per case")
    p.add_argument("--only", default=None, help="comma-separated case name prefixes")
    p.add_argument("--json", action="store_true", help="accepted for symmetry with nn-bench: the output is JSON")
    p.add_argument("--train-digits", action="store_true", help="train the digits MLP (peak memory run)")
    p.add_argument("--epochs", type=int, default=30)
    return p.parse_args()


ARGS = parse_args()
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

torch.set_num_threads(ARGS.threads)

# The shortest sample and the fewest samples, as in benches/src/timing.rs.
SAMPLE = 0.002
MIN_SAMPLES = 7


def measure(budget, f):
    """Best and median seconds per call of `f` over samples of at least 2 ms."""
    start = time.perf_counter()
    calls = 0
    while calls < 3 or time.perf_counter() - start < budget / 10:
        f()
        calls += 1
    per_call = (time.perf_counter() - start) / calls
    batch = max(1, int(-(-SAMPLE // per_call)))
    times = []
    start = time.perf_counter()
    while len(times) < MIN_SAMPLES or time.perf_counter() - start < budget:
        t = time.perf_counter()
        for _ in range(batch):
            f()
        times.append((time.perf_counter() - t) / batch)
    times.sort()
    return {"best": times[0], "median": times[len(times) // 2], "samples": len(times)}


def digit_mlp():
    """examples/02_mlp_digits.rs: 64-128-64-10, ReLU, dropout 0.2."""
    return nn.Sequential(
        nn.Linear(64, 128), nn.ReLU(), nn.Dropout(0.2),
        nn.Linear(128, 64), nn.ReLU(), nn.Dropout(0.2),
        nn.Linear(64, 10),
    )


def big_mlp():
    return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))


def digit_cnn():
    """examples/05_cnn_digits.rs: conv 1->16 3x3 same, batch norm, ReLU, conv 16->32 3x3 same,
    ReLU, max pool 2, flatten, dense 64 ReLU, dropout 0.3, dense 10."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(512, 64), nn.ReLU(), nn.Dropout(0.3), nn.Linear(64, 10),
    )


def small_cnn():
    """A smaller digits CNN: conv 1->16 3x3 same, ReLU, max pool 2, flatten, dense 64 ReLU, dense 10."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(256, 64), nn.ReLU(), nn.Linear(64, 10),
    )


class LstmNet(nn.Module):
    """LSTM over 32 steps of 8 features, 64 units, the last output, dense 10."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(8, 64, batch_first=True)
        self.logits = nn.Linear(64, 10)

    def forward(self, x):
        y, _ = self.lstm(x)
        return self.logits(y[:, -1])


class Bench:
    def __init__(self, args):
        self.args = args
        self.only = args.only.split(",") if args.only else None
        self.seconds = {}

    def wanted(self, name):
        return self.only is None or any(name.startswith(o) for o in self.only)

    def case(self, name, batch, f):
        if not self.wanted(name):
            return
        timing = measure(self.args.budget, f)
        timing["batch"] = batch
        self.seconds[name] = timing
        print(f"{name:<22} best {timing['best'] * 1e6:12.2f} us  median {timing['median'] * 1e6:12.2f} us",
              file=sys.stderr)

    def train_case(self, name, model, x, t):
        if not self.wanted(name):
            return
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        loss_fn = nn.CrossEntropyLoss()

        def step():
            opt.zero_grad()
            loss = loss_fn(model(x), t)
            loss.backward()
            opt.step()

        step()
        self.case(name, x.shape[0], step)


def labels(batch, classes):
    return torch.arange(batch) % classes


def run(bench):
    torch.manual_seed(1)
    rng = np.random.default_rng(1)

    mlp = digit_mlp().eval()
    x1 = torch.rand(1, 64)
    with torch.no_grad():
        bench.case("mlp_infer_b1", 1, lambda: mlp(x1))

    bench.train_case("mlp_train_b32", digit_mlp(), torch.rand(32, 64), labels(32, 10))
    bench.train_case("mlp_big_train_b128", big_mlp(), torch.rand(128, 784), labels(128, 10))

    cnn = digit_cnn().eval()
    image = torch.rand(1, 1, 8, 8)
    with torch.no_grad():
        bench.case("cnn_infer_b1", 1, lambda: cnn(image))
    bench.train_case("cnn_train_b32", digit_cnn(), torch.rand(32, 1, 8, 8), labels(32, 10))
    small = small_cnn().eval()
    with torch.no_grad():
        bench.case("cnn_small_infer_b1", 1, lambda: small(image))
    bench.train_case("cnn_small_train_b32", small_cnn(), torch.rand(32, 1, 8, 8), labels(32, 10))

    if bench.wanted("conv_fwd_bwd_b32"):
        conv = nn.Conv2d(16, 32, 3, padding=1)
        conv.train()
        x = torch.rand(32, 16, 16, 16, requires_grad=True)
        dy = torch.rand(32, 32, 16, 16)

        def conv_step():
            conv.zero_grad()
            x.grad = None
            conv(x).backward(dy)

        conv_step()
        bench.case("conv_fwd_bwd_b32", 32, conv_step)

    # One streaming GRU step: PyTorch's step API, a GRUCell carrying its state.
    cell = nn.GRUCell(8, 64).eval()
    step_x = torch.rand(1, 8)
    state = [torch.zeros(1, 64)]

    def gru_step():
        state[0] = cell(step_x, state[0])

    with torch.no_grad():
        bench.case("gru_step_b1", 1, gru_step)

    bench.train_case("lstm_train_b32", LstmNet(), torch.rand(32, 32, 8), labels(32, 10))

    if bench.wanted("encoder_fwd_bwd_b32"):
        layer = nn.TransformerEncoderLayer(64, 4, 256, dropout=0.0, activation="relu", batch_first=True)
        layer.train()
        x = torch.rand(32, 32, 64)
        dy = torch.rand(32, 32, 64)

        def encoder_step():
            layer.zero_grad()
            layer(x).backward(dy)

        encoder_step()
        bench.case("encoder_fwd_bwd_b32", 32, encoder_step)

    # GEMM with NumPy's BLAS, into a preallocated output (`a @ b` without allocating).
    for n in (64, 256, 1024):
        a = rng.random((n, n), dtype=np.float32)
        b = rng.random((n, n), dtype=np.float32)
        c = np.empty((n, n), dtype=np.float32)
        bench.case(f"gemm_{n}", 1, lambda a=a, b=b, c=c: np.matmul(a, b, out=c))


def train_digits(epochs):
    """The digits MLP trained as examples/02_mlp_digits.rs does (80/20 split, Adam 2e-3,
    batches of 32, shuffled), for the peak resident memory comparison."""
    path = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "data", "digits.csv.gz")
    with gzip.open(path, "rt") as f:
        data = np.loadtxt(f, delimiter=",", dtype=np.float32)
    x = torch.from_numpy(data[:, :64] / 16.0)
    t = torch.from_numpy(data[:, 64]).long()
    g = torch.Generator().manual_seed(1)
    order = torch.randperm(len(x), generator=g)
    n_test = int(round(0.2 * len(x)))
    test, train = order[:n_test], order[n_test:]
    torch.manual_seed(1)
    model = digit_mlp()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    for _ in range(epochs):
        model.train()
        perm = train[torch.randperm(len(train), generator=g)]
        for i in range(0, len(perm), 32):
            idx = perm[i:i + 32]
            opt.zero_grad()
            loss_fn(model(x[idx]), t[idx]).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(x[test]).argmax(1) == t[test]).float().mean().item()
    print(json.dumps({"implementation": "pytorch", "epochs": epochs, "test_accuracy": accuracy,
                      "seconds": time.perf_counter() - start}))


def main():
    if ARGS.train_digits:
        train_digits(ARGS.epochs)
        return
    bench = Bench(ARGS)
    print(f"PyTorch {torch.__version__}, NumPy {np.__version__}, {ARGS.threads} thread(s)", file=sys.stderr)
    run(bench)
    print(json.dumps({
        "implementation": "pytorch",
        "threads": ARGS.threads,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "seconds": bench.seconds,
    }))


if __name__ == "__main__":
    main()
