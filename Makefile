# keyvalue — set-up and checks. On a fresh machine `make demo` and
# `make test` install what is missing (redis-server, redis-sentinel via
# apt-get when run as root) and do their job.

GO       ?= go
BIN      := bin/keyvalue
TESTFLAGS ?= -race -count=1 -timeout 9m

.PHONY: all deps build test test-short vet demo bench-cache bench-lock bench-peers clean

all: test

## deps: make sure redis-server/redis-sentinel (or valkey-*) are installed
deps:
	@./scripts/ensure-servers

## build: build the CLI into bin/keyvalue (without the peer libraries; make demo builds it with them)
build:
	$(GO) build -o $(BIN) ./cmd/keyvalue

## vet: gofmt and go vet
vet:
	@fmt="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	if [ -n "$$fmt" ]; then echo "gofmt needed on: $$fmt" >&2; exit 1; fi
	$(GO) vet ./...

## test: every test against real servers, with the race detector (bench/ is
## its own module: it is vetted and built, its benchmarks run with bench-peers)
test: deps vet
	$(GO) test $(TESTFLAGS) ./...
	cd bench && $(GO) vet ./... && $(GO) build ./...

## test-short: skip the slow tests (Sentinel failover)
test-short: deps
	$(GO) test $(TESTFLAGS) -short ./...

## demo: the CLI's main job, keyvalue bench --quick, against a throwaway local
## server it starts itself; built from bench/ so the peer libraries take part
demo: deps
	cd bench && $(GO) build -o ../$(BIN) ./cmd/keyvalue
	./$(BIN) bench --quick --json bin/bench-report.json --html bin/bench-report.html

## bench-cache: keyvalue vs the naive baseline, side by side, with ratios
bench-cache: deps
	$(GO) test -run '^$$' -bench . -benchtime $${BENCHTIME:-2s} -count 1 ./cache | ./scripts/bench-ratios

## bench-lock: keyvalue's lock vs the naive polling lock, side by side
bench-lock: deps
	$(GO) test -run '^$$' -bench . -benchtime $${BENCHTIME:-300x} -count 1 ./lock | ./scripts/bench-ratios

## bench-peers: keyvalue vs redislock, redsync, valkeylock (bench/ has its own go.mod)
bench-peers: deps
	cd bench && $(GO) test -run '^$$' -bench . -benchtime $${BENCHTIME:-300x} -count 1 . | ../scripts/bench-ratios

clean:
	rm -rf bin
