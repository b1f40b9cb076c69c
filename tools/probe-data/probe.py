"""Probe of the data loaders with mutated and hostile data files.

Generates N files from the bundled data sets (byte flips, inserted delimiters, repeated
lines, huge numbers in headers, truncation, gzip of the result, gzip bombs of
delimiters and newlines), runs `probe-data` on each in a child process limited to
LIMIT_MB of address space and TIMEOUT seconds, and counts the findings: a crash or
abort (a signal), a timeout, or a peak resident size above PEAK_MB.

    python3 tools/probe-data/probe.py BINARY N [SEED]
"""
import gzip, os, random, resource, subprocess, sys, tempfile, threading, time

# Exit status -6 is an abort (a failed allocation), 101 a panic.
LIMIT_MB, PEAK_MB, TIMEOUT = 2048, 1024, 60
DATA = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "data")
SEEDS = {n: open(os.path.join(DATA, n), "rb").read() for n in ["iris.csv", "co2.csv", "sunspots.csv", "words.txt"]}
SEEDS["digits.csv"] = gzip.decompress(open(os.path.join(DATA, "digits.csv.gz"), "rb").read())


def mutate(rng, text):
    lines = text.split(b"\n")
    for _ in range(rng.randint(1, 6)):
        lines = lines or [b""]
        op = rng.randrange(9)
        i = rng.randrange(len(lines))
        if op == 0 and lines[i]:  # flip a byte
            j = rng.randrange(len(lines[i]))
            lines[i] = lines[i][:j] + bytes([rng.randrange(256)]) + lines[i][j + 1:]
        elif op == 1:  # insert delimiters
            lines[i] += b"," * rng.choice([1, 10, 1000, 100000])
        elif op == 2:  # repeat a line
            lines[i:i + 1] = [lines[i]] * rng.choice([2, 100, 10000])
        elif op == 3:  # a huge number in a field of the first line (a header's counts)
            fields = lines[0].split(b",")
            fields[rng.randrange(len(fields))] = rng.choice([b"1099511627776", b"18446744073709551615", b"99999999999999999999", b"-1", b"+5", b"0"])
            lines[0] = b",".join(fields)
        elif op == 4:  # truncate
            lines = lines[: rng.randrange(len(lines) + 1)]
        elif op == 5:  # a quote that never closes
            lines[i] = b'"' + lines[i]
        elif op == 6:  # a label that rounds to an integer
            lines[i] += b".0000001"
        elif op == 7:  # long line of newlines or spaces
            lines[i] += rng.choice([b"\n", b" ", b"\r"]) * rng.choice([10, 100000])
        else:  # drop a line
            del lines[i]
    return b"\n".join(lines)


def bomb(rng):
    unit = rng.choice([b",", b",\n", b"\n", b"1\n", b"1,", b'"",', b" "])
    size = rng.choice([1 << 20, 16 << 20, 80 << 20, 300 << 20])
    return gzip.compress(unit * (size // len(unit)), compresslevel=9)


def main():
    binary, n = sys.argv[1], int(sys.argv[2])
    rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 0)
    tmp = tempfile.mkdtemp(prefix="probe-data-")
    findings, peak_max, slow_max, outcomes = [], 0, 0.0, {}
    for k in range(n):
        if k % 50 == 49:
            data, name = bomb(rng), f"{k}.csv.gz"
        else:
            seed = rng.choice(sorted(SEEDS))
            data = mutate(rng, SEEDS[seed])
            name = f"{k}-{seed}"
            if rng.random() < 0.3:
                data, name = gzip.compress(data, compresslevel=6), name + ".gz"
        path = os.path.join(tmp, name)
        open(path, "wb").write(data)
        limit = lambda: resource.setrlimit(resource.RLIMIT_AS, (LIMIT_MB << 20, LIMIT_MB << 20))
        start = time.time()
        proc = subprocess.Popen([binary, path], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, preexec_fn=limit)
        timer = threading.Timer(TIMEOUT, proc.kill)
        timer.start()
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        timer.cancel()
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        elapsed = time.time() - start
        slow_max = max(slow_max, elapsed)
        peak = usage.ru_maxrss >> 10  # KB on Linux
        peak_max = max(peak_max, peak)
        for line in out.decode(errors="replace").splitlines():
            outcomes[line] = outcomes.get(line, 0) + 1
        if elapsed >= TIMEOUT:
            findings.append((name, len(data), "timeout"))
        elif code != 0:
            findings.append((name, len(data), f"exit status {code}", f"peak {peak} MB"))
        elif peak > PEAK_MB:
            findings.append((name, len(data), f"peak {peak} MB"))
        os.remove(path)
    print(f"inputs tried: {n}; findings: {len(findings)}; largest peak RSS of any child: {peak_max} MB; slowest: {slow_max:.1f} s")
    kinds = {}
    for f in findings:
        kind = f[2].split(" MB")[0] if f[2].startswith("exit") or f[2] == "timeout" else "peak above %d MB" % PEAK_MB
        kinds[kind] = kinds.get(kind, 0) + 1
    for kind, count in sorted(kinds.items()):
        print(f"  {count:6d} findings: {kind}")
    for f in findings[:20]:
        print("  finding:", f)
    for line, count in sorted(outcomes.items()):
        print(f"  {count:6d} {line}")


main()
