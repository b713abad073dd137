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
LAYERS := core:sandbox,aws,emulated,testkit sandbox:aws,emulated,testkit \
          aws:emulated,testkit emulated:testkit

BENCH_COUNT ?= 6
BENCH_OUT   ?= bench.txt
# Cold starts: COLD_STARTS processes per run (each run reports their
# medians), COLD_COUNT runs.
COLD_STARTS ?= 10
COLD_COUNT  ?= 6

# The functions, each a wasm guest under functions/.
FUNCS      := connect route streamfanout
WASMFLAGS  := -buildmode=c-shared -trimpath -ldflags=-s
# Largest route.wasm allowed: a guest's size is its cold-start compile time.
MAX_GUEST_BYTES := 4000000

# Target architecture of the Lambda package: amd64 (x86_64) or arm64.
ARCH  ?= $(shell $(GO) env GOARCH)
BUILD := build/$(ARCH)
# Compiled code for arm64 is made by running the arm64 bootstrap under
# qemu, as a Graviton2-class CPU (neoverse-n1).
HOST_OS := $(shell $(GO) env GOHOSTOS)
ifeq ($(ARCH),$(shell $(GO) env GOHOSTARCH))
QEMU       :=
RUN_TARGET :=
CROSS_CC   := gcc
else ifeq ($(ARCH),arm64)
QEMU       := qemu-aarch64-static
RUN_TARGET  = QEMU_CPU=neoverse-n1 $(QEMU)
CROSS_CC   := aarch64-linux-gnu-gcc
else ifeq ($(ARCH),amd64)
QEMU       := qemu-x86_64-static
RUN_TARGET  = $(QEMU)
CROSS_CC   := x86_64-linux-gnu-gcc
endif
# What this machine can make of the package: the wasmtime bootstrap
# needs a C compiler for Linux on ARCH; the compiled code needs to run
# the bootstrap (natively, or under qemu). Lacking one, `make build`
# makes a package that still deploys and says in one line what it
# skipped (the container build, infra/Containerfile, has both).
CAN_CC  := $(if $(filter linux,$(HOST_OS)),$(shell command -v $(CROSS_CC) 2>/dev/null))
CAN_RUN := $(if $(filter linux,$(HOST_OS)),$(if $(QEMU),$(shell command -v $(QEMU) 2>/dev/null),native))

# The engine the Lambda package runs its guests with. wasmtime: the
# bootstrap links wasmtime (cgo, static) and the package ships each
# guest compiled ahead of time (<name>.cwasm) beside wazero's code, the
# fallback. wazero: a pure-Go bootstrap. wasmtime starts faster (make
# bench, engine=wasmtime-aot against engine=wazero-shipped).
ENGINE ?= wasmtime
BUILD_ENGINE := $(ENGINE)
ifeq ($(ENGINE)$(CAN_CC),wasmtime)
BUILD_ENGINE := wazero
endif
ifeq ($(BUILD_ENGINE),wasmtime)
BOOTSTRAP_ENV   := CGO_ENABLED=1 CC=$(CROSS_CC)
BOOTSTRAP_TAGS  := lambda.norpc,wsbind_wasmtime,netgo,osusergo
BOOTSTRAP_LDFLAGS := -s -extldflags=-static
else ifeq ($(BUILD_ENGINE),wazero)
BOOTSTRAP_ENV   := CGO_ENABLED=0
BOOTSTRAP_TAGS  := lambda.norpc
BOOTSTRAP_LDFLAGS := -s
else
$(error ENGINE=$(ENGINE): want wasmtime or wazero)
endif

.PHONY: all run token test check bench fuzz golden clean build wasm

all: check test

## run: the local emulator: WebSocket API, debugger page and DynamoDB on
## this machine, running the guests `make wasm` builds for the host;
## FAULTS injects faults (make run FAULTS=post-throttle=0.1,seed=1;
## README.md, "Fault injection")
FAULTS ?=
run: wasm
	$(GO) run ./cmd/wsbind-local -guests $(BUILD) $(if $(FAULTS),-faults '$(FAULTS)')

## token: a token for USER (make token USER=alice) for the emulator;
## ROLES (comma-separated) become its "groups" (ROLES=admin,editor)
ROLES ?=
token:
	@$(GO) run ./cmd/wsbind-local -token $(USER) -roles '$(ROLES)'

## test: every test, with the race detector; then the wasm host's
## tests again on the wasmtime engine (cgo, build tag wsbind_wasmtime)
test:
	./scripts/with-dynalite.sh $(GO) test -race -count=1 ./...
	$(GO) test -race -count=1 -tags wsbind_wasmtime -run Wasmtime ./internal/sandbox/host

