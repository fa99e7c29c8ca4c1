# The two commands: `make run` and `make test`. Everything else is a helper for them.
BUILD_DIR ?= build
BUILD_TYPE ?= Release
JOBS ?= $(shell nproc)
DATA ?= ./var
LISTEN ?= 127.0.0.1:5000

.PHONY: all setup setup-test build run test clean format

all: build

setup:
	@scripts/setup

setup-test:
	@scripts/setup --test

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) \
	  -DBERTH_WERROR=ON

build: setup $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR) -j $(JOBS) --target berthd berth

run: build
	$(BUILD_DIR)/bin/berthd --data $(DATA) --listen $(LISTEN)

test: setup-test $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR) -j $(JOBS)
	cd $(BUILD_DIR) && ctest --output-on-failure -j 2

format:
	find src tests bench -name '*.h' -o -name '*.cc' | xargs clang-format -i

clean:
	rm -rf $(BUILD_DIR)
