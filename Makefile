# The commands a newcomer needs:
#   make demo   builds the library and starts the C chat server
#   make check  the quick tier (a few minutes): fmt, clippy, unit and Rust
#               integration tests, the C tests once (no valgrind)
#   make test   runs the whole test suite (what CI runs)
CARGO ?= cargo
# Seconds per fuzz target: 6 targets x 40 s = the 4 x 60 s of before.
FUZZ_SECONDS ?= 40

.PHONY: all build check test check-bench test-rust test-tsan test-valgrind test-compat test-conformance test-conformance-deflate test-peers test-scale test-lwip test-lwip-tap test-mcu check-nostd test-tls test-conformance-tls test-conformance-firmware lint fuzz bench bench-suite footprint clean

all: build

# The C examples (chat server, echo listener/client) and `make demo`.
include c-examples/Makefile.examples

build:
	$(CARGO) build --release

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) clippy --no-default-features --target-dir target/nostd -- -D warnings
	$(CARGO) clippy --no-default-features --features no-log --target-dir target/nostd -- -D warnings

# The benchmark suite leaves the results of the last real run alone when
# a run measures nothing (every pass skipped, or no server selected or
# built): exit 1, folder untouched.
check-bench:
	@for args in "--skip echo,handshake,syscalls,idle" "--servers none --quick"; do \
	d=$$(mktemp -d) && echo keep > $$d/results.md && \
	if timeout 120 python3 benches/suite.py --results $$d $$args >$$d/log 2>&1 \
	   || ! grep -q "nothing measured" $$d/log; \
	then cat $$d/log; echo "check-bench ($$args): an empty run did not stop as one"; rm -rf $$d; exit 1; fi; \
	if [ "$$(cat $$d/results.md)" != keep ] || [ -e $$d/results.json ]; \
	then echo "check-bench ($$args): an empty run replaced the results"; rm -rf $$d; exit 1; fi; \
	rm -rf $$d; done; echo "check-bench: ok"

# A separate target dir: the no_std libnopoll.a (the whole C API for
# firmware) must not replace the std one that the examples and C tests link.
# symbols.sh fails if it needs anything from its host but the C library
# symbols firmware has.
check-nostd:
	$(CARGO) build --no-default-features --target-dir target/nostd
	$(CARGO) build --release --no-default-features --target-dir target/nostd
	tests/nostd/symbols.sh target/nostd/release/libnopoll.a
	tests/nostd/wake.sh target/nostd/release/libnopoll.a

test-rust:
	$(CARGO) test

# The quick tier, before a commit: what `make test` runs first, without
# the no_std builds, valgrind, sanitizers, lwIP, peers, Autobahn and fuzzing.
# tests/c_api.rs builds and runs every C test in tests/c once.
check:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) test

# The lock-free handle code (src/ffi/ published handles, dispatch record,
# stop cells) under ThreadSanitizer, std rebuilt with it (tools/tsan.sh).
test-tsan:
	TSAN_REQUIRED=1 tools/tsan.sh

test-valgrind:
	VALGRIND_REQUIRED=1 tests/c/valgrind.sh

# The C API coverage program (every contract function) under ASan and valgrind.
test-compat:
	VALGRIND_REQUIRED=1 tests/compat/sanitize.sh

# Autobahn|Testsuite, both roles, through the C API; fails on any
# difference from conformance/expected/.
test-conformance:
	./conformance/run.sh

# All 216 permessage-deflate cases (12.*, 13.*) per role, compared with
# conformance/expected/*-deflate-full.json: about 25 min per role on two
# cores, so not part of `make test` (which runs a 72-case subset per role).
test-conformance-deflate:
	./conformance/run.sh --deflate-full --deflate-only

# The same over wss:// (both roles verify the other's certificate).
test-conformance-tls:
	./conformance/run.sh --tls

# The firmware build (no_std, no-log: what runs on a Cortex-M) as an
# Autobahn server on the host, cases 1-10 (about 40 s).
test-conformance-firmware:
	./conformance/run.sh --firmware

# Independent peers: Python websockets both ways, headless Chromium.
test-peers:
	./tests/peers/run.sh

# Scale-out: two chat instances behind real nginx and HAProxy (PROXY v2),
# sharing a room through a real Redis; drain; Redis outage (loopback only).
test-scale:
	./tests/scale/run.sh

# wss:// against independent peers: Python ssl + websockets both ways
# (mutual TLS, TLS 1.1 only when asked), raw TLS sockets (two frames in one
# record, garbage, stalls, no close_notify), openssl s_client probes of the
# version policy, SNI and verification. Certificates made at run time.
test-tls:
	./tests/tls/run.sh

# nopoll's C API on real lwIP (Debian's liblwip-dev): our server and
# clients in one process over lwIP's loopback, std and no_std builds.
test-lwip:
	tests/lwip/run.sh

