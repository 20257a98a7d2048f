# SPDX-License-Identifier: MIT
# Thin wrapper over CMake. `make` builds libweft; `make check` installs what
# the tests need (as root, Debian), then runs the suite in four builds:
# plain, ASan+UBSan, TSan (gcc), plain with clang, and a short fuzz run of
# the HTTP parser. Every build of `make check` treats warnings as errors.
BUILD ?= build
JOBS ?= $(shell nproc)
PREFIX ?= /usr/local
CMAKE_FLAGS ?=
CTEST = ctest --output-on-failure
CHECK_FLAGS = -DWEFT_BENCH=OFF -DWEFT_WERROR=ON
# The HTTP parser's libFuzzer target (clang only): `make check-fuzz` runs it
# FUZZ_SECONDS_CHECK seconds, `make fuzz` FUZZ_SECONDS. New inputs go to
# build-fuzz/corpus; tests/fuzz/corpus holds the seeds and is only read.
FUZZ_SECONDS ?= 600
FUZZ_SECONDS_CHECK ?= 20
FUZZ_BIN = build-fuzz/http_parse_fuzz

.PHONY: all deps check check-plain check-asan check-tsan check-fuzz fuzz \
  fuzz-build bench demo install clean check-clang check-aarch64

# `make`, `make demo` and `make install` build the library and the
# examples, not the tests, after installing the Debian packages they need
# (as root; otherwise they are named). `make install` ends with
# cmake/ldconfig.cmake.
.PHONY: deps-build
all: deps-build
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWEFT_TESTS=OFF \
	  $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j$(JOBS)

deps-build:
	@tools/install-deps.sh build

deps:
	@tools/install-deps.sh test

check: deps check-plain check-asan check-tsan check-clang check-fuzz
	@echo "make check: all suites passed"

check-plain:
	cmake -S . -B build-check -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CHECK_FLAGS)
	cmake --build build-check -j$(JOBS)
	cd build-check && $(CTEST) -j$(JOBS)

check-asan:
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug $(CHECK_FLAGS) \
	  -DWEFT_SANITIZE=address,undefined
	cmake --build build-asan -j$(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 $(CTEST) -j$(JOBS)

check-tsan:
	cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CHECK_FLAGS) \
	  -DWEFT_SANITIZE=thread
	cmake --build build-tsan -j$(JOBS)
	# One test program at a time: under TSan two of them starve each other
	# of the two CPUs for tens of ms, and the timing checks fail.
	cd build-tsan && TSAN_OPTIONS=halt_on_error=1 $(CTEST) -j1

# The plain suite again, everything built by clang and clang++.
check-clang:
	CC=clang CXX=clang++ cmake -S . -B build-clang \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CHECK_FLAGS)
	cmake --build build-clang -j$(JOBS)
	cd build-clang && $(CTEST) -j$(JOBS)

# AArch64: the library, the tests and the examples cross-built, and run
# under qemu-user (tools/check-aarch64.sh; README, Platforms). Not part of
# `make check`: CI runs it after.
check-aarch64:
	JOBS=$(JOBS) tools/check-aarch64.sh build-aarch64

fuzz-build:
	mkdir -p build-fuzz/corpus
	clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	  -Iexamples examples/http_parse.c tests/fuzz/http_parse_fuzz.c -o $(FUZZ_BIN)

check-fuzz: fuzz-build
	$(FUZZ_BIN) -max_total_time=$(FUZZ_SECONDS_CHECK) build-fuzz/corpus tests/fuzz/corpus

fuzz: fuzz-build
	$(FUZZ_BIN) -max_total_time=$(FUZZ_SECONDS) build-fuzz/corpus tests/fuzz/corpus

bench:
	@tools/install-deps.sh bench
	bench/run.sh

demo: all
	$(BUILD)/examples/01-hello
	$(BUILD)/examples/02-stuck
	$(BUILD)/examples/03-deadlock
	$(BUILD)/examples/04-pipeline
	$(BUILD)/examples/05-generator

install: all
	cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf build build-check build-asan build-tsan build-clang build-bench \
	  build-fuzz build-aarch64
