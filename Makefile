# wsbind: `make run` starts the system locally, `make test` passes the tests.
# Everything else here serves those two and `make check` / `make bench`.

GO          ?= go
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
BENCHSTAT   := golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da

# Guest packages: compiled to WebAssembly, so they may import only the
# standard library and this module. `make check` enforces it.
GUEST_PKGS := ./resource/... ./bindings/... ./internal/protocol/... \
              ./internal/router/... ./internal/jsonw/... \
              ./internal/protocoltest/testbindings/...

BENCH_COUNT ?= 6
BENCH_OUT   ?= bench.txt

.PHONY: all run test check bench fuzz golden clean

all: check test

## run: start wsbind locally (the console until the emulator lands)
run:
	$(GO) run ./local/console

## test: every test, with the race detector
test:
	$(GO) test -race -count=1 ./...

## golden: rewrite the golden protocol transcripts after a deliberate change
golden:
	$(GO) test ./internal/router -run TestRouter_Golden -update

## check: formatting, vet (native and wasip1), staticcheck, tidy go.mod,
## and the guest dependency rule
check:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	GOOS=wasip1 GOARCH=wasm $(GO) vet $(GUEST_PKGS)
	GOOS=wasip1 GOARCH=wasm $(GO) build $(GUEST_PKGS)
	$(GO) run $(STATICCHECK) ./...
	$(GO) mod tidy -diff
	@bad=$$(GOOS=wasip1 GOARCH=wasm $(GO) list -deps -f '{{if not .Standard}}{{.ImportPath}}{{end}}' $(GUEST_PKGS) \
		| grep -v '^github.com/wsbind/wsbind\(/\|$$\)' || true); \
	if [ -n "$$bad" ]; then echo "guest packages import outside the standard library and this module:"; echo "$$bad"; exit 1; fi
	@echo "check: ok"

## bench: benchmarks, several runs, medians by benchstat
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count $(BENCH_COUNT) ./... | tee $(BENCH_OUT)
	$(GO) run $(BENCHSTAT) $(BENCH_OUT)

## fuzz: fuzz the JSON parser, the frame decoder and the router (FUZZTIME each)
FUZZTIME ?= 2m
fuzz:
	$(GO) test ./internal/router -run '^$$' -fuzz '^FuzzHandle$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/router -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/jsonw -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME)

clean:
	rm -f $(BENCH_OUT)
