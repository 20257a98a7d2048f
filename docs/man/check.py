#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""check.py — the manual pages are well formed and cover weft.h.

  check.py lint MANDIR
      Every page under MANDIR/man3 and MANDIR/man7 is either a link page
      (one line, `.so man3/PAGE.3`, naming a page that is not itself a
      link) or a page that `mandoc -Tlint` and `groff -man -z -ww` pass
      without a word. A formatter that is not installed is skipped; with
      neither, the check exits 77 (skipped), never passes.

  check.py coverage MANDIR HEADER
      Every function HEADER declares with WEFT_API has a page of its own
      name in MANDIR/man3, and the page it is (or links to) lists the
      function in its NAME section; every public macro of HEADER is listed
      in the NAME section of some page.
"""
import os
import re
import shutil
import subprocess
import sys

SKIP = 77
SO = re.compile(r"^\.so (man[37]/[A-Za-z0-9_]+\.[37])\n?$")


def pages(mandir):
    for sec in ("man3", "man7"):
        d = os.path.join(mandir, sec)
        for name in sorted(os.listdir(d)):
            yield sec, name, os.path.join(d, name)


def link_target(path):
    """The page a link page names, or None for a page of its own."""
    with open(path) as f:
        text = f.read()
    m = SO.match(text)
    if text.startswith(".so") and not m:
        return "malformed"
    return m.group(1) if m else None


def run_quiet(cmd, path):
    """The formatter's complaints about path ('' when it has none)."""
    p = subprocess.run(cmd + [path], capture_output=True, text=True)
    out = (p.stdout + p.stderr).strip()
    if p.returncode and not out:
        out = f"{cmd[0]} exited with {p.returncode}"
    return out


def lint(mandir):
    tools = [c for c in (["mandoc", "-Tlint", "-Wall"],
                         ["groff", "-man", "-z", "-ww"])
             if shutil.which(c[0])]
    if not tools:
        print("neither mandoc nor groff is installed: pages not linted")
        return SKIP
    bad = 0
    for sec, name, path in pages(mandir):
        target = link_target(path)
        if target == "malformed":
            print(f"{sec}/{name}: a .so page must be one line "
                  "'.so manN/PAGE.N'")
            bad += 1
        elif target:
            full = os.path.join(mandir, target)
            if not os.path.isfile(full) or link_target(full):
                print(f"{sec}/{name}: links to {target}, which is not a page")
                bad += 1
        else:
            for tool in tools:
                out = run_quiet(tool, path)
                if out:
                    print(f"{sec}/{name}: {tool[0]} says:\n{out}")
                    bad += 1
    names = " and ".join(t[0] for t in tools)
    print(f"{bad} problem(s); pages checked with {names}")
    return 1 if bad else 0


def declared(header):
    """Functions declared with WEFT_API, and public macros."""
    with open(header) as f:
        text = f.read()
    funcs = re.findall(r"^WEFT_API\b[^;(]*?\b(weft_\w+)\s*\(", text, re.M)
    macros = re.findall(r"^#define\s+(WEFT_\w+)", text, re.M)
    internal = {"WEFT_H", "WEFT_API"}
    return sorted(set(funcs)), sorted(set(macros) - internal)


def name_section(path):
    """The names a page's NAME section lists."""
    with open(path) as f:
        text = f.read()
    m = re.search(r"^\.SH NAME\n(.*?)\\-", text, re.M | re.S)
    if not m:
        return set()
    return set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", m.group(1)))


def coverage(mandir, header):
    funcs, macros = declared(header)
    bad = 0
    listed = set()
    for sec, name, path in pages(mandir):
        if not link_target(path):
            listed |= name_section(path)
    for fn in funcs:
        path = os.path.join(mandir, "man3", fn + ".3")
        if not os.path.isfile(path):
            print(f"{fn}: no page man3/{fn}.3")
            bad += 1
            continue
        target = link_target(path)
        page = os.path.join(mandir, target) if target else path
        if not os.path.isfile(page) or fn not in name_section(page):
            print(f"{fn}: not in the NAME section of "
                  f"{os.path.relpath(page, mandir)}")
            bad += 1
    for mac in macros:
        if mac not in listed:
            print(f"{mac}: in no page's NAME section")
            bad += 1
    print(f"{len(funcs)} functions, {len(macros)} macros of "
          f"{os.path.basename(header)}: {bad} without a page")
    return 1 if bad else 0


def main(argv):
    if len(argv) == 3 and argv[1] == "lint":
        return lint(argv[2])
    if len(argv) == 4 and argv[1] == "coverage":
        return coverage(argv[2], argv[3])
    print(__doc__.strip(), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
