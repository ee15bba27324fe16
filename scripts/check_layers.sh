#!/usr/bin/env bash
# Checks that no module reaches upward: every #include "..." in src/ and include/ must name a
# header of the including file's own module or of a lower one.
#
# Usage: scripts/check_layers.sh [ROOT]   (ROOT: the source tree, by default this script's ..)
# Exits 0 when the includes follow the order, 1 when one does not (each one reported as
# file:line, the include and both modules), 2 on a usage error.
#
# The order, lowest first; a module may include its own headers and those of modules before it:
#
#   core    errors, files, fp16, random numbers, progress bars, string pools
#   gguf    the GGUF container (reads and writes any GGUF; knows no model)
#   text    corpus, tokenizer (stored in GGUF), token streams, the WordNet verb lexicon
#   model   MiniGPT: layers, forward, backward, KV-cached decoding
#   quant   schemes, QuantizedLinear, kernels, quantized models, ggml's blocks
#   gptq    the GPTQ solver and whole-model calibration
#   io      model files: checkpoints and quantized models with their tokenizer
#   train   AdamW training, which writes checkpoints and its optimizer state
#   report  JSON and plots: depends on core only, so every module above may draw
#   eval    perplexity, minimal pairs, sensitivity, roofline (whose chart uses report)
#   cli     the miniquant command
#
# report sits below eval, not after it as the data flow (evaluation -> reports) would suggest:
# it is a rendering library that knows no model or result type, and the roofline chart is
# drawn by eval with it. tests/, bench/ and fuzz/ stand above every module; for them only the
# existence of each "miniquant/..." header they name is checked (fuzz targets are built only
# with clang, so a stale include there would otherwise go unnoticed).
#
# A public header (include/miniquant/X.h) belongs to the module whose folder holds X.c; headers
# without such a file are listed in HEADER_MODULE below. An unmapped header is an error, as is a
# private header (src/M/*.h) included from another module.
set -uo pipefail

ORDER=(core gguf text model quant gptq io train report eval cli)

# Headers with no .c of the same name.
declare -A HEADER_MODULE=(
    [model.h]=model # gpt.c, decode.c
    [eval.h]=eval   # perplexity.c
)

root=${1:-"$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"}
if [[ ! -d $root/src || ! -d $root/include/miniquant ]]; then
    echo "check_layers: $root has no src/ and include/miniquant/" >&2
    exit 2
fi
cd "$root" || exit 2

declare -A RANK
for i in "${!ORDER[@]}"; do
    RANK[${ORDER[$i]}]=$i
done

shopt -s nullglob
errors=0
fail() {
    echo "$*"
    errors=$((errors + 1))
}

# Every source folder must be a module of the order.
for d in src/*/; do
    d=${d%/}
    m=${d#src/}
    [[ -n ${RANK[$m]+x} ]] || fail "$d: folder is not a module of the order (${ORDER[*]})"
done

# The module of every public header.
declare -A MODULE_OF
for h in include/miniquant/*.h; do
    name=${h##*/}
    base=${name%.h}
    found=()
    for c in src/*/"$base".c; do
        c=${c#src/}
        found+=("${c%%/*}")
    done
    table=${HEADER_MODULE[$name]:-}
    if ((${#found[@]} > 1)); then
        fail "$h: unmapped: $base.c is in several modules (${found[*]})"
    elif ((${#found[@]} == 1)) && [[ -n $table && $table != "${found[0]}" ]]; then
        fail "$h: HEADER_MODULE says $table but $base.c is in ${found[0]}"
    elif ((${#found[@]} == 1)); then
        MODULE_OF[$h]=${found[0]}
    elif [[ -n $table ]]; then
        MODULE_OF[$h]=$table
    else
        fail "$h: unmapped header: no src/*/$base.c and no entry in HEADER_MODULE" \
            "(scripts/check_layers.sh)"
    fi
done
for name in "${!HEADER_MODULE[@]}"; do
    [[ -f include/miniquant/$name ]] || fail "scripts/check_layers.sh: HEADER_MODULE names" \
        "include/miniquant/$name, which does not exist"
