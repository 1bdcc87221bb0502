# recserve — build, demo, test and benchmark entry points.
# Two commands set everything up on a fresh machine: `make run` and `make test`.

SHELL := /bin/bash
GO ?= go
export PATH := $(CURDIR)/.tools:$(PATH)

# Pinned tool versions (installed into .tools/ by `make tools`).
BUF_VERSION                := v1.75.0
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
STATICCHECK_VERSION        := v0.8.2
GRPCURL_VERSION            := v1.9.4
GHZ_VERSION                := v0.93.0
# onnxruntime shared library for the onnx model kind (`make ort`): taken from
# the npm package onnxruntime-node; 1.24.x matches onnxruntime_go v1.27.0
# (ORT_API_VERSION 24 in its bundled onnxruntime_c_api.h).
ORT_VERSION                := 1.24.3
ORT_SHA256                 := 92ba8e44d31b80a34f5e805076a044122c3be1fffe0d88ed790de7267b0b2682

TOOLS := .tools
ADDR  ?= localhost:50051

# Demo data set and model repository (git-ignored, rebuilt by make).
DEMO       := var/demo
DATA       ?= $(DEMO)/data
REPO       ?= $(DEMO)/repo
STATE      ?= $(DEMO)/state
SPLIT      := $(DEMO)/split
EVAL_REPO  := $(DEMO)/eval-repo
DEMO_USERS ?= 5000
DEMO_ITEMS ?= 2000
DEMO_SEED  ?= 1
EPOCHS     ?=

# Python trainers run with Debian's interpreter and packages (PyPI is not
# needed); `make pydeps` installs them when they are missing.
PYTHON      ?= /usr/bin/python3
PY_MODULES  := xgboost sklearn scipy pandas numpy yaml torch onnx
PY_PACKAGES := python3-xgboost python3-sklearn python3-scipy python3-pandas python3-numpy python3-yaml python3-torch python3-onnx
comma       := ,
space       := $(empty) $(empty)
SUDO        := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all build run demo train pydeps eval test lint proto proto-check tools bench bench-go bench-load clean

all: build

build:
	$(GO) build -o bin/recserve ./cmd/recserve
	$(GO) build -o bin/recctl ./cmd/recctl

## run: build, prepare the demo data set and model repository, serve on $(ADDR).
run: build demo ort
	bin/recserve --addr $(ADDR) --repo $(REPO) --data $(DATA) --state $(STATE)

## ort: the onnxruntime shared library (.ort/libonnxruntime.so.1, linux/x64)
## from the npm package onnxruntime-node@$(ORT_VERSION); skipped when
## .ort/VERSION already says $(ORT_VERSION). The library is self-contained (it
## dlopens libonnxruntime_providers_shared.so only for GPU providers).
.PHONY: ort
ort:
	@if [ "$$(cat .ort/VERSION 2>/dev/null)" = "$(ORT_VERSION)" ] && [ -f .ort/libonnxruntime.so.1 ]; then \
	  echo "onnxruntime $(ORT_VERSION) present in .ort/"; exit 0; fi; \
	set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	echo "fetching onnxruntime-node@$(ORT_VERSION) (npm)"; \
	(cd "$$tmp" && npm pack --silent onnxruntime-node@$(ORT_VERSION) >/dev/null); \
	tar -xzf "$$tmp"/onnxruntime-node-$(ORT_VERSION).tgz -C "$$tmp" package/bin/napi-v6/linux/x64/libonnxruntime.so.1; \
	echo "$(ORT_SHA256)  $$tmp/package/bin/napi-v6/linux/x64/libonnxruntime.so.1" | sha256sum -c --quiet -; \
	mkdir -p .ort; rm -f .ort/VERSION; \
	mv "$$tmp"/package/bin/napi-v6/linux/x64/libonnxruntime.so.1 .ort/libonnxruntime.so.1; \
	echo "$(ORT_VERSION)" > .ort/VERSION; \
	echo "onnxruntime $(ORT_VERSION) installed in .ort/"

## demo: the demo data set (recctl datagen) and its model repository.
demo: build $(DEMO)/data/interactions.csv $(DEMO)/repo/.trained $(DEMO)/repo/routes.yaml

$(DEMO)/data/interactions.csv:
	bin/recctl datagen --out $(DEMO)/data --users $(DEMO_USERS) --items $(DEMO_ITEMS) --seed $(DEMO_SEED)

