#!/usr/bin/env bash
# Proves the import rules of DESIGN.md §1 with go list -deps. Every
# package a rule names must exist (a typo must not pass silently); rules
# for packages that do not exist yet are added when they do.
set -euo pipefail
cd "$(dirname "$0")/.."
mod=github.com/gopyro/gopyro
fail=0
complain() { echo "depcheck: $*"; fail=1; }

exists() { go list "$mod/$1" >/dev/null 2>&1 || { complain "package $mod/$1 named by a rule does not exist"; return 1; }; }
deps() { go list -deps "$1" | grep "^$mod" | grep -vx "$1" || true; }

# The root package imports only the standard library.
nonstd=$(go list -deps -f '{{if not .Standard}}{{.ImportPath}}{{end}}' "$mod" | grep -vx "$mod" || true)
[ -z "$nonstd" ] || complain "$mod must import only the standard library, imports: $nonstd"

# check PKG ALLOWED: PKG may import only the gopyro packages matching ALLOWED.
check() {
  local pkg=$mod/$1 allowed=$2
  exists "$1" || return 0
  for d in $(deps "$pkg"); do
    [[ $d =~ ^$mod(/($allowed))?$ ]] || complain "$pkg must not import $d"
  done
}
check internal/wire ''
check internal/pyro ''
check internal/rpcxserver 'internal/wire'
check daemon 'internal/wire|internal/rpcxserver|internal/pyro'
check proxy 'internal/wire|internal/pyro'
check nameserver 'internal/wire|internal/rpcxserver|internal/pyro|daemon|proxy'
check classic 'internal/wire|internal/rpcxserver|internal/pyro|daemon|proxy'
check gpu 'internal/wire|internal/rpcxserver|internal/pyro|daemon|proxy'
check gpu/cpu 'gpu|internal/wire|internal/rpcxserver|internal/pyro|daemon|proxy'

# The GPU service and its CPU backend stay pure Go: no cgo anywhere in
# what they link (the CUDA backend is a separate program).
for p in gpu gpu/cpu; do
  exists "$p" || continue
  cgo=$(go list -deps -f '{{if and .CgoFiles (not .Standard)}}{{.ImportPath}}{{end}}' "$mod/$p" || true)
  [ -z "$cgo" ] || complain "$mod/$p links cgo packages: $cgo"
done

# rpcx's server side lives in one package: nothing else imports rpcx/server
# or rpcx/share (test files included).
for p in $(go list ./...); do
  [ "$p" = "$mod/internal/rpcxserver" ] && continue
  imports=$(go list -f '{{join .Imports "\n"}}{{"\n"}}{{join .TestImports "\n"}}{{"\n"}}{{join .XTestImports "\n"}}' "$p")
  if grep -qE '^github.com/smallnest/rpcx/(server|share)$' <<<"$imports"; then
    complain "$p imports rpcx's server side; only internal/rpcxserver may"
  fi
done

# A program that only calls (proxy) links rpcx's frame format and nothing
# else of rpcx.
exists proxy && {
  extra=$(go list -deps "$mod/proxy" | grep '^github.com/smallnest/rpcx' |
    grep -vxE 'github.com/smallnest/rpcx/(protocol|log|util)' || true)
  [ -z "$extra" ] || complain "proxy links more of rpcx than its frame format: $extra"
}

# The gopyro binary links one mDNS library (hashicorp/mdns) and neither
# rpcx's client (the bench baselines use rpcx's frame codec) nor what it
# brings (zeroconf, ICMP ping, kcp, quic).
extra=$(go list -deps ./cmd/gopyro | grep -E '^github.com/(smallnest/rpcx/client|grandcat/zeroconf|go-ping/ping|xtaci/kcp-go|quic-go/quic-go)' || true)
[ -z "$extra" ] || complain "the gopyro binary links what only rpcx's client needs: $extra"

# Examples import only public packages themselves (what those import is theirs).
for ex in $(go list "$mod/examples/..."); do
  for d in $(go list -f '{{join .Imports "\n"}}' "$ex"); do
    if [[ $d == $mod/internal/* || $d == */cmd/* ]]; then complain "example $ex must use public packages only, imports $d"; fi
  done
done

# No package reachable without build tags imports gorgonia.org/cu (its
# init exits the process where there is no GPU).
if go list -deps ./... | grep -q '^gorgonia.org/cu'; then complain "gorgonia.org/cu is reachable without the cuda tag"; fi

[ $fail = 0 ] && echo "depcheck: ok"
exit $fail
