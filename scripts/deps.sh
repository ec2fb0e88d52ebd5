#!/bin/sh
# deps.sh — makes sure the Debian packages lens needs are installed. As root it installs what is missing with
# apt-get; otherwise it prints the exact command to run and fails. Usage: scripts/deps.sh [build|test|arm64]
# (arm64: the cross toolchain, qemu-user and the arm64 image libraries for `make test-arm64`.)
set -e
need="gcc make cmake pkg-config libjpeg62-turbo-dev libpng-dev libwebp-dev"
[ "${1:-build}" = test ] && need="$need libonnx-testdata"
if [ "${1:-build}" = arm64 ]; then
    need="$need libonnx-testdata gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user"
    need="$need libjpeg62-turbo-dev:arm64 libpng-dev:arm64 libwebp-dev:arm64"
fi
missing=""
for p in $need; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "lens: cannot check packages (no dpkg); install:$missing" >&2
    exit 1
fi
if [ "$(id -u)" = 0 ]; then
    echo "lens: installing:$missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    case "$missing" in
    *:arm64*) dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64 ;;
    esac
    apt-get update -q >&2
    apt-get install -y -q --no-install-recommends $missing >&2
else
    echo "lens: missing packages:$missing" >&2
    case "$missing" in
    *:arm64*) echo "lens: first: sudo dpkg --add-architecture arm64 && sudo apt-get update" >&2 ;;
    esac
    echo "lens: run: sudo apt-get install -y$missing" >&2
    exit 1
fi
