# The two commands: `make run` and `make test`. Everything else is a helper for them.
BUILD_DIR ?= build
BUILD_TYPE ?= Release
JOBS ?= $(shell nproc)
DATA ?= ./var
LISTEN ?= 127.0.0.1:5000
FUZZ_DIR ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=

.PHONY: all setup setup-test build run test fuzz clean format

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
	cd $(BUILD_DIR) && BERTH_TEST_REQUIRE_SERVERS=1 ctest --output-on-failure -j 2

# libFuzzer + ASan + UBSan (clang) in its own build dir; each target runs FUZZ_SECONDS on its
# corpus, one after another (docs/fuzzing.md). FUZZ_TARGETS="dockerfile http_head" narrows it.
fuzz:
	@scripts/setup --fuzz
	cmake -S . -B $(FUZZ_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_CXX_COMPILER=clang++ -DBERTH_FUZZ=ON -DBERTH_TESTS=OFF -DBERTH_WERROR=OFF
	cmake --build $(FUZZ_DIR) -j $(JOBS) --target berth_fuzz_all
	fuzz/run.sh $(FUZZ_DIR) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

format:
	find src tests bench fuzz -name '*.h' -o -name '*.cc' | xargs clang-format -i

clean:
	rm -rf $(BUILD_DIR)
