#!/usr/bin/env bash
# Tests of scripts/check_layers.sh: it passes on a copy of the tree, and each deliberate
# violation put into the copy makes it exit 1 with a message naming the file, the line, the
# include and both modules.
#
# Usage: tests/test_check_layers.sh ROOT
set -euo pipefail
root=${1:?usage: test_check_layers.sh ROOT}
check=$root/scripts/check_layers.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tree=$tmp/tree

fresh() {
    rm -rf "$tree"
    mkdir -p "$tree"
    cp -R "$root/include" "$root/src" "$tree/"
}

# insert_line FILE N TEXT: TEXT becomes line N of FILE.
insert_line() {
    sed -i "$2i\\$3" "$1"
}

run_check() {
    set +e
    out=$(bash "$check" "$tree" 2>&1)
    rc=$?
    set -e
}

expect_pass() {
    run_check
    if ((rc != 0)); then
        printf 'FAIL %s: exit %d, expected 0\n%s\n' "$1" "$rc" "$out"
        exit 1
    fi
    echo "ok $1"
}

# expect_fail NAME TEXT...: the check exits 1 and its output contains every TEXT.
expect_fail() {
    local name=$1 want
    shift
    run_check
    if ((rc != 1)); then
        printf 'FAIL %s: exit %d, expected 1\n%s\n' "$name" "$rc" "$out"
        exit 1
    fi
    for want in "$@"; do
        if ! grep -qF -- "$want" <<<"$out"; then
            printf 'FAIL %s: the output does not say "%s":\n%s\n' "$name" "$want" "$out"
            exit 1
        fi
    done
    echo "ok $name"
}

fresh
expect_pass "the tree as it is"

fresh
insert_line "$tree/src/core/rng.c" 2 '#include "miniquant/qmodel.h"'
expect_fail "core includes a quant header" \
    'src/core/rng.c:2: #include "miniquant/qmodel.h": module core includes a header of module quant'

fresh
insert_line "$tree/include/miniquant/gguf.h" 1 '#include "miniquant/tokenizer.h"'
expect_fail "a public header of gguf includes one of text" \
    'include/miniquant/gguf.h:1: #include "miniquant/tokenizer.h": module gguf includes a header of module text'

fresh
insert_line "$tree/src/model/gpt.c" 1 '#include "miniquant/checkpoint.h"'
expect_fail "model includes io (the old checkpoint reach)" \
    'src/model/gpt.c:1: #include "miniquant/checkpoint.h": module model includes a header of module io'

fresh
touch "$tree/include/miniquant/orphan.h"
expect_fail "a header of no module" 'include/miniquant/orphan.h: unmapped header'

fresh
insert_line "$tree/src/eval/pairs.c" 1 '#include "../text/hashmap.h"'
expect_fail "a private header used by another module" \
    'src/eval/pairs.c:1: #include "../text/hashmap.h": module eval includes a private header of module text'

fresh
insert_line "$tree/src/core/rng.c" 1 '#include "miniquant/nonexistent.h"'
expect_fail "an include that names no header" \
    'src/core/rng.c:1: #include "miniquant/nonexistent.h": no such header'

fresh
mkdir "$tree/src/misc"
echo 'int mq_misc;' >"$tree/src/misc/misc.c"
expect_fail "a folder outside the order" 'src/misc: folder is not a module of the order'
