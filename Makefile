# keyvalue — set-up and checks. On a fresh machine `make demo` and
# `make test` install what is missing (redis-server, redis-sentinel, and
# for make test chromium, via apt-get when run as root) and do their job.
#
# Eight modules live in this tree: the library (.), the CLI with the peer
# libraries its benchmark compares with (cmd/keyvalue), the
# gorilla/sessions adapter (session/gorillastore), the example web
# application with the OpenTelemetry SDK and Prometheus exporter
# (examples/webapp), the example of cloud credentials (examples/cloudauth),
# the network-fault scenarios with Toxiproxy (internal/netfaults), the
# operations page's browser test with chromedp (internal/browsertest) and
# the release check (tools/releasecheck). Each
# keeps its own dependencies and requires the library by version; the
# committed go.work makes them one workspace, so every target builds the
# tree as it is. Every target below covers all of them.

GO        ?= go
BIN       := bin/keyvalue
MODULES   := . cmd/keyvalue session/gorillastore examples/webapp examples/cloudauth internal/netfaults internal/browsertest tools/releasecheck
TESTFLAGS ?= -race -count=1 -timeout 9m
# The workspace of the tree (an outer GOWORK or GOWORK=off must not change
# what the targets build).
export GOWORK := $(CURDIR)/go.work

VALKEY_BIN ?= ../shared/valkey/bin

.PHONY: all deps browser-deps build test test-acl test-valkey test-short vet tidy demo check-report admin-screenshots bench-scale bench-cache bench-lock bench-peers release-check clean

all: test

## deps: make sure redis-server/redis-sentinel (or valkey-*) are installed
deps:
	@./scripts/ensure-servers

## browser-deps: make sure headless Chromium is installed for the
## operations page's browser test (internal/browsertest)
browser-deps:
	@./scripts/ensure-chromium

## build: build the CLI with the peer libraries its benchmark compares with
## (build tag peers) into bin/keyvalue
build:
	cd cmd/keyvalue && $(GO) build -tags peers -o ../../$(BIN) .

## vet: gofmt and go vet, every module
vet:
	@fmt="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	if [ -n "$$fmt" ]; then echo "gofmt needed on: $$fmt" >&2; exit 1; fi
	@set -e; for m in $(MODULES); do echo "go vet ($$m)"; (cd $$m && $(GO) vet ./...); done
	cd cmd/keyvalue && $(GO) vet -tags peers .

## tidy: go mod tidy in every module; the modules that require the library
## by its next version (which no proxy serves yet) are tidied against this
## tree (a replace directive for the duration of the tidy only)
tidy:
	@set -e; for m in $(MODULES); do echo "go mod tidy ($$m)"; \
	if [ "$$m" = . ]; then $(GO) mod tidy; continue; fi; \
	(cd $$m && if grep -q 'github.com/keyvalue-go/keyvalue v' go.mod; then \
		v=$$(sed -n 's/^\trequire github.com\/keyvalue-go\/keyvalue \(v.*\)/\1/p; s/^\tgithub.com\/keyvalue-go\/keyvalue \(v[^ ]*\).*/\1/p' go.mod | head -1); \
		$(GO) mod edit -replace=github.com/keyvalue-go/keyvalue=$$(realpath --relative-to=. $(CURDIR)); \
		GOWORK=off $(GO) mod tidy; status=$$?; \
		$(GO) mod edit -dropreplace=github.com/keyvalue-go/keyvalue -require=github.com/keyvalue-go/keyvalue@$$v; exit $$status; \
	else GOWORK=off $(GO) mod tidy; fi); done

## test: every test of every module against real servers, with the race
## detector; then the cache's fault tests again without it, at full size and
## with killed connections (see cache/race_on_test.go)
test: deps browser-deps vet
	@set -e; for m in $(MODULES); do echo "go test ($$m)"; (cd $$m && $(GO) test $(TESTFLAGS) ./...); done
	$(GO) test -count=1 -timeout 5m -run 'Fault|Property|Interrupted|WhileSlotsMove|SlotMigration' ./cache

