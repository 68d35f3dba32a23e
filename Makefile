# Wharf developer entry points. `make test` is what CI runs (.ci/run).

GO       ?= go
GOPATH   := $(shell $(GO) env GOPATH)
# crane and conformance are installed here by test/e2e/setup.sh.
export PATH := $(GOPATH)/bin:$(PATH)

# Unit tests run with the race detector; RACE= turns it off.
RACE     ?= -race
ARGS     ?=

.PHONY: test build image run fmt-check vet unit e2e-setup e2e bench bench-quick bench-readme

## test: everything CI runs — formatting, vet, unit tests, end-to-end tests.
## The set-up comes first: the S3 driver's tests need versitygw, and under
## WHARF_TEST_SERVICES=require a missing server fails them instead of skipping.
test: fmt-check vet e2e-setup
	WHARF_TEST_SERVICES=require $(MAKE) unit e2e

## build: the wharf binary in bin/ (-buildvcs: `wharf version` names the commit)
build:
	$(GO) build -buildvcs=true -o bin/wharf ./cmd/wharf

## image: the wharf container image (IMAGE=wharf:dev), built offline FROM scratch
IMAGE ?= wharf:dev
image:
	bash build/container/build.sh $(IMAGE)

## run: wharf serve on embedded defaults (extra flags: make run ARGS='--addr :5001')
run:
	$(GO) run ./cmd/wharf serve $(ARGS)

fmt-check:
	@unformatted="$$(gofmt -l .)"; \
	if [ -n "$$unformatted" ]; then \
		echo "gofmt needed on:"; echo "$$unformatted"; exit 1; \
	fi

vet:
	$(GO) vet ./...
	$(GO) vet -tags e2e ./test/e2e/...

unit:
	$(GO) test $(RACE) -parallel 8 -timeout 20m ./...

e2e-setup:
	bash test/e2e/setup.sh

e2e: e2e-setup
	$(GO) test -tags e2e -count=1 -v -timeout 30m ./test/e2e/...

# Benchmarks against the reference registry (bench/README.md). Not part of
# `make test`: they need a quiet machine to mean anything. Extra flags:
# make bench BENCH_ARGS='--only manifest --reps 5'.
BENCH_ARGS ?=

## bench: full side-by-side run (~30 min with the shared-storage section); writes bench/results/latest.{md,json}
bench:
	$(GO) run ./bench --out bench/results $(BENCH_ARGS)

## bench-quick: the same harness at small sizes (~3 min; CI runs it so the harness never rots; its shared-storage section needs PostgreSQL and versitygw from e2e-setup, and fails without them)
bench-quick:
	$(GO) run ./bench --quick --out bench/results $(BENCH_ARGS)

## bench-readme: copy the table and commit of bench/results/latest.md into README.md (after a full run)
bench-readme:
	$(GO) run ./bench readme
