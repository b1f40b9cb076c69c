#!/usr/bin/env python3
"""Which instruction set the baselines of `tools/bench-vs-pytorch` run on, as they
report it themselves: PyTorch's ATen kernels, the MKL and oneDNN inside PyTorch, and
NumPy's OpenBLAS; and NumPy's sgemm rate at n = 1024, one thread.

    MKL_VERBOSE=1 ONEDNN_VERBOSE=1 python3 tools/bench/baseline_isa.py [--seconds S]

Runs one `nn.Linear` (MKL's sgemm) and one `nn.Conv2d` (oneDNN) so that their libraries
print their verbose lines to stdout (the caller parses them: MKL's banner names the
instruction set it dispatches to, oneDNN's `isa:` line its highest instruction set and
each primitive its implementation, such as `jit:avx2`); then prints, last, one JSON line
with what Python can ask directly: `torch.backends.cpu.get_cpu_capability()` and
OpenBLAS's own `openblas_get_corename` and `openblas_get_config` (read through ctypes from
the OpenBLAS that NumPy loaded, as threadpoolctl does), and the sgemm rate.

Needs PyTorch and NumPy; CI does not run this.
"""
import argparse
import ctypes
import json
import os
import time

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"

import numpy as np  # noqa: E402
import torch  # noqa: E402


def openblas():
    """OpenBLAS's core name and configuration string, from the library NumPy loaded
    (found in this process's memory map); None where NumPy uses another BLAS."""
    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if "openblas" in line.lower() and ".so" in line}
    for path in sorted(paths):
        lib = ctypes.CDLL(path)
        # The symbol carries the build's prefix and suffix (`scipy_openblas_..._64_` in
        # NumPy's wheels, plain `openblas_get_corename` in a system OpenBLAS).
        for prefix, suffix in (("scipy_openblas_", "64_"), ("openblas_", "64_"), ("openblas_", "")):
            try:
                corename = getattr(lib, f"{prefix}get_corename{suffix}")
                config = getattr(lib, f"{prefix}get_config{suffix}")
            except AttributeError:
                continue
            corename.restype = config.restype = ctypes.c_char_p
            return {"library": os.path.basename(path), "core": corename().decode(), "config": config().decode()}
    return None


def sgemm_gflops(n, seconds):
    """NumPy's best sgemm rate at n x n x n over `seconds` of calls, one thread, each
    call timed by this process's CPU time (`time.process_time`: on a loaded machine,
    the time other processes take the core from it is not counted)."""
    rng = np.random.default_rng(1)
    a, b = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)
    c = np.empty((n, n), dtype=np.float32)
    np.matmul(a, b, out=c)
    best, start = float("inf"), time.perf_counter()
    while time.perf_counter() - start < seconds:
        t = time.process_time()
        np.matmul(a, b, out=c)
        best = min(best, time.process_time() - t)
    return 2 * n**3 / best / 1e9


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=1.0, help="seconds of sgemm calls for the rate")
    args = p.parse_args()
    torch.set_num_threads(1)
    with torch.no_grad():
        torch.nn.Linear(64, 32)(torch.rand(16, 64))
        torch.nn.Conv2d(16, 32, 3, padding=1)(torch.rand(2, 16, 16, 16))
    print(json.dumps({
        "aten": torch.backends.cpu.get_cpu_capability(),
        "openblas": openblas(),
        "numpy_sgemm_1024_gflops": round(sgemm_gflops(1024, args.seconds), 1),
        "torch": torch.__version__,
        "numpy": np.__version__,
    }), flush=True)


if __name__ == "__main__":
    main()
