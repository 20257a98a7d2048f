/* SPDX-License-Identifier: MIT */
/*
 * backtrace.c — the call stacks of virtual threads, for dumps and stack
 * overflow reports.
 *
 * Walking. Everything is built with frame pointers, so a stack is a chain
 * of (saved frame pointer, return address) pairs: rbp's on x86-64, the
 * frame records of x29 on AArch64, the same two words in the same order.
 * A parked thread's chain starts at the registers weft__ctx_switch saved
 * (arch/context.h: WEFT__CTX_FP_AT and WEFT__CTX_PC_AT above the saved
 * sp); a faulting thread's at the registers of the signal's context.
 * Each step must point upward and stay inside the thread's stack, and
 * every read goes through process_vm_readv (or, where that is refused,
 * a pipe: read_word): a dump runs beside the threads it shows, and a parked
 * thread may wake, finish and give its stack back (even unmapped) while
 * it is being walked. A torn chain ends the walk; it never faults.
 *
 * Symbolizing. With libdw, each address gets its function (static ones
 * included) and, where debug information exists, file:line; without it,
 * dladdr gives the nearest exported symbol. Return addresses are looked up
 * one byte back, inside the call instruction. Leading frames inside the
 * runtime (weft__*) are left out: a parked thread's stack shows where the
 * program waits, starting at the weft_ call it made.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#ifdef WEFT_HAVE_LIBDW
#include <elfutils/libdwfl.h>
#endif

#include "base/real.h"
#include "sched/poll.h"
#include "sched/carrier.h"
#include "sched/stack.h"
#include "sched/thread.h"
#include "sched/backtrace.h"

/* The word at addr through a pipe of its own: write(2) fails with
 * EFAULT on an address that is not mapped where a load would fault.
 * Five system calls a word, for the few places that have no
 * process_vm_readv. Async-signal-safe, as overflow.c needs. */
static bool read_word_piped(uintptr_t addr, uintptr_t *out)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC))
        return false;
    bool ok = weft__real(write)(p[1], (const void *)addr, sizeof *out) ==
                  (ssize_t)sizeof *out &&
              weft__real(read)(p[0], out, sizeof *out) ==
                  (ssize_t)sizeof *out;
    weft__real(close)(p[0]);
    weft__real(close)(p[1]);
    return ok;
}

/* Reads one word at addr without faulting; false if it is not mapped.
 * Where process_vm_readv is refused (ENOSYS under qemu-user; EPERM under
 * a seccomp profile without it, as container runtimes' defaults are),
 * every later read goes through a pipe. The flag is a hint, relaxed:
 * a reader that misses it only tries process_vm_readv once more. */
static bool read_word(uintptr_t addr, uintptr_t *out)
{
    static _Atomic bool no_vm_readv;
    if (!atomic_load_explicit(&no_vm_readv, memory_order_relaxed)) {
        struct iovec local = {out, sizeof *out};
        struct iovec remote = {(void *)addr, sizeof *out};
        ssize_t n = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
        if (n == (ssize_t)sizeof *out)
            return true;
        if (n >= 0 || (errno != ENOSYS && errno != EPERM))
            return false;
        atomic_store_explicit(&no_vm_readv, true, memory_order_relaxed);
    }
    return read_word_piped(addr, out);
}

int weft__backtrace_from(uintptr_t fp, uintptr_t pc, uintptr_t lo,
                         uintptr_t hi, uintptr_t *pcs, int max)
{
    int n = 0;
    if (pc && n < max)
        pcs[n++] = pc;
    while (n < max && fp >= lo && fp + 16 <= hi && !(fp & 7)) {
        uintptr_t next, ret;
        if (!read_word(fp, &next) || !read_word(fp + 8, &ret) || !ret)
            break;
        pcs[n++] = ret;
        if (next <= fp) /* the outermost frame, or a torn chain */
            break;
        fp = next;
    }
    return n;
}

int weft__backtrace_parked(const weft_thread *g, uintptr_t *pcs, int max)
{
    const weft__stack *s = __atomic_load_n(&g->stack, __ATOMIC_ACQUIRE);
    uintptr_t sp = s ? (uintptr_t)g->ctx.sp : 0; /* no stack: never ran */
    if (!sp)
        return 0;
    uintptr_t lo = (uintptr_t)s->lo, hi = lo + s->size, fp, pc;
    if (sp < lo || sp + WEFT__CTX_SAVE_BYTES > hi ||
        !read_word(sp + WEFT__CTX_FP_AT, &fp) ||
        !read_word(sp + WEFT__CTX_PC_AT, &pc))
        return 0;
    return weft__backtrace_from(fp, pc, lo, hi, pcs, max);
}

/* ------------------------------------------------------------ symbols */

struct frame_info {
    char func[128];
    const char *file;   /* NULL: unknown */
    int line;
    const char *module; /* for frames without a symbol */
    uintptr_t offset;   /* ... relative to it */
};

#ifdef WEFT_HAVE_LIBDW
static Dwfl *open_dwfl(void)
{
    static const Dwfl_Callbacks cb = {
        .find_elf = dwfl_linux_proc_find_elf,
        .find_debuginfo = dwfl_standard_find_debuginfo,
    };
    Dwfl *d = dwfl_begin(&cb);
    if (!d)
        return NULL;
    if (dwfl_linux_proc_report(d, getpid()) ||
        dwfl_report_end(d, NULL, NULL)) {
        dwfl_end(d);
        return NULL;
    }
    return d;
}

/* The source file and line of pc in mod; NULL if it has none.
 * dwfl_module_getsrc finds pc's compilation unit through .debug_aranges
 * alone in the libdw of Debian 12 (0.188), and clang writes no such
 * section unless asked (-gdwarf-aranges): there each unit of the module
 * is asked whether it covers pc, as newer libdw does itself. */