## redis: Debian's redis-server, which the Redis state store's tests start
## themselves (installed if missing).
.PHONY: redis
redis:
	@command -v redis-server >/dev/null || { echo "installing redis-server"; $(SUDO) apt-get update -qq && \
	    $(SUDO) apt-get install -y -qq --no-install-recommends redis-server; }

## pydeps: the Debian Python packages the trainers need (installed if missing).
pydeps:
	@$(PYTHON) -c 'import $(subst $(space),$(comma),$(PY_MODULES))' 2>/dev/null || \
	  { echo "installing $(PY_PACKAGES)"; $(SUDO) apt-get update -qq && \
	    $(SUDO) apt-get install -y -qq --no-install-recommends $(PY_PACKAGES); }

## train: (re)build the model repository REPO from the data set DATA
## (scripts/train.sh): the Go-native recommenders, the purchase-propensity
## scorers (features exported by recctl, trained by the Python scripts, served
## natively) and the neural recommenders (PyTorch, exported to ONNX, served by
## onnxruntime with dynamic batching), each when the data set supports it;
## the models it does not support are skipped with the reason (`recctl
## datainfo`). EPOCHS caps the neural trainers' epochs (empty: their own).
train: build pydeps
	DATA="$(DATA)" REPO="$(REPO)" PYTHON="$(PYTHON)" EPOCHS="$(EPOCHS)" scripts/train.sh

$(DEMO)/repo/.trained: $(DEMO)/data/interactions.csv Makefile scripts/train.sh
	$(MAKE) train DATA=$(DEMO)/data REPO=$(DEMO)/repo

# A change of configs/routes.yaml alone needs no retraining: the copy is
# enough (a running server reloads it).
$(DEMO)/repo/routes.yaml: configs/routes.yaml $(DEMO)/repo/.trained
	cp configs/routes.yaml $@

## eval: time-split the demo data, train on train/, evaluate on test/.
eval: build $(DEMO)/data/interactions.csv
	bin/recctl split --in $(DEMO)/data --out $(SPLIT) --method time --test-frac 0.2
	$(MAKE) train DATA=$(SPLIT)/train REPO=$(EVAL_REPO)
	bin/recctl eval --routes --repo $(EVAL_REPO) --train $(SPLIT)/train --test $(SPLIT)/test --k 10
	@echo "cold-start items only (test interactions on items absent from train):"
	bin/recctl eval --cold-items --repo $(EVAL_REPO) --train $(SPLIT)/train --test $(SPLIT)/test --k 10

## test: generated code up to date, vet, and every test with the race detector.
test: proto-check pydeps redis
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...
	$(PYTHON) -m unittest discover -s training/python -p 'test_*.py'

lint: $(TOOLS)/staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(TOOLS)/staticcheck ./...

## proto: regenerate Go code from proto/ and lint the API.
proto: $(TOOLS)/buf $(TOOLS)/protoc-gen-go $(TOOLS)/protoc-gen-go-grpc
	$(TOOLS)/buf lint
	$(TOOLS)/buf generate

## proto-check: fail when the committed generated code is stale or buf lint fails.
proto-check: proto
	@git diff --exit-code -- proto || (echo "generated code is stale: run make proto and commit" && exit 1)
	@test -z "$$(git status --porcelain -- proto)" || (git status --porcelain -- proto; echo "untracked generated files: run make proto and commit"; exit 1)

tools: $(TOOLS)/buf $(TOOLS)/protoc-gen-go $(TOOLS)/protoc-gen-go-grpc $(TOOLS)/staticcheck $(TOOLS)/grpcurl $(TOOLS)/ghz

$(TOOLS)/buf:
	GOBIN=$(CURDIR)/$(TOOLS) $(GO) install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
$(TOOLS)/protoc-gen-go:
	GOBIN=$(CURDIR)/$(TOOLS) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
$(TOOLS)/protoc-gen-go-grpc:
	GOBIN=$(CURDIR)/$(TOOLS) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
$(TOOLS)/staticcheck:
	GOBIN=$(CURDIR)/$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
$(TOOLS)/grpcurl:
	GOBIN=$(CURDIR)/$(TOOLS) $(GO) install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)
$(TOOLS)/ghz:
	GOBIN=$(CURDIR)/$(TOOLS) $(GO) install github.com/bojand/ghz/cmd/ghz@$(GHZ_VERSION)

## bench: Go micro-benchmarks and the ghz load test (Recommend next to Health/Check).
bench: bench-go bench-load

bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./...

bench-load: build demo $(TOOLS)/ghz
	scripts/loadtest.sh

clean:
	rm -rf bin var
