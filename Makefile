# swift-npid: `make demo` trains and evaluates on real images; `make test` runs the tests.
# Both first run scripts/bootstrap, which installs libtorch and the image codecs when missing.

SWIFT ?= swift
RELEASE_FLAGS = -c release --static-swift-stdlib

.PHONY: all bootstrap build demo test clean

all: build

bootstrap:
	@scripts/bootstrap

build: bootstrap
	$(SWIFT) build $(RELEASE_FLAGS) --product npid
	@echo "built .build/release/npid"

demo: build
	@scripts/demo

test: bootstrap
	$(SWIFT) test --parallel

clean:
	rm -rf .build