done
for name in "${!HEADER_MODULE[@]}"; do
    [[ -n ${RANK[${HEADER_MODULE[$name]}]+x} ]] || fail "scripts/check_layers.sh: HEADER_MODULE" \
        "puts $name in ${HEADER_MODULE[$name]}, which is not a module of the order"
done

# module_of_path PATH: sets REPLY to the module of a file of the tree ("" when it has none).
module_of_path() {
    REPLY=
    case $1 in
    include/miniquant/*) REPLY=${MODULE_OF[$1]:-} ;;
    src/*/*)
        REPLY=${1#src/}
        REPLY=${REPLY%%/*}
        ;;
    esac
}

# normalize PATH: sets REPLY to PATH without ./ and dir/../ (a path relative to the root).
normalize() {
    local part parts out=()
    IFS=/ read -ra parts <<<"$1"
    for part in "${parts[@]}"; do
        case $part in
        '' | .) ;;
        ..) ((${#out[@]})) && unset 'out[${#out[@]}-1]' ;;
        *) out+=("$part") ;;
        esac
    done
    local IFS=/
    REPLY="${out[*]}"
}

order_text=${ORDER[*]}
order_text=${order_text// / < }

include_re='^[[:space:]]*#[[:space:]]*include[[:space:]]*"([^"]+)"'

# includes_of DIR...: every #include "..." line of the .c and .h files under DIR, as
# file:line:text, files in name order.
includes_of() {
    local files=()
    mapfile -d '' files < <(find "$@" -type f \( -name '*.c' -o -name '*.h' \) -print0 2>/dev/null |
        sort -z)
    ((${#files[@]})) || return 0
    grep -nHE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "${files[@]}" || true
}

# One line of includes_of ("file:line:text") into file, lineno and inc; fails when the text is
# not a quoted include.
parse_hit() {
    file=${1%%:*}
    local rest=${1#*:}
    lineno=${rest%%:*}
    [[ ${rest#*:} =~ $include_re ]] || return 1
    inc=${BASH_REMATCH[1]}
}

# The library: every include must resolve and must not reach upward.
n_includes=0
while IFS= read -r hit; do
    parse_hit "$hit" || continue
    n_includes=$((n_includes + 1))
    module_of_path "$file"
    from=$REPLY
    [[ -n $from && -n ${RANK[$from]+x} ]] || continue # reported above
    if [[ $inc == miniquant/* ]]; then
        target=include/$inc
    else
        normalize "${file%/*}/$inc"
        target=$REPLY
    fi
    if [[ ! -f $target ]]; then
        fail "$file:$lineno: #include \"$inc\": no such header in the tree"
        continue
    fi
    module_of_path "$target"
    to=$REPLY
    if [[ -z $to ]]; then
        fail "$file:$lineno: #include \"$inc\": $target belongs to no module"
        continue
    fi
    [[ -n ${RANK[$to]+x} ]] || continue # reported above
    if ((RANK[$to] > RANK[$from])); then
        fail "$file:$lineno: #include \"$inc\": module $from includes a header of module" \
            "$to, which is above it ($order_text)"
    elif [[ $target == src/* && $to != "$from" ]]; then
        fail "$file:$lineno: #include \"$inc\": module $from includes a private header of" \
            "module $to"
    fi
done < <(includes_of src include)

# Tests, benchmarks and fuzz targets: the public headers they name must exist.
while IFS= read -r hit; do
    parse_hit "$hit" || continue
    if [[ $inc == miniquant/* && ! -f include/$inc ]]; then
        fail "$file:$lineno: #include \"$inc\": no such header in include/"
    fi
done < <(includes_of tests bench fuzz)

if ((errors)); then
    echo "check_layers: $errors problem(s); the order is ${ORDER[*]} (scripts/check_layers.sh)"
    exit 1
fi
echo "check_layers: $n_includes includes in src/ and include/ follow the order $order_text"
exit 0
