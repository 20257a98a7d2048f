# SPDX-License-Identifier: MIT
# weft-gdb.py — gdb commands for weft's virtual threads.
#
#   (gdb) source tools/weft-gdb.py
#   (gdb) weft threads          every virtual thread: id, name, state, wait
#   (gdb) weft bt ID            the stack of virtual thread ID (parked or
#                               queued: walked from the registers its last
#                               switch saved; a running one is a carrier's
#                               OS thread: use gdb's own `thread N` + `bt`)
#
# Needs a libweft built with debug information (the default build is). The
# walk follows frame pointers, as weft's own dumps do: see
# src/sched/backtrace.c and the save areas in src/arch/*/switch.S.

import gdb

STATES = {0: "new", 1: "runnable", 2: "running", 3: "waiting", 4: "done"}
# Offsets in the save area weft__ctx_switch leaves at the saved sp: the
# caller's frame pointer and the return address (src/arch/context.h).
SAVED_FP_PC = {"x86-64": (8, 16), "aarch64": (0, 8)}


def _saved_fp_pc():
    arch = gdb.selected_inferior().architecture().name()
    for name, offsets in SAVED_FP_PC.items():
        if name in arch:
            return offsets
    raise gdb.GdbError("weft: no save area layout for " + arch)


def _threads():
    """Every thread record ever allocated, live ones first as found."""
    g = gdb.parse_and_eval("weft__S.all_g")
    while int(g) != 0:
        yield g
        g = g["all_next"]


def _is_live(g):
    return int(g["magic"]) == 0x77656674  # "weft"


def _name(g):
    name = g["name"].string()
    if name:
        return name
    fn = int(g["fn"])
    sym = gdb.execute("info symbol 0x%x" % fn, to_string=True).split(" ")[0]
    return sym if sym and not sym.startswith("No") else "fn@0x%x" % fn


def _wait_kind(g):
    """The wait's name, from the weft__wait_kind enumeration's values."""
    k = int(g["wait_kind"])
    try:
        for f in gdb.lookup_type("weft__wait_kind").fields():
            if f.enumval == k:
                return f.name.replace("WEFT__WAIT_", "").lower()
    except gdb.error:
        pass
    return str(k)


def _read_word(addr):
    mem = gdb.selected_inferior().read_memory(addr, 8)
    return int.from_bytes(bytes(mem), "little")


def _frames(g):
    stack = g["stack"]
    sp = int(g["ctx"]["sp"])
    if int(stack) == 0 or sp == 0:
        return []
    lo = int(stack["lo"])
    hi = lo + int(stack["size"])
    try:
        fp_at, pc_at = _saved_fp_pc()
        fp = _read_word(sp + fp_at)
        pcs = [_read_word(sp + pc_at)]
        while lo <= fp and fp + 16 <= hi and len(pcs) < 64:
            nxt, ret = _read_word(fp), _read_word(fp + 8)
            if ret == 0:
                break
            pcs.append(ret)
            if nxt <= fp:
                break
            fp = nxt
    except gdb.MemoryError:
        pass
    return pcs


def _describe(pc, first):
    at = pc if first else pc - 1
    block = gdb.block_for_pc(at)
    while block and not block.function:  # an inner lexical block
        block = block.superblock
    func = block.function.name if block else None
    sal = gdb.find_pc_line(at)
    where = ""
    if sal.symtab:
        where = " at %s:%d" % (sal.symtab.filename, sal.line)
    return "0x%016x in %s%s" % (pc, func or "??", where)


class Weft(gdb.Command):
    """weft threads | weft bt ID — weft's virtual threads."""

    def __init__(self):
        super().__init__("weft", gdb.COMMAND_USER, prefix=True)


class WeftThreads(gdb.Command):
    """List weft's virtual threads: id, name, state, what they wait on."""

    def __init__(self):
        super().__init__("weft threads", gdb.COMMAND_USER)

    def invoke(self, arg, from_tty):
        n = 0
        for g in _threads():
            if not _is_live(g):
                continue
            state = STATES.get(int(g["state"]), "?")
            if state == "done":
                continue
            line = "#%d '%s' %s" % (int(g["id"]), _name(g), state)
            if state == "waiting":
                line += " on %s" % _wait_kind(g)
            gdb.write(line + "\n")
            n += 1
        gdb.write("%d virtual threads\n" % n)


class WeftBt(gdb.Command):
    """Print the stack of a parked or queued virtual thread: weft bt ID."""

    def __init__(self):
        super().__init__("weft bt", gdb.COMMAND_USER)

    def invoke(self, arg, from_tty):
        try:
            want = int(arg, 0)
        except ValueError:
            raise gdb.GdbError("usage: weft bt ID")
        for g in _threads():
            if _is_live(g) and int(g["id"]) == want:
                if STATES.get(int(g["state"])) == "running":
                    raise gdb.GdbError("#%d is running on a carrier: use "
                                       "`thread N` and `bt`" % want)
                pcs = _frames(g)
                if not pcs:
                    raise gdb.GdbError("#%d has no stack to walk" % want)
                for i, pc in enumerate(pcs):
                    gdb.write("#%-3d%s\n" % (i, _describe(pc, i == 0)))
                return
        raise gdb.GdbError("no virtual thread #%d" % want)


Weft()
WeftThreads()
WeftBt()