## build: the Lambda package for ARCH and ENGINE: bootstrap, each
## function's .wasm, its compiled code (<name>.cache/) and, for wasmtime,
## its ahead-of-time code (<name>.cwasm) for that architecture; without
## the cross compiler or qemu, what it can, and one line on what it
## skipped (docs/deploying.md)
build: wasm $(BUILD)/bootstrap
	rm -rf $(addprefix $(BUILD)/,$(addsuffix .cache,$(FUNCS)) $(addsuffix .cwasm,$(FUNCS)))
ifneq ($(CAN_RUN),)
	$(RUN_TARGET) $(BUILD)/bootstrap -compile-cache $(BUILD) $(addprefix $(BUILD)/,$(addsuffix .wasm,$(FUNCS)))
endif
	@$(if $(BUILD_NOTE),echo "build: $(BUILD_NOTE)")
	@ls -l $(BUILD)

# The one line `make build` says when this machine cannot make all of the
# package.
skipped_aot  := $(if $(filter wasmtime,$(ENGINE)),$(if $(CAN_CC),,no $(CROSS_CC) for linux/$(ARCH)$(if $(filter linux,$(HOST_OS)),, on $(HOST_OS)): the bootstrap is pure Go (wazero) and the ahead-of-time code (<name>.cwasm) is skipped))
skipped_code := $(if $(CAN_RUN),,$(if $(filter linux,$(HOST_OS)),no $(QEMU) to run the linux/$(ARCH) bootstrap,a linux/$(ARCH) bootstrap cannot run on $(HOST_OS)): the compiled code (<name>.cache/$(if $(filter wasmtime,$(BUILD_ENGINE)), and <name>.cwasm)) is skipped and each cold start compiles its guest (seconds))
BUILD_NOTE   := $(strip $(skipped_aot)$(if $(skipped_aot),$(if $(skipped_code),; ))$(skipped_code)$(if $(skipped_aot)$(skipped_code),. The package deploys as it is; for all of it build in the container (docs/deploying.md).))

## wasm: the three guests
wasm:
	@mkdir -p $(BUILD)
	@for f in $(FUNCS); do \
		echo "GOOS=wasip1 GOARCH=wasm $(GO) build $(WASMFLAGS) -o $(BUILD)/$$f.wasm ./functions/$$f"; \
		GOOS=wasip1 GOARCH=wasm $(GO) build $(WASMFLAGS) -o $(BUILD)/$$f.wasm ./functions/$$f || exit 1; \
	done

$(BUILD)/bootstrap: FORCE
	@mkdir -p $(BUILD)
	$(BOOTSTRAP_ENV) GOOS=linux GOARCH=$(ARCH) $(GO) build -trimpath -ldflags='$(BOOTSTRAP_LDFLAGS)' -tags $(BOOTSTRAP_TAGS) -o $@ ./cmd/bootstrap

.PHONY: FORCE
FORCE:

## golden: rewrite the golden protocol transcripts after a deliberate change
golden:
	$(GO) test ./internal/core/router -run TestRouter_Golden -update

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
	@GOOS=wasip1 GOARCH=wasm $(GO) build $(WASMFLAGS) -o /tmp/wsbind-check-route.wasm ./functions/route; \
	size=$$(stat -c %s /tmp/wsbind-check-route.wasm); rm -f /tmp/wsbind-check-route.wasm; \
	echo "route.wasm: $$size bytes (limit $(MAX_GUEST_BYTES))"; \
	if [ $$size -gt $(MAX_GUEST_BYTES) ]; then echo "route.wasm is too large"; exit 1; fi
	@echo "check: ok"

## bench: benchmarks, several runs, medians by benchstat; the WASI
## figures (engine=...: wasmtime, wazero) in columns beside their native
## baseline; cold starts of each function by engine. One package at a
## time (-p 1): two benchmarks sharing the 2 cores halve each other.
bench:
	$(GO) test -p 1 -tags wsbind_wasmtime -run '^$$' -bench . -skip ColdStart -benchmem -count $(BENCH_COUNT) ./... | tee $(BENCH_OUT)
	$(GO) test -run '^$$' -bench ColdStart -benchtime $(COLD_STARTS)x -count $(COLD_COUNT) ./internal/aws/lambdainit | tee -a $(BENCH_OUT)
	@echo; echo "== framework (native)"
	@awk '!/engine=/' $(BENCH_OUT) > $(BENCH_OUT).native; $(GO) run $(BENCHSTAT) $(BENCH_OUT).native
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
