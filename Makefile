# parley — see README.md. Every target works on a fresh machine with Go and
# the PostgreSQL server binaries; tests start their own throwaway cluster
# unless PARLEY_TEST_DATABASE_URL points at a server.

GO       ?= go
BIN      := bin/parley
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X github.com/parley-list/parley/internal/app.Version=$(VERSION)
# Fuzzing time per target, e.g. make fuzz FUZZTIME=5m
FUZZTIME ?= 60s
# Extra go test flags, e.g. make test TESTFLAGS='-run TestServe -v'
TESTFLAGS ?=

.PHONY: all build run test lint third-party-check bench load faults fuzz fuzz-corpus cover clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/parley

# Start a server with the embedded PostgreSQL under ./data, mail written to
# ./data/outbox, and a demo list. Ctrl-C stops it (and the database).
run: build
	./$(BIN) serve

# The whole suite: unit, PostgreSQL-backed and end-to-end, with the race
# detector. Shuffled so tests cannot depend on order.
test:
	$(GO) test -race -shuffle=on -timeout 20m $(TESTFLAGS) ./...

lint: third-party-check
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	@# Unreachable functions from cmd/ (test helpers under internal/testutil
	@# are reached only from tests): delete them, or wire them in.
	@out=$$($(GO) tool deadcode ./...) || exit 1; \
	out=$$(printf '%s\n' "$$out" | grep -v '^internal/testutil/' | grep . || true); \
	if [ -n "$$out" ]; then echo "unreachable code (deadcode):"; echo "$$out"; exit 1; fi

# Each library carried under third_party/ is exactly its upstream release
# plus the patches in third_party/patches (each with its test), and its
# tests pass. third_party/README.md lists the patches.
third-party-check:
	third_party/carry.sh check

# Benchmarks against the real binary on loopback (see docs/performance.md);
# prints "BENCH <name> <value> <unit>" lines. BENCHFLAGS='-only ingest' etc.
BENCHFLAGS ?=
bench: build
	$(GO) run ./cmd/parley-bench -parley $(BIN) $(BENCHFLAGS)

# Load test (not in CI): 200 SMTP and 100 IMAP sessions (half in IDLE, some
# slow readers) for 60 s against one parley; latencies, errors, lost posts
# and peak RSS as BENCH lines; fails on any protocol error or lost post.
load: build
	$(GO) run ./cmd/parley-bench -parley $(BIN) -only load $(BENCHFLAGS)

# The fault-injection suite (internal/faults): two parley processes and a
# PostgreSQL that are killed, crashed and cut off under a mixed workload,
# then the invariant table. `make test` runs it for 40s; CI runs this short
# form; FAULTS_DURATION=30m is the long form. FAULTSFLAGS='-faults.seed=N'.
FAULTS_DURATION ?= 2m
FAULTSFLAGS ?=
faults:
	$(GO) test -count=1 -v -timeout 3h -run '^TestFaults$$' ./internal/faults -faults.duration=$(FAULTS_DURATION) $(FAULTSFLAGS)

# Run every fuzz target for FUZZTIME each; a crash fails the run. No test
# timeout: go test's default (10m) would cut a long fuzz run short.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -timeout 0 $$pkg; \
	  done; \
	done

# Copy up to 30 inputs per fuzz target from the fuzzer's cache into the
# package's testdata/fuzz, so they are committed and replayed by go test.
fuzz-corpus:
	@cache=$$($(GO) env GOCACHE)/fuzz; \
	for dir in $$(find $$cache -type d -name 'Fuzz*' 2>/dev/null); do \
	  pkg=$${dir#$$cache/}; pkg=$${pkg%/*}; name=$${dir##*/}; \
	  rel=$${pkg#github.com/parley-list/parley/}; [ -d "$$rel" ] || continue; \
	  mkdir -p $$rel/testdata/fuzz/$$name; \
	  ls $$dir | head -30 | while read f; do cp -n $$dir/$$f $$rel/testdata/fuzz/$$name/; done; \
	  echo "$$rel/testdata/fuzz/$$name: $$(ls $$rel/testdata/fuzz/$$name | wc -l) inputs"; \
	done

cover:
	$(GO) test -shuffle=on -coverprofile=coverage.out ./...
	$(GO) tool cover -func=coverage.out | tail -1

clean:
	rm -rf bin coverage.out
