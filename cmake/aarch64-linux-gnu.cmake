# SPDX-License-Identifier: MIT
# Cross-builds weft for AArch64 Linux on an x86-64 Debian machine with
# Debian's cross compiler (gcc-aarch64-linux-gnu, libc6-dev-arm64-cross),
# for `make check-aarch64`, which runs the result under qemu-user.
#   cmake -S . -B build-aarch64 \
#     -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
# liburing and libdw for arm64 are not cross packages in Debian:
# tools/install-deps.sh aarch64 unpacks Debian's arm64 packages of them
# into WEFT_AARCH64_DEPS (default /opt/weft-aarch64), a root of its own,
# so that the machine's own packages and architectures stay as they were.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_ASM_COMPILER aarch64-linux-gnu-gcc)

if(NOT WEFT_AARCH64_DEPS)
  set(WEFT_AARCH64_DEPS $ENV{WEFT_AARCH64_DEPS})
endif()
if(NOT WEFT_AARCH64_DEPS)
  set(WEFT_AARCH64_DEPS /opt/weft-aarch64)
endif()
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu ${WEFT_AARCH64_DEPS})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# Test programs run through qemu-user with the cross C library's dynamic
# linker; programs that tests start themselves reach qemu through
# binfmt_misc (tools/check-aarch64.sh registers it), with the same
# QEMU_LD_PREFIX in their environment.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64-static -L /usr/aarch64-linux-gnu)

# pkg-config looks in the arm64 roots only: the machine's own .pc files
# describe x86-64 libraries.
set(ENV{PKG_CONFIG_LIBDIR}
  ${WEFT_AARCH64_DEPS}/usr/lib/aarch64-linux-gnu/pkgconfig)
set(ENV{PKG_CONFIG_SYSROOT_DIR} ${WEFT_AARCH64_DEPS})

# Programs find the unpacked liburing and libdw (and libdw's own
# libraries) where they lie: nothing else would tell the AArch64 dynamic
# linker, under qemu, or the linker, to look there.
set(CMAKE_BUILD_RPATH ${WEFT_AARCH64_DEPS}/usr/lib/aarch64-linux-gnu
  ${WEFT_AARCH64_DEPS}/lib/aarch64-linux-gnu)
# DT_RPATH, not DT_RUNPATH: it serves libdw's own dependencies too.
set(CMAKE_EXE_LINKER_FLAGS_INIT -Wl,--disable-new-dtags)
set(CMAKE_SHARED_LINKER_FLAGS_INIT -Wl,--disable-new-dtags)
