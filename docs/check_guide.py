#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""check_guide.py — docs/guide.md says what its programs are and do.

  check_guide.py code GUIDE DIR
      Every ```c block of GUIDE is a run of whole lines of one of the
      .c files in DIR, as written there.

  check_guide.py run GUIDE PROGRAM
      PROGRAM exits 0, and what it prints is one of GUIDE's plain ```
      blocks (the "It prints:" ones), line for line.
"""
import glob
import os
import re
import subprocess
import sys

BLOCK = re.compile(r"^```(\w*)\n(.*?)^```$", re.M | re.S)


def blocks(guide, lang):
    with open(guide) as f:
        text = f.read()
    return [m.group(2) for m in BLOCK.finditer(text) if m.group(1) == lang]


def contains(lines, part):
    n = len(part)
    return any(lines[i:i + n] == part for i in range(len(lines) - n + 1))


def check_code(guide, src_dir):
    sources = {}
    for path in sorted(glob.glob(os.path.join(src_dir, "*.c"))):
        with open(path) as f:
            sources[os.path.basename(path)] = f.read().splitlines()
    bad = 0
    found = blocks(guide, "c")
    for i, block in enumerate(found, 1):
        part = block.splitlines()
        if not any(contains(lines, part) for lines in sources.values()):
            print(f"code block {i} of {guide}, which begins\n    {part[0]}\n"
                  f"is not in any of {', '.join(sources)} as written")
            bad += 1
    print(f"{len(found)} code blocks, {bad} not in {src_dir}")
    return 1 if bad else 0


def check_run(guide, program):
    p = subprocess.run([program], capture_output=True, text=True,
                       timeout=120)
    sys.stdout.write(p.stdout)
    sys.stderr.write(p.stderr)
    if p.returncode:
        print(f"{program} exited with {p.returncode}")
        return 1
    if p.stdout not in blocks(guide, ""):
        print(f"what {os.path.basename(program)} printed is not an output "
              f"block of {guide}")
        return 1
    return 0


def main(argv):
    if len(argv) == 4 and argv[1] == "code":
        return check_code(argv[2], argv[3])
    if len(argv) == 4 and argv[1] == "run":
        return check_run(argv[2], argv[3])
    print(__doc__.strip(), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
