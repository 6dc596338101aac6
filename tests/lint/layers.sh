#!/bin/bash
# Layering: a file in src/LAYER (or header whose module lives there) may include maec headers of
# its own layer or lower ones only. The order is src/meson.build's subdir() order. Every public
# header include/maec/X.h must belong to exactly one layer: the folder that holds X.c.
set -u
root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$root" || exit 2
mapfile -t layers < <(sed -n "s/^subdir('\([a-z_]*\)')/\1/p" src/meson.build)
declare -A rank
for i in "${!layers[@]}"; do rank[${layers[$i]}]=$i; done

declare -A header_layer
bad=0
for h in include/maec/*.h; do
  name=$(basename "$h" .h)
  # The files of src/cli are commands (cli_NAME in cli.h), not modules: only cli.c has a header.
  found=$(ls src/*/"$name".c 2>/dev/null | grep -v '^src/cli/' || true)
  [ "$name" = cli ] && found=src/cli/cli.c
  count=$(printf '%s' "$found" | grep -c . || true)
  if [ "$count" -ne 1 ]; then
    echo "layers: $h: expected exactly one src/*/$name.c implementing it, found $count"
    bad=1
    continue
  fi
  header_layer[$name]=$(basename "$(dirname "$found")")
done

check_file() { # file, layer of the file
  local f=$1 own=$2 inc
  while read -r inc; do
    [ -n "$inc" ] || continue
    local l=${header_layer[$inc]:-}
    if [ -z "$l" ]; then
      echo "layers: $f includes maec/$inc.h, which has no module"
      bad=1
    elif [ "${rank[$l]}" -gt "${rank[$own]}" ]; then
      echo "layers: $f (layer $own) includes maec/$inc.h from the higher layer $l"
      bad=1
    fi
  done < <(sed -n 's/^#include "maec\/\([a-z0-9_]*\)\.h".*/\1/p' "$f")
}
for layer in "${layers[@]}"; do
  for f in src/"$layer"/*.c; do [ -e "$f" ] && check_file "$f" "$layer"; done
done
for h in include/maec/*.h; do
  name=$(basename "$h" .h)
  [ -n "${header_layer[$name]:-}" ] && check_file "$h" "${header_layer[$name]}"
done
if [ "$bad" -eq 0 ]; then echo "layers: ok (${#layers[@]} layers, ${#header_layer[@]} headers)"; fi
exit $bad
