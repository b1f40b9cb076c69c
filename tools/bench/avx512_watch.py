#!/usr/bin/env python3
"""Which functions using AVX-512 a run of a program enters, found by breakpoints.

    python3 tools/bench/avx512_watch.py BINARY [ARGS...]

Disassembles BINARY (`objdump`) and lists its functions that use AVX-512: those whose
code names a 512-bit register (`zmm`), a mask register (`k0` to `k7`) or one of the
registers only EVEX encodings reach (`xmm16` to `ymm31`), and those whose name says
`avx512`. Then runs `BINARY ARGS` under `gdb` with a one-shot breakpoint at the entry of
each, its output discarded, and prints one JSON line: the functions watched and those
entered, each with its module path. A function that uses AVX-512 is compiled for it
(`#[target_feature(enable = "avx512f")]`, or a closure or callee inlined into one):
reaching one of its instructions means entering it, so a run under `NN_ISA=avx2` that
enters none ran no AVX-512 instruction of this binary (shared libraries such as the C
library are not watched). Breakpoints cost nothing until hit, so the run keeps its speed.

Used by `tools/bench-vs-pytorch --isa avx2`; needs gdb (with Python) and objdump.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

REGISTER = re.compile(r"%(zmm\d+|k[0-7]\b|[xy]mm(1[6-9]|2\d|3[01])\b)")
FUNCTION = re.compile(r"^([0-9a-f]+) <(.*)>:$")

GDB_SCRIPT = r"""
import gdb, json
gdb.execute("set pagination off")
gdb.execute("set confirm off")
gdb.execute("set print thread-events off")
gdb.execute("set print inferior-events off")
gdb.execute("starti > /dev/null")
binary = os.path.realpath(gdb.current_progspace().filename)
base = None
for line in gdb.execute("info proc mappings", to_string=True).splitlines():
    fields = line.split()
    if len(fields) >= 5 and fields[-1] == binary:
        base = int(fields[0], 16) if base is None else min(base, int(fields[0], 16))
watched = json.load(open(WATCH))
names = {}
for address, name in watched:
    at = base + address
    gdb.Breakpoint(f"*{at:#x}", internal=True, temporary=True)
    names[at] = name
entered = []
while True:
    try:
        gdb.execute("continue", to_string=True)
    except gdb.error:
        break
    if not gdb.selected_inferior().pid:
        break
    pc = gdb.selected_frame().pc()
    if pc in names:
        entered.append(names[pc])
json.dump(entered, open(RESULT, "w"))
gdb.execute("kill")
"""


def avx512_functions(binary):
    """(address, name) of every function of `binary` that uses AVX-512."""
    out = subprocess.run(["objdump", "-d", "-C", "--no-show-raw-insn", binary], check=True,
                         capture_output=True, text=True).stdout
    found, current = [], None
    for line in out.splitlines():
        m = FUNCTION.match(line)
        if m:
            current = (int(m.group(1), 16), m.group(2))
            if "avx512" in current[1]:
                found.append(current)
        elif current and (not found or found[-1] is not current) and REGISTER.search(line):
            found.append(current)
    return found


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    binary = os.path.realpath(sys.argv[1])
    watched = avx512_functions(binary)
    with tempfile.TemporaryDirectory() as tmp:
        watch, result, script = (os.path.join(tmp, f) for f in ("watch.json", "result.json", "watch.py"))
        with open(watch, "w") as f:
            json.dump(watched, f)
        with open(script, "w") as f:
            f.write(f"import os\nWATCH = {watch!r}\nRESULT = {result!r}\n" + GDB_SCRIPT)
        proc = subprocess.run(["gdb", "--batch", "--nx", "-x", script, "--args", binary] + sys.argv[2:],
                              capture_output=True, text=True)
        if not os.path.exists(result):
            sys.exit(f"avx512_watch: gdb did not finish the run:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
        with open(result) as f:
            entered = json.load(f)
    print(json.dumps({"watched": sorted({name for _, name in watched}), "entered": sorted(set(entered))}))


if __name__ == "__main__":
    main()
