#!/usr/bin/env bash
# Sandbox start-cost benchmark (make bench): in one run on this machine,
# plain os/exec of /bin/true vs bubblewrap with equivalent isolation vs
# libcontainer as the probe ran it (a fresh container and rootfs per run,
# the same isolation, none of execgate's start-cost cuts: the issue's "floor
# to beat", measured here instead of quoted from the probe's machine) vs
# execgate's fresh container, at 1, 2, 4 and 8 concurrent runs. Prints a
# markdown table (p50/p99 latency, runs/s, ratios to plain exec and to the
# probe's way) and a line with execgate's ratios to the probe's way on
# stdout. The measuring is Go: TestBenchCompare in
# sandbox/bench_compare_test.go (legs in sandbox/bench_*_test.go).
#
# Needs root (sandbox, cgroups). Installs Debian's bubblewrap when missing.
# EXECGATE_BENCH_CELL=2s lengthens each table cell (default 1.2s, ~30 s total).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "bench-sandbox: needs root (the sandbox and the bubblewrap leg's cgroups)" >&2
  exit 1
fi
if ! command -v bwrap >/dev/null; then
  echo "bench-sandbox: installing bubblewrap" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends bubblewrap >/dev/null
fi

# The test binary lives in its own directory, apart from every state root
# (libcontainer seals the re-executed binary; trap 3 of the probe notes).
bindir=$(mktemp -d /tmp/execgate-bench-bin.XXXXXX)
trap 'rm -rf "$bindir"' EXIT
. scripts/goflags.sh # the flags of the shipped binary
CGO_ENABLED=1 go test -c -tags "$GO_TAGS" -ldflags "$GO_LDFLAGS_STATIC" -o "$bindir/sandbox.test" ./sandbox/

cd sandbox
EXECGATE_BENCH=1 "$bindir/sandbox.test" -test.run '^TestBenchCompare$' -test.count=1 | grep -v '^PASS$'
