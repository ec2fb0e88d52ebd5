# The two commands a newcomer needs: `make demo` and `make test`. Both install missing Debian packages when run as
# root (otherwise they print the apt-get line), build with CMake, then run.
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=

.PHONY: all build test test-asan test-arm64 demo deps clean

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

# Cross-builds for arm64 (cmake/aarch64-linux-gnu.cmake) and runs the suite under qemu-user: the NEON kernels and
# the portable ones as an arm64 machine runs them. Emulation is slow: the real-model test (200 images through two
# models) is left out unless ARM64_EXCLUDE= (empty) is given; ARM64_EXCLUDE is a CTest regex.
ARM64_BUILD ?= build-arm64
ARM64_EXCLUDE ?= ^test_real_models$$
test-arm64:
	@scripts/deps.sh arm64
	cmake -S . -B $(ARM64_BUILD) -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake -DCMAKE_BUILD_TYPE=Release \
		$(CMAKE_FLAGS)
	cmake --build $(ARM64_BUILD) -j$(JOBS)
	cd $(ARM64_BUILD) && ctest --output-on-failure -j$(JOBS) $(if $(ARM64_EXCLUDE),-E '$(ARM64_EXCLUDE)')

demo: build
	@LENS_MODEL="$(LENS_MODEL)" scripts/demo.sh $(BUILD)/lens $(DEMO_IMAGES)

clean:
	rm -rf build build-asan build-arm64
