#!/usr/bin/env bash
# Gateway benchmark (make bench), issue 4's table: in one run on this
# machine, with wrk on loopback against servers in one Go process, req/s,
# p50/p99 and CPU per request of (a) a bare Gin handler answering 200,
# (a') a bare Gin handler taking the same POST body as (c) and answering JSON,
# (b) 401 on a bad token, (c) POST /v1/exec/check with a valid token (audit
# log durable), in interleaved rounds, with (b)/(a) and (c)/(a); then (d)
# POST /v1/exec of /bin/true against the same sandbox Runner called
# directly, in interleaved pairs. Prints markdown tables on stdout.
# The measuring is Go: TestBenchGateway in gateway/bench_test.go.
#
# Needs root (the sandbox) and wrk (installed by scripts/install-deps.sh).
# EXECGATE_BENCH_WRK ("-t2 -c64 -d5s"), EXECGATE_BENCH_ROUNDS (3) and
# EXECGATE_BENCH_PAIRS (200; 0 skips (d)) tune it; EXECGATE_BENCH_CPUPROFILE=FILE writes
# a CPU profile of the (c) legs.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "bench-gateway: needs root (the sandbox of leg d)" >&2
  exit 1
fi
if ! command -v wrk >/dev/null; then
  echo "bench-gateway: installing wrk" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null
fi

# The test binary lives in its own directory, apart from every state root
# (libcontainer seals the re-executed binary; trap 3 of the probe notes).
bindir=$(mktemp -d /tmp/execgate-bench-gw.XXXXXX)
trap 'rm -rf "$bindir"' EXIT
. scripts/goflags.sh # the flags of the shipped binary
CGO_ENABLED=1 go test -c -tags "$GO_TAGS" -ldflags "$GO_LDFLAGS_STATIC" -o "$bindir/gateway.test" ./gateway/

cd gateway
EXECGATE_BENCH=1 "$bindir/gateway.test" -test.run '^TestBenchGateway$' -test.count=1 | grep -v '^PASS$'
