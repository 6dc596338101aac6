#!/bin/bash
# The seam: the trainer, the evaluation commands and every other layer work with whatever
# objective a job names, through objective.h. So outside src/objectives/ no source file names a
# registered objective as a string ("supmae"), and no one but the registry names an objective's
# class (supmae_objective). The registered names come from registry.c's X(name) lines.
set -u
root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$root" || exit 2
mapfile -t names < <(sed -n 's/^ *X(\([a-z0-9_]*\)).*/\1/p' src/objectives/registry.c)
if [ "${#names[@]}" -lt 1 ]; then
  echo "objective_names: no X(name) lines in src/objectives/registry.c"
  exit 1
fi
bad=0
for name in "${names[@]}"; do
  hits=$(grep -rnE "\"$name\"|\b${name}_objective\b" src include --include='*.c' --include='*.h' |
         grep -v '^src/objectives/' || true)
  if [ -n "$hits" ]; then
    echo "objective_names: objective '$name' is named outside src/objectives/ (go through objective.h instead):"
    echo "$hits"
    bad=1
  fi
  [ -f "src/objectives/$name.c" ] || { echo "objective_names: '$name' is registered but src/objectives/$name.c is missing"; bad=1; }
done
[ $bad -eq 0 ] && echo "objective_names: ${#names[@]} objectives (${names[*]}), named only in src/objectives/"
exit $bad
