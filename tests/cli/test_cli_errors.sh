#!/usr/bin/env bash
# test_cli_errors.sh LENS — every CLI error path: each bad input gets one clear "lens: " line on stderr, the right exit
# status (1 runtime, 2 usage), and no crash (a signal, or a sanitizer report when LENS is an ASan build).
set -u
lens=${1:?usage: test_cli_errors.sh path/to/lens}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0

model=tests/fixtures/models/tiny_resnet.onnx
[ -f ../shared/models/mobilenet_v2_real.onnx ] && model=../shared/models/mobilenet_v2_real.onnx
image=$(ls tests/fixtures/images/*.jpg 2>/dev/null | head -1)

# expect STATUS PATTERN -- ARGS...: runs lens, checks the exit status, that stderr is one line starting "lens: " and
# matching PATTERN (grep -E), and that nothing crashed.
expect() {
    local want=$1 pattern=$2
    shift 3
    "$lens" "$@" >"$tmp/out" 2>"$tmp/err"
    local got=$?
    local lines
    lines=$(wc -l <"$tmp/err")
    if [ "$got" -ne "$want" ] || ! head -1 "$tmp/err" | grep -Eq "^lens: .*($pattern)" ||
        grep -q "Sanitizer" "$tmp/err"; then
        echo "FAIL: lens $* -> exit $got (want $want), stderr:"
        sed 's/^/    /' "$tmp/err" | head -20
        failed=$((failed + 1))
    elif [ "$want" -eq 1 ] && [ "$lines" -ne 1 ]; then
        echo "FAIL: lens $* -> $lines stderr lines (want 1):"
        sed 's/^/    /' "$tmp/err" | head -20
        failed=$((failed + 1))
    else
        passed=$((passed + 1))
    fi
}

# Deterministic garbage.
RANDOM=7
garbage() { for _ in $(seq 1 "$1"); do printf "\\x$(printf %02x $((RANDOM % 256)))"; done; }

# --- models ---
head -c 5000 "$model" >"$tmp/truncated.onnx"
garbage 3000 >"$tmp/random.onnx"
: >"$tmp/empty.onnx"
expect 1 "truncated|malformed|invalid|unexpected end|past the end|needs" -- info -m "$tmp/truncated.onnx"
expect 1 "." -- info -m "$tmp/random.onnx"
expect 1 "empty" -- info -m "$tmp/empty.onnx"
expect 1 "No such file" -- info -m "$tmp/missing.onnx"
expect 1 "." -- classify -m "$tmp/random.onnx" "$image"
expect 1 "." -- run -m "$tmp/truncated.onnx" -i "$tmp/none.npy" -o "$tmp/out.npy"

# --- images ---
if [ -n "$image" ]; then
    size=$(stat -c %s "$image")
    head -c $((size / 2)) "$image" >"$tmp/truncated.jpg"
    garbage 2000 >"$tmp/random.jpg"
    echo "this is not a picture" >"$tmp/text.png"
    : >"$tmp/empty.jpg"
    expect 1 "truncated|premature|corrupt" -- classify -m "$model" "$tmp/truncated.jpg"
    expect 1 "unknown|not an image|unrecognized|format" -- classify -m "$model" "$tmp/random.jpg"
    expect 1 "unknown|not an image|unrecognized|format" -- classify -m "$model" "$tmp/text.png"
    expect 1 "empty" -- classify -m "$model" "$tmp/empty.jpg"
    expect 1 "No such file" -- classify -m "$model" "$tmp/missing.jpg"
    expect 1 "60000|limit|too large" -- classify -m "$model" tests/fixtures/bad/huge_60000.png
    # a bad image among good ones: the good one is still classified, the status is 1 at the end
    "$lens" classify -m "$model" --json "$image" "$tmp/random.jpg" "$image" >"$tmp/out" 2>"$tmp/err"
    st=$?
    if [ $st -eq 1 ] && [ "$(grep -c '"predictions"' "$tmp/out")" -eq 2 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ]; then
        passed=$((passed + 1))
    else
        echo "FAIL: mixed good and bad images -> exit $st, $(grep -c predictions "$tmp/out") results"
        failed=$((failed + 1))
    fi
else
    echo "FAIL: no JPEG fixture in tests/fixtures/images"
    failed=$((failed + 1))
fi

# --- usage ---
expect 2 "unknown option" -- classify --frobnicate -m "$model" x.jpg
expect 2 "unknown option" -- info --frobnicate
expect 2 "unknown option" -- run --frobnicate
expect 2 "unknown command" -- frobnicate
expect 2 "required" -- classify x.jpg
expect 2 "not an integer" -- classify -m "$model" -k zero x.jpg
expect 2 "needs a value" -- run -m
for cmd in classify run info; do
    if "$lens" $cmd --help | grep -q "usage: lens $cmd"; then passed=$((passed + 1)); else
        echo "FAIL: lens $cmd --help"
        failed=$((failed + 1))
    fi
done

# --- .npy of the wrong shape ---
# A float32 [1,3,8,8] tensor: header then 192 zero floats.
{
    header="{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 8, 8), }"
    while [ $(((10 + ${#header} + 1) % 64)) -ne 0 ]; do header="$header "; done
    printf '\x93NUMPY\x01\x00'
    printf "\\x$(printf %02x $(((${#header} + 1) % 256)))\\x$(printf %02x $(((${#header} + 1) / 256)))"
    printf '%s\n' "$header"
    head -c 768 /dev/zero
} >"$tmp/wrong.npy"
expect 1 "shape|expects" -- run -m "$model" -i "$tmp/wrong.npy" -o "$tmp/out.npy"

echo "test_cli_errors: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
