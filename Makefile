# cdrbill: `make demo` runs the nightly job on fixtures/demo; `make test` runs every test.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X cdrbill/jobs.Version=$(VERSION) -X cdrbill/jobs.Commit=$(COMMIT)
DEMO    := fixtures/demo/cdrbill.toml

.PHONY: build test demo lint bench clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/cdrbill .

test:
	$(GO) test -count=1 ./...

# Exit status 3 (published, items need review) is the demo's expected outcome: it contains bad rows
# on purpose. A second `make demo` ingests nothing and publishes nothing; `make clean` starts over.
demo: build
	./bin/cdrbill --config $(DEMO) run --period 2025-10; status=$$?; \
	  if [ $$status -gt 3 ] || [ $$status -eq 1 ] || [ $$status -eq 2 ]; then exit $$status; fi
	@echo "demo outputs: output/2025-10/"

# make bench ROWS=N [BENCH_DIR=path]: N synthetic CDRs through the full nightly run, per-stage
# rows/s and peak RSS, against DuckDB's CSV-to-Parquet floor on the same files.
ROWS ?= 1000000
bench: build
	./bin/cdrbill bench --rows $(ROWS) $(if $(BENCH_DIR),--dir $(BENCH_DIR))

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "not gofmt-ed: $$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf bin output fixtures/demo/staging
