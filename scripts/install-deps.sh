#!/usr/bin/env bash
# Installs the system packages execgate's build and tests need on a fresh
# Debian machine. Idempotent and quiet when nothing is missing. Needs root to
# install; without root it only reports what is missing.
set -euo pipefail

# package -> a file whose presence proves it is installed
declare -A want=(
  [libseccomp-dev]=/usr/include/seccomp.h
  [pkg-config]=/usr/bin/pkg-config
  [gcc]=/usr/bin/gcc
  [libc6-dev]=/usr/lib/x86_64-linux-gnu/libc.a
  [redis-server]=/usr/bin/redis-server
  [bubblewrap]=/usr/bin/bwrap
  [nginx]=/usr/sbin/nginx
  [procps]=/usr/bin/top
  [openssl]=/usr/bin/openssl
  [wrk]=/usr/bin/wrk # load client of make bench (scripts/bench-gateway.sh)
  # binaries the shipped policies name (a missing binary is a load error)
  [git]=/usr/bin/git
  [vim]=/usr/bin/vim.basic
  [less]=/usr/bin/less
  [python3-minimal]=/usr/bin/python3
)

missing=()
for pkg in "${!want[@]}"; do
  [ -e "${want[$pkg]}" ] || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages ${missing[*]}; run as root (or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
# nginx and redis must not start system-wide services on install: tests
# start their own instances on loopback ports.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
chmod 755 /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
