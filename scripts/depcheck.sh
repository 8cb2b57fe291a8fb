#!/usr/bin/env bash
# Proves the import rules of DESIGN.md §1 with go list -deps.
set -euo pipefail
mod=github.com/gopyro/gopyro
fail=0

deps() { go list -deps "$1" | grep "^$mod" | grep -vx "$1" || true; }

# The root package imports only the standard library.
nonstd=$(go list -deps -f '{{if not .Standard}}{{.ImportPath}}{{end}}' "$mod" | grep -vx "$mod" || true)
if [ -n "$nonstd" ]; then echo "depcheck: $mod must import only the standard library, imports: $nonstd"; fail=1; fi

# pkg: allowed gopyro imports (regex over the import path)
check() {
  local pkg=$mod/$1 allowed=$2
  go list "$pkg" >/dev/null 2>&1 || return 0
  for d in $(deps "$pkg"); do
    if ! [[ $d =~ ^$mod(/($allowed))?$ ]]; then
      echo "depcheck: $pkg must not import $d"; fail=1
    fi
  done
}
check internal/wire ''
check daemon 'internal/wire'
check proxy 'internal/wire'
check nameserver 'internal/wire|daemon|proxy|nameserver/.*'
check classic 'internal/wire|daemon|proxy|classic/.*'
check gpu 'internal/wire|daemon|proxy|gpu/cpu'
check gpu/cpu 'gpu'
# Examples import only public packages themselves (what those import is theirs).
for ex in $(go list "$mod/examples/..." 2>/dev/null); do
  for d in $(go list -f '{{join .Imports "\n"}}' "$ex"); do
    if [[ $d == $mod/internal/* || $d == */cmd/* ]]; then echo "depcheck: example $ex must use public packages only, imports $d"; fail=1; fi
  done
done
# No production package imports gorgonia.org/cu (it exits the process without a GPU).
if go list -deps ./... | grep -q '^gorgonia.org/cu'; then echo "depcheck: gorgonia.org/cu is reachable without the cuda tag"; fail=1; fi
[ $fail = 0 ] && echo "depcheck: ok"
exit $fail
