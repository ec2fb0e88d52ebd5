# The two commands a newcomer needs: `make demo` and `make test`. Both install missing Debian packages when run as
# root (otherwise they print the apt-get line), build with CMake, then run.
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=

.PHONY: all build test test-asan demo deps clean

all: build

build:
	@scripts/deps.sh build
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j$(JOBS)

test:
	@scripts/deps.sh test
	$(MAKE) build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

# The same suite under AddressSanitizer + UBSan (CI runs it too).
test-asan:
	$(MAKE) test BUILD=build-asan CMAKE_FLAGS="-DLENS_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS)"

demo: build
	@LENS_MODEL="$(LENS_MODEL)" scripts/demo.sh $(BUILD)/lens $(DEMO_IMAGES)

clean:
	rm -rf build build-asan
