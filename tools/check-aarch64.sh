#!/bin/sh
# SPDX-License-Identifier: MIT
# `make check-aarch64`: cross-builds libweft, its tests and its examples
# for AArch64 Linux (cmake/aarch64-linux-gnu.cmake) and runs them under
# qemu-user. What runs and what is left out, and why: README, Platforms.
# Usage: tools/check-aarch64.sh [BUILD_DIR]   (default: build-aarch64)
# JOBS: parallel builds and tests (default: nproc).
set -eu
cd "$(dirname "$0")/.."
build=${1:-build-aarch64}
jobs=${JOBS:-$(nproc)}
tools/install-deps.sh aarch64

# Programs that the tests start themselves (servers, crash helpers, the
# install tests' programs) are AArch64 executables too: the kernel hands
# them to qemu through binfmt_misc, which Debian's qemu-user-static
# describes but, without systemd, nobody registers.
# The registry is the kernel's, not the file system's: in a chroot or a
# container where it is not mounted, qemu may be registered already (by
# the host), and only shows once it is mounted; registering it twice
# fails with EEXIST.
binfmt=/proc/sys/fs/binfmt_misc
if [ ! -e $binfmt/register ] && [ "$(id -u)" = 0 ]; then
    mount -t binfmt_misc binfmt_misc $binfmt
fi
if [ ! -e $binfmt/qemu-aarch64 ]; then
    if [ -w $binfmt/register ]; then
        cat /usr/lib/binfmt.d/qemu-aarch64.conf >$binfmt/register
    else
        echo "check-aarch64: qemu-aarch64 is not registered with" \
            "binfmt_misc (run as root): tests that start programs fail" >&2
    fi
fi
# The dynamic linker and C library of AArch64 programs, for qemu.
export QEMU_LD_PREFIX=/usr/aarch64-linux-gnu

cmake -S . -B "$build" -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWEFT_BENCH=OFF -DWEFT_WERROR=ON
cmake --build "$build" -j"$jobs"

# The examples, as `make demo` runs them.
for ex in 01-hello 02-stuck 03-deadlock 04-pipeline 05-generator; do
    echo "== $ex (qemu-aarch64)"
    "$build/examples/$ex"
done

# The suite, less the tests labelled no-qemu (tests/CMakeLists.txt). One
# test program at a time: under emulation, two of them starve each
# other's carriers, the monitor or the offload pool long enough to break
# the latency bounds some tests hold (weft.bind and weft.select did, run
# two at a time); each program still runs two tests at once.
cd "$build"
ctest --output-on-failure -j1 -LE no-qemu
