# aarch64-linux-gnu.cmake — cross-builds lens for 64-bit Arm Linux on a Debian x86-64 host, and runs the test
# executables under qemu-user (CTest prefixes each with CMAKE_CROSSCOMPILING_EMULATOR). Used by `make test-arm64`:
#   cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
# Needs gcc-aarch64-linux-gnu, libc6-dev-arm64-cross, qemu-user and the arm64 image libraries (multiarch:
# dpkg --add-architecture arm64; libjpeg62-turbo-dev:arm64 libpng-dev:arm64 libwebp-dev:arm64); scripts/deps.sh arm64
# installs them.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(LENS_CROSS_TRIPLE aarch64-linux-gnu)
set(CMAKE_C_COMPILER ${LENS_CROSS_TRIPLE}-gcc)

# Libraries and headers come from the Debian multiarch directories; build tools from the host.
set(CMAKE_LIBRARY_ARCHITECTURE ${LENS_CROSS_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH /usr/${LENS_CROSS_TRIPLE} /usr)
# pkg-config must see only the arm64 .pc files, never the host's.
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/${LENS_CROSS_TRIPLE}/pkgconfig:/usr/share/pkgconfig)
set(ENV{PKG_CONFIG_PATH} "")

# The binaries run on the multiarch arm64 libc and loader (libc6:arm64, which the arm64 image libraries pull in:
# /lib/ld-linux-aarch64.so.1), so qemu needs no -L. With -L /usr/aarch64-linux-gnu (the cross libc, 2.36-8) qemu 7.2
# hangs in the first pthread_create.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64)
