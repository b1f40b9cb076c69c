#!/usr/bin/env python3
"""Each nn-bench case's time with the AVX2 kernels against its time with the AVX-512
kernels, on a CPU that has both, from one interleaved run.

    python3 tools/bench/isa_ratio.py [--rounds 3] [--budget 0.5] [--threads 1] [--clock cpu] [--only CASE,...]

Runs `nn-bench --json` (the workspace's release build) alternately under `NN_ISA=avx512`
and `NN_ISA=avx2`, `--rounds` times, checks that each run's kernel report names the
instruction set asked for (and, under `avx2`, no AVX-512 kernel), keeps each case's best
time per instruction set, and prints the AVX2 time divided by the AVX-512 time per case
(above 1: the AVX2 path is slower), then one JSON line with them.

What to expect: the families whose AVX-512 form only widens the registers (products,
convolutions, the recurrent cells from 16 units) take 1.2 to 2 times as long with AVX2;
the families that run their AVX2 form on both (batch-1 dense rows, the element-wise
kernels, cells under 16 units) about 1. A case is flagged when its ratio is above 2.2
(more than twice the lanes explain: a path that may have fallen to portable code) or
below 0.9 (the AVX2 path faster: the AVX-512 choice may be the wrong one there).
The hand-written loops (`hand_*`) are the same AVX2 code under either `NN_ISA`: their
ratios are not flagged, and show how far two runs of the same code differ (about 1
idle; a few tenths apart on a loaded machine, the nanosecond cases most).
`--clock cpu` (one thread only) counts the process's CPU time, which other processes on
a loaded machine disturb less than the wall clock.

Benchmarks are not tests; CI does not run this.
"""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SLOWER, FASTER = 2.2, 0.9


def nn_bench():
    out = subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps"], cwd=ROOT, check=True,
                         capture_output=True)
    return os.path.join(json.loads(out.stdout)["target_directory"], "release", "nn-bench")


def run(binary, isa, args):
    cmd = [binary, "--json", "--threads", str(args.threads), "--budget", str(args.budget), "--clock", args.clock]
    if args.only:
        cmd += ["--only", args.only]
    proc = subprocess.run(cmd, env=dict(os.environ, NN_ISA=isa), cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"isa_ratio: `NN_ISA={isa} {' '.join(cmd)}` failed:\n{proc.stderr[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    kernels = result.get("kernels", {})
    if result.get("isa") != isa or (isa == "avx2" and "avx512" in kernels.values()):
        sys.exit(f"isa_ratio: NN_ISA={isa}, but nn-bench reports {result.get('isa')}, kernels {kernels}")
    return result


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--budget", type=float, default=0.5, help="seconds of samples per case and run")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--clock", choices=("wall", "cpu"), default=None, help="cpu (the default with one thread) or wall")
    p.add_argument("--only", default=None, help="comma-separated case name prefixes")
    p.add_argument("--no-build", action="store_true", help="use the existing release build of nn-bench")
    args = p.parse_args()
    args.clock = args.clock or ("cpu" if args.threads == 1 else "wall")
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "nn-bench"], cwd=ROOT, check=True)
    binary = nn_bench()
    best = {"avx512": {}, "avx2": {}}
    kernels = {}
    load = [os.getloadavg()[0]]
    for r in range(args.rounds):
        for isa in ("avx512", "avx2"):
            print(f"round {r + 1}/{args.rounds}: NN_ISA={isa}", file=sys.stderr)
            result = run(binary, isa, args)
            kernels[isa] = result["kernels"]
            for case, t in result["seconds"].items():
                best[isa][case] = min(t["best"], best[isa].get(case, float("inf")))
    load.append(os.getloadavg()[0])
    ratios, flagged = {}, []
    print(f"{args.rounds} interleaved rounds, {args.threads} thread(s), {args.clock} clock, {args.budget} s per case;"
          f" load average {load[0]:.2f} at the start, {load[1]:.2f} at the end")
    for isa in ("avx512", "avx2"):
        print(f"NN_ISA={isa}: " + ", ".join(f"{k} {v}" for k, v in kernels[isa].items()))
    print(f"{'case':<28} {'avx512 (ns)':>14} {'avx2 (ns)':>14} {'avx2/avx512':>12}")
    for case, t512 in best["avx512"].items():
        if case not in best["avx2"]:
            continue
        ratio = best["avx2"][case] / t512
        ratios[case] = round(ratio, 3)
        if case.startswith("hand_"):
            flag = " (same code either way)"
        else:
            flag = " slower than the lanes explain" if ratio > SLOWER else " AVX2 faster" if ratio < FASTER else ""
        if flag and not case.startswith("hand_"):
            flagged.append(case)
        print(f"{case:<28} {t512 * 1e9:14.1f} {best['avx2'][case] * 1e9:14.1f} {ratio:12.2f}{flag}")
    print(json.dumps({"threads": args.threads, "clock": args.clock, "avx2_over_avx512": ratios, "flagged": flagged},
                     separators=(",", ":")))


if __name__ == "__main__":
    main()
