#!/usr/bin/env python3
"""Writes examples/data/words.txt: a deterministic subset of Debian's `wamerican` word list.

    python3 tools/data/words_subset.py /usr/share/dict/american-english

The source is `wamerican` 2020.12.07-2 (SCOWL by Kevin Atkinson, size 50); its
copyright file is copied next to the subset as examples/data/words.COPYRIGHT. The
subset keeps the words of 4 to 8 letters written in lowercase ASCII only (no proper
nouns, no possessives, no accents), in the file's order, then every 8th of them
(the 1st, the 9th, ...), one word per line.
"""
import re
import sys
from pathlib import Path

MIN_LEN, MAX_LEN, EVERY = 4, 8, 8


def main() -> None:
    source = Path(sys.argv[1] if len(sys.argv) > 1 else "/usr/share/dict/american-english")
    out = Path(__file__).resolve().parents[2] / "examples" / "data" / "words.txt"
    pattern = re.compile(rf"[a-z]{{{MIN_LEN},{MAX_LEN}}}")
    words = [w for w in source.read_text(encoding="utf-8").split("\n") if pattern.fullmatch(w)]
    subset = words[::EVERY]
    out.write_text("".join(w + "\n" for w in subset), encoding="ascii")
    print(f"{len(words)} words of {MIN_LEN}-{MAX_LEN} lowercase letters, {len(subset)} written to {out}")


if __name__ == "__main__":
    main()