# Root only (else skipped with a message): Python websockets -> our server
# on lwIP over a tap in a private network namespace, both builds.
test-lwip-tap:
	tests/lwip/run_tap.sh

# The library on Cortex-M (README, "Firmware"): cross-builds for
# thumbv7m-none-eabi, thumbv7em-none-eabihf and thumbv6m-none-eabi (Debian's
# rustc-web, -Zbuild-std), then a test firmware with a server and clients
# over an in-memory socket table on QEMU mps2-an385 (M3) and mps2-an386
# (M4F); the M0 is built and linked only (no QEMU board).
test-mcu:
	tests/mcu/run.sh

# Footprint (docs/footprint.md): the library's share of a static C echo
# listener (std and no-std, with and without logging) and its heap per
# connection; then its share of the echo listener on a Cortex-M3
# (tools/footprint/mcu.sh, needs what test-mcu needs). Not part of `make
# test` (a measurement, not a check).
footprint:
	FOOTPRINT_FEATURES=no-log tools/footprint/run.sh --write-doc
	tools/footprint/mcu.sh

# Everything CI runs, in order of cost.
test: lint check-bench check-nostd test-rust test-tsan test-valgrind test-compat test-lwip test-lwip-tap test-mcu test-interop test-peers test-scale test-tls test-conformance test-conformance-tls test-conformance-firmware fuzz

fuzz:
	./fuzz/run.sh $(FUZZ_SECONDS)

bench:
	$(CARGO) bench --bench protocol

# The server benchmark suite (about 10 min; BENCH_ARGS=--quick for ~3 min):
# our C and Rust servers against raw TCP, libwebsockets, tokio-tungstenite.
bench-suite:
	benches/run.sh $(BENCH_ARGS)

clean: examples-clean
	$(CARGO) clean

# ---------------------------------------------------------------------------
# C library installation (drop-in for upstream nopoll):
#   make install PREFIX=/usr/local [DESTDIR=/staging]
#   make uninstall PREFIX=/usr/local
#   make header    refresh the committed include/nopoll.h after changing
#                  exported functions (tests/header.rs checks it is current)
# ---------------------------------------------------------------------------
PREFIX ?= /usr/local
DESTDIR ?=
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
# Upstream API level advertised to pkg-config (nopoll 0.4.x).
NOPOLL_PC_VERSION ?= 0.4.9
SO_MAJOR = 0
SO_VERSION = $(SO_MAJOR).0.0
TARGET_DIR ?= $(if $(CARGO_TARGET_DIR),$(CARGO_TARGET_DIR),target)
NOPOLL_HEADERS = include/nopoll.h $(filter-out include/nopoll.h,$(wildcard include/nopoll_*.h))

.PHONY: install uninstall header

install: build
	install -d $(DESTDIR)$(INCLUDEDIR)/nopoll $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PKGCONFIGDIR)
	install -m 644 $(NOPOLL_HEADERS) $(DESTDIR)$(INCLUDEDIR)/nopoll/
	install -m 644 $(TARGET_DIR)/release/libnopoll.a $(DESTDIR)$(LIBDIR)/libnopoll.a
	install -m 755 $(TARGET_DIR)/release/libnopoll.so $(DESTDIR)$(LIBDIR)/libnopoll.so.$(SO_VERSION)
	ln -sf libnopoll.so.$(SO_VERSION) $(DESTDIR)$(LIBDIR)/libnopoll.so.$(SO_MAJOR)
	ln -sf libnopoll.so.$(SO_MAJOR) $(DESTDIR)$(LIBDIR)/libnopoll.so
	sed -e 's|@prefix@|$(PREFIX)|g' -e 's|@libdir@|$(LIBDIR)|g' \
	    -e 's|@includedir@|$(INCLUDEDIR)|g' -e 's|@version@|$(NOPOLL_PC_VERSION)|g' \
	    nopoll.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/nopoll.pc

uninstall:
	rm -f $(addprefix $(DESTDIR)$(INCLUDEDIR)/nopoll/,$(notdir $(NOPOLL_HEADERS)))
	-rmdir $(DESTDIR)$(INCLUDEDIR)/nopoll 2>/dev/null
	rm -f $(DESTDIR)$(LIBDIR)/libnopoll.a $(DESTDIR)$(LIBDIR)/libnopoll.so \
	      $(DESTDIR)$(LIBDIR)/libnopoll.so.$(SO_MAJOR) $(DESTDIR)$(LIBDIR)/libnopoll.so.$(SO_VERSION) \
	      $(DESTDIR)$(PKGCONFIGDIR)/nopoll.pc

header:
	NOPOLL_BLESS_HEADER=1 $(CARGO) test --test header -- committed_header_matches_generated
