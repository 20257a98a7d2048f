#!/bin/sh
# SPDX-License-Identifier: MIT
# link.sh — weft installed into a prefix, and prog.c built against it one
# way per call and run (WEFT_IO passes through to it).
#
#   link.sh install BUILD_DIR PREFIX   install the build there, afresh
#   link.sh MODE PREFIX WORK_DIR       build prog.c in WORK_DIR/MODE, run it
#
# MODE, as the README's "Linking" shows each:
#   shared      pkg-config --cflags --libs weft, and an rpath to its libdir
#   static      pkg-config --static --libs weft inside -Wl,-Bstatic: libweft.a
#               and the libraries it needs, with the shared C library
#   cmake       find_package(weft): weft::weft and weft::weft_static
#   static_exe  cc -static, with -Wl,-u,weft_static_libc: the hooks park
#   static_exe_unbound  cc -static without it: the program stops at once,
#               naming the option
# CC and CMAKE name the compiler and cmake. A step's output is shown only
# when it fails.
set -eu
mode=$1
here=$(cd "$(dirname "$0")" && pwd)

# step LOG CMD...: runs CMD, its output into LOG; on failure shows LOG.
step() {
    log=$1
    shift
    if ! "$@" >"$log" 2>&1; then
        echo "link.sh: failed: $*" >&2
        cat "$log" >&2
        exit 1
    fi
}

if [ "$mode" = install ]; then
    build=$2 prefix=$3
    log=$prefix.log
    rm -rf "$prefix"
    step "$log" "$CMAKE" --install "$build" --prefix "$prefix"
    # cmake/ldconfig.cmake: a prefix the loader does not search is named.
    if ! grep -q "dynamic loader does not search" "$log"; then
        echo "link.sh: install did not say how to find $prefix/lib:" >&2
        cat "$log" >&2
        exit 1
    fi
    exit 0
fi

prefix=$2 work=$3/$mode.${WEFT_IO:-auto}
rm -rf "$work"
mkdir -p "$work"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
pc() { pkg-config "$@" weft; }
step "$work/pc.log" pc --exists --print-errors
cflags="-Wall -Wextra -fstack-clash-protection $(pc --cflags)"
src=$here/prog.c
prog=$work/prog

# needs YES|NO FILE LIB: whether FILE names LIB among its shared libraries.
needs() {
    if readelf -d "$2" | grep -q "NEEDED.*\[$3"; then has=yes; else has=no; fi
    if [ "$has" != "$1" ]; then
        echo "link.sh: $2: needs $3: $has, expected $1" >&2
        readelf -d "$2" | grep NEEDED >&2
        exit 1
    fi
}

case $mode in
shared)
    step "$work/cc.log" $CC $cflags "$src" $(pc --libs) \
        -Wl,-rpath,"$(pc --variable=libdir)" -o "$prog"
    needs yes "$prog" libweft.so
    ;;
static)
    step "$work/cc.log" $CC $cflags "$src" \
        -Wl,-Bstatic $(pc --static --libs) -Wl,-Bdynamic -o "$prog"
    needs no "$prog" libweft.so
    ;;
cmake)
    step "$work/cmake.log" "$CMAKE" -S "$here/consumer" -B "$work" \
        -DCMAKE_C_COMPILER="$CC" -DCMAKE_PREFIX_PATH="$prefix" \
        -DWEFT_WANTED="$(pc --modversion)"
    step "$work/build.log" "$CMAKE" --build "$work"
    needs yes "$work/prog_shared" libweft.so
    needs no "$work/prog_static" libweft.so
    "$work/prog_shared"
    prog=$work/prog_static
    ;;
static_exe)
    step "$work/cc.log" $CC -static $cflags "$src" $(pc --static --libs) \
        -Wl,-u,weft_static_libc -o "$prog"
    needs no "$prog" libc.so
    ;;
static_exe_unbound)
    step "$work/cc.log" $CC -static $cflags "$src" $(pc --static --libs) \
        -o "$prog"
    if "$prog" 2>"$work/run.log"; then
        echo "link.sh: ran without the C library's functions bound" >&2
        exit 1
    fi
    if ! grep -q -- "-Wl,-u,weft_static_libc" "$work/run.log"; then
        echo "link.sh: the failure does not name the option:" >&2
        cat "$work/run.log" >&2
        exit 1
    fi
    echo "link.sh: stopped, naming the option, as documented"
    exit 0
    ;;
*)
    echo "link.sh: unknown mode $mode" >&2
    exit 2
    ;;
esac
"$prog"