static const char *source_of(Dwfl_Module *mod, uintptr_t pc, int *line)
{
    Dwfl_Line *dl = dwfl_module_getsrc(mod, pc);
    if (dl)
        return dwfl_lineinfo(dl, NULL, line, NULL, NULL, NULL);
    Dwarf_Addr bias;
    Dwarf_Die *cu = NULL;
    while ((cu = dwfl_module_nextcu(mod, cu, &bias))) {
        if (dwarf_haspc(cu, pc - bias) <= 0)
            continue;
        Dwarf_Line *l = dwarf_getsrc_die(cu, pc - bias);
        return l && !dwarf_lineno(l, line) ? dwarf_linesrc(l, NULL, NULL)
                                           : NULL;
    }
    return NULL;
}

static bool describe_dw(Dwfl *d, uintptr_t pc, struct frame_info *fi)
{
    Dwfl_Module *mod = d ? dwfl_addrmodule(d, pc) : NULL;
    const char *name = mod ? dwfl_module_addrname(mod, pc) : NULL;
    if (!name)
        return false;
    snprintf(fi->func, sizeof fi->func, "%s", name);
    const char *file = source_of(mod, pc, &fi->line);
    if (file) {
        const char *slash = strrchr(file, '/');
        fi->file = slash ? slash + 1 : file;
    }
    return true;
}
#endif

static void describe_dl(uintptr_t pc, struct frame_info *fi)
{
    Dl_info info;
    if (!dladdr((void *)pc, &info))
        return;
    if (info.dli_sname) {
        snprintf(fi->func, sizeof fi->func, "%s+0x%zx", info.dli_sname,
                 (size_t)(pc - (uintptr_t)info.dli_saddr));
        return;
    }
    if (info.dli_fname) {
        const char *slash = strrchr(info.dli_fname, '/');
        fi->module = slash ? slash + 1 : info.dli_fname;
        fi->offset = pc - (uintptr_t)info.dli_fbase;
    }
}

/* A public weft_ call: where the program's own frames end. */
static bool public_entry(const struct frame_info *fi)
{
    return !strncmp(fi->func, "weft_", 5) && strncmp(fi->func, "weft__", 6);
}

/* Formats into a buffer on the stack and writes it with one write(2):
 * usable in a signal handler (dprintf allocates a stream buffer). */
__attribute__((format(printf, 2, 3))) static void out(int fd,
                                                      const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof buf - 1)
        n = (int)sizeof buf - 1;
    /* libc's write, not weft's hook: this may run in a signal handler on
     * a virtual thread, which must never park. */
    ssize_t w = n > 0 ? weft__real(write)(fd, buf, (size_t)n) : 0;
    (void)w;
}

static void print_frame(int fd, int depth, int i, uintptr_t pc,
                        const struct frame_info *fi)
{
    char where[300] = "";
    if (fi->file)
        snprintf(where, sizeof where, " (%s:%d)", fi->file, fi->line);
    if (fi->func[0])
        out(fd, "%*s#%d %s%s\n", depth * 2, "", i, fi->func, where);
    else if (fi->module)
        out(fd, "%*s#%d %s+0x%zx%s\n", depth * 2, "", i, fi->module,
            (size_t)fi->offset, where);
    else
        out(fd, "%*s#%d 0x%zx%s\n", depth * 2, "", i, (size_t)pc, where);
}

weft__symbols *weft__symbols_open(void)
{
#ifdef WEFT_HAVE_LIBDW
    return (weft__symbols *)open_dwfl();
#else
    return NULL;
#endif
}

void weft__symbols_close(weft__symbols *sym)
{
#ifdef WEFT_HAVE_LIBDW
    if (sym)
        dwfl_end((Dwfl *)sym);
#else
    (void)sym;
#endif
}

bool weft__symbol_name(weft__symbols *sym, uintptr_t addr, char *buf,
                       size_t size)
{
    struct frame_info fi;
    memset(&fi, 0, sizeof fi);
    bool found = false;
#ifdef WEFT_HAVE_LIBDW
    found = describe_dw((Dwfl *)sym, addr, &fi);
#else
    (void)sym;
#endif
    if (!found)
        describe_dl(addr, &fi);
    if (!fi.func[0])
        return false;
    snprintf(buf, size, "%s", fi.func);
    return true;
}

void weft__backtrace_print(int fd, const uintptr_t *pcs, int n, int depth,
                           weft__symbols *sym)
{
    struct frame_info fis[WEFT__BT_MAX];
    if (n > WEFT__BT_MAX)
        n = WEFT__BT_MAX;
#ifdef WEFT_HAVE_LIBDW
    Dwfl *d = (Dwfl *)sym;
#else
    (void)sym;
#endif
    int first = 0;
    for (int i = 0; i < n; i++) {
        /* The first address is where the thread stopped, the others are
         * return addresses: look those up inside their call. */
        uintptr_t at = i == 0 ? pcs[i] : pcs[i] - 1;
        struct frame_info *fi = &fis[i];
        memset(fi, 0, sizeof *fi);
        bool found = false;
#ifdef WEFT_HAVE_LIBDW
        found = describe_dw(d, at, fi);
#endif
        if (!found)
            describe_dl(at, fi);
        if (!first && public_entry(fi))
            first = i; /* frames above it are the runtime's own */
    }
    for (int i = first, shown = 0; i < n; shown++) {
        int same = 1; /* deep recursion: one line per run of one frame */
        while (i + same < n && pcs[i + same] == pcs[i])
            same++;
        print_frame(fd, depth, shown, pcs[i], &fis[i]);
        if (same > 1)
            out(fd, "%*s   ... the same frame %d more times\n",
                    depth * 2, "", same - 1);
        i += same;
    }
}
