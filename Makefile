# execgate — `make help` lists the targets.
SHELL      := /bin/bash
GO         ?= go
# Build tags and static-link flags: scripts/goflags.sh says why.
TAGS       := $(shell . scripts/goflags.sh && echo "$$GO_TAGS")
STATIC     := $(shell . scripts/goflags.sh && echo "$$GO_LDFLAGS_STATIC")
export CGO_ENABLED := 1
BIN        := bin/execgate
VERSION    ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS    := -X main.version=$(VERSION) $(STATIC)
GOBIN      := $(CURDIR)/bin/tools
STATICCHECK_VERSION := v0.8.2
TEST_TIMEOUT ?= 25m
FUZZTIME   ?= 10s
PKGS       := ./...

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

.PHONY: deps
deps: ## install missing system packages (root; quiet when nothing is missing)
	@bash scripts/install-deps.sh

.PHONY: build
build: ## build bin/execgate (cgo, -tags seccomp, statically linked)
	@bash scripts/install-deps.sh >/dev/null 2>&1 || true
	$(GO) build -tags $(TAGS) -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/execgate

.PHONY: run
run: build ## build and start the gateway on 127.0.0.1 with the shipped default policy (dev mode)
	@if [ "$$(id -u)" -ne 0 ]; then echo "make run: the sandbox needs root (run: sudo make run)"; exit 1; fi
	./$(BIN) serve

$(GOBIN)/staticcheck:
	@mkdir -p $(GOBIN)
	GOBIN=$(GOBIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

.PHONY: lint
lint: $(GOBIN)/staticcheck ## gofmt, go vet, staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go') 2>&1); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet -tags $(TAGS) $(PKGS)
	$(GOBIN)/staticcheck -tags $(TAGS) $(PKGS)

.PHONY: policy-check
policy-check: build ## check every shipped policy file (strict) and run their tests
	./$(BIN) policy check --strict policies/
	./$(BIN) policy test policies/tests

.PHONY: deploy-check
deploy-check: ## check deploy/ with the real tools (nginx -t, systemd-analyze verify)
	@bash scripts/check-deploy.sh

.PHONY: test
test: deps lint build ## lint, unit and integration tests (real sandbox: root), shipped policies and their tests
	@if [ "$$(id -u)" -ne 0 ]; then echo "make test: the sandbox tests need root (run: sudo make test)"; exit 1; fi
	$(MAKE) --no-print-directory policy-check deploy-check
	$(GO) test -tags $(TAGS) -ldflags '$(STATIC)' -count=1 -p 2 -timeout $(TEST_TIMEOUT) $(PKGS)

.PHONY: bench
bench: build ## benchmarks: policy decisions, audit, gateway (a)-(d) with wrk, sandbox vs plain exec and bubblewrap
	$(GO) test -tags $(TAGS) -run '^$$' -bench . -benchmem -benchtime 2s ./policy/ ./gateway/
	bash scripts/bench-gateway.sh
	bash scripts/bench-sandbox.sh

.PHONY: fuzz
fuzz: ## short runs (FUZZTIME=10s) of every fuzz target
	@set -e; for pkg in $$($(GO) list -tags $(TAGS) $(PKGS)); do \
	  for f in $$($(GO) test -tags $(TAGS) -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f"; \
	    $(GO) test -tags $(TAGS) -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

.PHONY: clean
clean: ## remove build output
	rm -rf bin
