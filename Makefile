# The two commands a newcomer needs:
#   make demo   builds the library and starts the C chat server
#   make test   runs the whole test suite (what CI runs)
CARGO ?= cargo
FUZZ_SECONDS ?= 60

.PHONY: all build test test-rust check-nostd lint fuzz bench clean

all: build

build:
	$(CARGO) build --release

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) clippy --no-default-features -- -D warnings

check-nostd:
	$(CARGO) build --no-default-features
	$(CARGO) build --release --no-default-features

test-rust:
	$(CARGO) test

test: lint check-nostd test-rust fuzz

fuzz:
	./fuzz/run.sh $(FUZZ_SECONDS)

bench:
	$(CARGO) bench --bench protocol

clean:
	$(CARGO) clean
