# wsbind: `make run` starts the system locally, `make test` passes the tests.
# Everything else here serves those two and `make check` / `make bench`.

GO          ?= go
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
BENCHSTAT   := golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
ACTIONLINT  := github.com/rhysd/actionlint/cmd/actionlint@v1.7.12

# Guest packages: compiled to WebAssembly, so they may import only the
# standard library and this module. `make check` enforces it.
GUEST_PKGS := ./resource/... ./function/... ./bindings/... ./functions/... \
              ./internal/core/... ./internal/sandbox/abi/... ./internal/sandbox/guest/... \
              ./internal/sandbox/host/testguest/... ./internal/testkit/protocoltest/testbindings/...

# The layering of RATIONALE's "Project structure": each group of
# internal/ and the groups its code (tests aside) must not import.
# `make check` enforces it.
LAYERS := core:sandbox,aws,emulated,testkit,tool sandbox:aws,emulated,testkit,tool \
          aws:emulated,testkit,tool emulated:testkit,tool tool:testkit

# The example applications, each a module of its own (examples/*/go.mod).
EXAMPLES := $(patsubst %/go.mod,%,$(wildcard examples/*/go.mod))

BENCH_COUNT ?= 6
BENCH_OUT   ?= bench.txt
# Cold starts: COLD_STARTS processes per run (each run reports their
# medians), COLD_COUNT runs.
COLD_STARTS ?= 10
COLD_COUNT  ?= 6
# The whole bootstrap beside the echo floor (BenchmarkBootstrapCost):
# COST_ROUNDS rounds of every variant, COST_MESSAGES messages each after
# the first, at full CPU and under the CPU quota of COST_MEMORY MB.
COST_ROUNDS   ?= 5
COST_MESSAGES ?= 200
COST_MEMORY   ?= 128

# The functions, each a wasm guest under functions/.
FUNCS      := connect route streamfanout
WASMFLAGS  := -buildmode=c-shared -trimpath -ldflags=-s
# Largest route.wasm allowed: a guest's size is its cold-start compile time.
MAX_GUEST_BYTES := 4000000

# Target architecture of the Lambda package: amd64 (x86_64) or arm64.
ARCH  ?= $(shell $(GO) env GOARCH)
BUILD := build/$(ARCH)
# Cross builds use these names for the C compiler and qemu unless told
# otherwise (CROSS_CC=..., QEMU=...); the wsbind command picks the
# defaults for the target and skips, saying so in one line, what this
# machine cannot make (internal/tool/lambdapkg).
CROSS_CC ?=
QEMU     ?=

# The engine the Lambda package runs its guests with. wasmtime: the
# bootstrap links wasmtime (cgo, static) and the package ships each
# guest compiled ahead of time (<name>.cwasm) beside wazero's code, the
# fallback. wazero: a pure-Go bootstrap. wasmtime starts faster (make
# bench, engine=wasmtime-aot against engine=wazero-shipped).
ENGINE ?= wasmtime

WSBIND = $(GO) run ./cmd/wsbind
# wsbind build's flags for ARCH, ENGINE, CROSS_CC and QEMU.
BUILD_FLAGS = -arch $(ARCH) -engine $(ENGINE) $(if $(CROSS_CC),-cc $(CROSS_CC)) $(if $(QEMU),-qemu $(QEMU))

.PHONY: all run token test check bench fuzz golden clean build wasm

all: check test

## run: the local emulator: WebSocket API, debugger page and DynamoDB on
## this machine, running this module's guests (wsbind run builds them);
## FAULTS injects faults (make run FAULTS=post-throttle=0.1,seed=1;
## docs/emulator.md)
## IDLE and LIFETIME shorten the connection limits (make run IDLE=5s LIFETIME=30s);
## INSTANCES is each function's concurrency (default 8);
## DATA keeps the items across restarts in a directory (make run DATA=.wsbind-data)
FAULTS    ?=
IDLE      ?=
LIFETIME  ?=
INSTANCES ?=
DATA      ?=
run:
	$(WSBIND) run $(if $(FAULTS),-faults '$(FAULTS)') $(if $(IDLE),-idle $(IDLE)) $(if $(LIFETIME),-lifetime $(LIFETIME)) $(if $(INSTANCES),-instances $(INSTANCES)) $(if $(DATA),-data '$(DATA)')

## token: a token for USER (make token USER=alice) for the emulator;
## ROLES (comma-separated) become its "groups" (ROLES=admin,editor)
ROLES ?=
token:
	@$(WSBIND) token -roles '$(ROLES)' $(USER)

## test: every test, with the race detector (among them: wsbind init
## makes an application outside the checkout, and its make test and make
## run work); the example applications' tests (each its own module); then
## the wasm host's tests again on the wasmtime engine (cgo, build tag
## wsbind_wasmtime)
## then the Go client's reconnect storm, alone (make storm); and last
## the TypeScript client's
## (make ts-test)
test:
	./scripts/with-dynalite.sh $(GO) test -race -count=1 -skip '^TestStorm$$' ./...
	@for d in $(EXAMPLES); do echo "cd $$d && $(GO) test -race -count=1 ./..."; (cd $$d && $(GO) test -race -count=1 ./...) || exit 1; done
	$(GO) test -race -count=1 -tags wsbind_wasmtime -run Wasmtime ./internal/sandbox/host
	@$(MAKE) --no-print-directory asyncapi-test
	$(MAKE) storm
	$(MAKE) ts-test

## storm: the Go client's reconnect storm at the size the clients are
## held to: 50 subscribers whose connections the emulator cuts every 2 s,
## 2,000 changes written over 20 s; then under the race detector at 10
## subscribers and 500 changes. Each runs alone: beside the other
## packages' tests it measures how busy the machine is.
.PHONY: storm
storm:
	$(GO) test -count=1 -run '^TestStorm$$' -v ./client
	$(GO) test -race -count=1 -run '^TestStorm$$' -v ./client

## ts-test: the TypeScript client (clients/ts): tsc --strict over its
## sources and tests, then its tests, against the emulator and a fake server
.PHONY: ts-test
ts-test:
	cd clients/ts && npm ci --no-audit --no-fund && npm test

## web-client: the TypeScript client compiled for the debugger page, into
## internal/emulated/web/static/client (embedded in the Go binary, so run
## with no Node); commit it with any change to clients/ts/src
## (TestClientBundle_UpToDate checks it)
WEB_CLIENT := internal/emulated/web/static/client
.PHONY: web-client
web-client:
	rm -rf $(WEB_CLIENT)
	cd clients/ts && npm ci --no-audit --no-fund && npm run build:web

## build: the Lambda package for ARCH and ENGINE in build/ARCH: bootstrap,
## each function's .wasm, its compiled code (<name>.cache/) and, for
## wasmtime, its ahead-of-time code (<name>.cwasm) for that architecture;
## without the cross compiler or qemu, what it can, and one line on what
## it skipped (docs/deploying.md)
build:
	$(WSBIND) build -v $(BUILD_FLAGS) -o $(BUILD)

## wasm: the three guests, for the host (make run builds its own)
wasm:
	@mkdir -p $(BUILD)
	@for f in $(FUNCS); do \
		echo "GOOS=wasip1 GOARCH=wasm $(GO) build $(WASMFLAGS) -o $(BUILD)/$$f.wasm ./functions/$$f"; \
		GOOS=wasip1 GOARCH=wasm $(GO) build $(WASMFLAGS) -o $(BUILD)/$$f.wasm ./functions/$$f || exit 1; \
	done

## golden: rewrite the golden protocol transcripts after a deliberate change
golden:
	$(GO) test ./internal/core/router -run TestRouter_Golden -update

.PHONY: describe asyncapi-test

## describe: docs/asyncapi.json, the AsyncAPI document of bindings/, as
## the route guest describes them (wsbind describe); commit it with any
## change to a binding (TestDocument_UpToDate checks it)
describe:
	WSBIND_PAGE_SIZE= $(WSBIND) describe -o docs/asyncapi.json

## asyncapi-test: the document wsbind describe writes is docs/asyncapi.json,
## the official AsyncAPI parser accepts it (and refuses a broken one), and
## the TypeScript declarations clients/asyncapi makes of it compile under
## tsc --strict with clients/asyncapi/usage.ts; skipped without npm
ASYNCAPI_TMP := build/asyncapi-test
asyncapi-test:
	@if ! command -v npm >/dev/null; then echo "asyncapi-test: npm not installed: skipped"; exit 0; fi; \
	set -e; t=$(ASYNCAPI_TMP); rm -rf $$t; mkdir -p $$t; \
	echo "wsbind describe -o $$t/asyncapi.json"; WSBIND_PAGE_SIZE= $(WSBIND) describe -o $$t/asyncapi.json; \
	cmp -s $$t/asyncapi.json docs/asyncapi.json || { echo "docs/asyncapi.json differs from what wsbind describe writes: make describe"; exit 1; }; \
	cd clients/asyncapi; \
	echo "cd clients/asyncapi && npm ci"; npm ci --loglevel=error; \
	node validate.mjs ../../$$t/asyncapi.json; \
	if node validate.mjs testdata/invalid.json 2>/dev/null; then echo "validate.mjs accepted testdata/invalid.json"; exit 1; fi; \
	node gen-types.mjs ../../$$t/asyncapi.json > ../../$$t/wsbind.d.ts; cp usage.ts ../../$$t/; \
	echo "tsc --strict --noEmit $$t/usage.ts"; npx --no-install tsc --strict --noEmit --target es2022 --module nodenext ../../$$t/usage.ts; \
	echo "asyncapi-test: ok"

## check: formatting, vet (native and wasip1), staticcheck, tidy go.mod,
## actionlint on .github/workflows, cfn-lint on the template when it is
## installed, and the guest dependency rule
check:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags wsbind_wasmtime ./internal/sandbox/host/... ./internal/aws/... ./cmd/bootstrap/...
	GOOS=wasip1 GOARCH=wasm $(GO) vet $(GUEST_PKGS)
	GOOS=wasip1 GOARCH=wasm $(GO) build $(GUEST_PKGS)
	$(GO) run $(STATICCHECK) ./...
	$(GO) run $(STATICCHECK) -tags wsbind_wasmtime ./internal/sandbox/host/... ./internal/aws/... ./cmd/bootstrap/...
	$(GO) mod tidy -diff
	$(GO) run $(ACTIONLINT) -no-color
	@if command -v cfn-lint >/dev/null; then echo "cfn-lint infra/template.yaml"; cfn-lint infra/template.yaml; \
	else echo "cfn-lint not installed: skipped (go test ./infra checks the template offline)"; fi
	@bad=$$(GOOS=wasip1 GOARCH=wasm $(GO) list -deps -f '{{if not .Standard}}{{.ImportPath}}{{end}}' $(GUEST_PKGS) \
		| grep -v '^github.com/wsbind/wsbind\(/\|$$\)' || true); \
	if [ -n "$$bad" ]; then echo "guest packages import outside the standard library and this module:"; echo "$$bad"; exit 1; fi
	@for l in $(LAYERS); do group=$${l%%:*}; not=$$(echo $${l#*:} | tr , '|'); \
		bad=$$($(GO) list -f '{{.ImportPath}}:{{range .Imports}} {{.}}{{end}}' ./internal/$$group/... \
			| grep -E " github.com/wsbind/wsbind/internal/($$not)(/| |$$)" || true); \
		if [ -n "$$bad" ]; then echo "internal/$$group imports a group it must not ($$not):"; echo "$$bad"; exit 1; fi; \
	done; echo "layers: ok"
	@for d in $(EXAMPLES); do \
		mod=$$(cd $$d && $(GO) list -m) || exit 1; \
		echo "cd $$d && go vet ./... (native and wasip1), guest dependency rule"; \
		(cd $$d && $(GO) vet ./... && GOOS=wasip1 GOARCH=wasm $(GO) vet ./... && $(GO) mod tidy -diff) || exit 1; \
		bad=$$(cd $$d && GOOS=wasip1 GOARCH=wasm $(GO) list -deps -f '{{if not .Standard}}{{.ImportPath}}{{end}}' ./functions/... \
			| grep -v "^github.com/wsbind/wsbind\(/\|$$\)" | grep -v "^$$mod\(/\|$$\)" || true); \
		if [ -n "$$bad" ]; then echo "$$d: guests import outside the standard library, wsbind and the application:"; echo "$$bad"; exit 1; fi; \
	done
	@GOOS=wasip1 GOARCH=wasm $(GO) build $(WASMFLAGS) -o /tmp/wsbind-check-route.wasm ./functions/route; \
	size=$$(stat -c %s /tmp/wsbind-check-route.wasm); rm -f /tmp/wsbind-check-route.wasm; \
	echo "route.wasm: $$size bytes (limit $(MAX_GUEST_BYTES))"; \
	if [ $$size -gt $(MAX_GUEST_BYTES) ]; then echo "route.wasm is too large"; exit 1; fi
	@echo "check: ok"

## bench: benchmarks, several runs, medians by benchstat; the WASI
## figures (engine=...: wasmtime, wazero) in columns beside their native
## baseline; cold starts of each function by engine; then the whole
## bootstrap measured from outside beside a bare aws-lambda-go echo
## function (the floor): cold start and CPU per message, at full CPU and
## under the CPU quota of a COST_MEMORY MB function (the quota needs root
## and cgroup v1, else it is skipped with a line saying why). One package
## at a time (-p 1): two benchmarks sharing the 2 cores halve each other.
bench:
	$(GO) test -p 1 -tags wsbind_wasmtime -run '^$$' -bench . -skip 'ColdStart|BootstrapCost' -benchmem -count $(BENCH_COUNT) ./... | tee $(BENCH_OUT)
	$(GO) test -run '^$$' -bench ColdStart -benchtime $(COLD_STARTS)x -count $(COLD_COUNT) ./internal/aws/lambdainit | tee -a $(BENCH_OUT)
	WSBIND_BENCH_MESSAGES=$(COST_MESSAGES) WSBIND_BENCH_MEMORY=$(COST_MEMORY) $(GO) test -run '^$$' -bench '^BenchmarkBootstrapCost$$' \
		-benchtime $(COST_ROUNDS)x -count 1 ./internal/aws/lambdainit | tee -a $(BENCH_OUT)
	@echo; echo "== framework (native)"
	@awk '!/engine=/ && !/BootstrapCost/' $(BENCH_OUT) > $(BENCH_OUT).native; $(GO) run $(BENCHSTAT) $(BENCH_OUT).native
	@echo; echo "== WASI beside native: per message (internal/sandbox/host), cold start of the bootstrap (internal/aws/lambdainit)"
	@awk '!/^Benchmark/ || /engine=/' $(BENCH_OUT) > $(BENCH_OUT).wasi; $(GO) run $(BENCHSTAT) -col /engine $(BENCH_OUT).wasi
	@rm -f $(BENCH_OUT).native $(BENCH_OUT).wasi

## fuzz: fuzz the JSON parser, the frame decoder and the router (FUZZTIME each)
FUZZTIME ?= 2m
fuzz:
	$(GO) test ./internal/core/router -run '^$$' -fuzz '^FuzzHandle$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/core/router -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/core/jsonv -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME)

clean:
	rm -rf $(BENCH_OUT) build

# sam build: build-<LogicalId> targets of infra/template.yaml
include infra/sam.mk