## test-acl: the cache, httpcache, session and lock suites again as a
## least-privilege ACL user, made on every test server from the line
## keyvalue acl prints for every cache, session store and lock (the
## harness reads it from KV_TEST_ACL; tests' own inspection uses an admin
## connection)
test-acl: deps build
	@rules="$$(./bin/keyvalue acl --user keyvalue-test --cache '*' --sharded-cache '*' --sessions '*' --locks | sed 's/^ACL SETUSER keyvalue-test //')"; \
	echo "test-acl: ACL SETUSER keyvalue-test $$rules"; \
	KV_TEST_ACL="$$rules" $(GO) test $(TESTFLAGS) ./cache/ ./httpcache/ ./session/ ./lock/

## test-valkey: the whole suite again with Valkey's binaries first on PATH
## (the test harness prefers valkey-server/valkey-sentinel); skips with one
## line where $(VALKEY_BIN) does not exist
test-valkey: vet
	@if [ ! -x "$(VALKEY_BIN)/valkey-server" ]; then echo "test-valkey: skipped: no Valkey binaries in $(VALKEY_BIN)"; exit 0; fi; \
	bin="$$(cd $(VALKEY_BIN) && pwd)"; echo "test-valkey: $$("$$bin/valkey-server" --version)"; \
	set -e; for m in $(MODULES); do echo "go test ($$m, valkey)"; (cd $$m && PATH="$$bin:$$PATH" $(GO) test $(TESTFLAGS) ./...); done

## test-short: skip the slow tests (Sentinel failover)
test-short: deps
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) test $(TESTFLAGS) -short ./...); done

## demo: the CLI's main job, keyvalue bench --quick, against a throwaway
## local server it starts itself, with the peer libraries taking part
demo: deps build
	./$(BIN) bench --quick --rtt 0,250us --json bin/bench-report.json --html bin/bench-report.html

## check-report: render make demo's HTML report in headless Chromium (installs
## chromium when missing) and check that every chart drew; writes a screenshot
check-report:
	./scripts/check-report-html bin/bench-report.html

## admin-screenshots: drive the operations page in headless Chromium and
## write a screenshot of each page to docs/admin (the README shows them)
admin-screenshots: deps browser-deps
	cd internal/browsertest && KV_ADMIN_SCREENSHOTS=$(CURDIR)/docs/admin $(GO) test -count=1 -run OperationsPage ./...

## bench-scale: Flush, CollectGarbage and FlushByTags of a sharded cache and
## a session store's GetAll on Clusters of 3, 6 and 9 primaries (docs/scaling.md)
bench-scale: deps
	KEYVALUE_SCALE=1 $(GO) test -count=1 -timeout 15m -run TestScaleOut -v ./cache | grep -E 'scale_test|^(ok|FAIL)'

## bench-cache: keyvalue's cache vs the naive baseline, side by side, with ratios
bench-cache: deps
	cd cmd/keyvalue && $(GO) test -run '^$$' -bench Cache -benchtime $${BENCHTIME:-2s} -count 1 ./internal/peers | ../../scripts/bench-ratios

## bench-lock: keyvalue's lock vs the naive polling lock and the peer locks
bench-lock: deps
	cd cmd/keyvalue && $(GO) test -run '^$$' -bench Lock -benchtime $${BENCHTIME:-300x} -count 1 ./internal/peers | ../../scripts/bench-ratios

## bench-peers: keyvalue vs redislock, redsync, valkeylock, scs redisstore
bench-peers: deps
	cd cmd/keyvalue && $(GO) test -run '^$$' -bench . -benchtime $${BENCHTIME:-300x} -count 1 ./internal/peers | ../../scripts/bench-ratios

## release-check: install the CLI and build a consumer program from a
## file:// module proxy made from the working tree, with an empty module
## cache, as a user's go install and go get of VERSION would (see
## tools/releasecheck); VERSION defaults to the version the modules require
release-check:
	cd tools/releasecheck && $(GO) run . -root ../.. -version $(or $(VERSION),$(shell sed -n 's/^	github.com\/keyvalue-go\/keyvalue v//p' cmd/keyvalue/go.mod | sed 's/^/v/'))

clean:
	rm -rf bin
