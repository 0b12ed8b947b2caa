#!/usr/bin/env bash
# Checks the shipped deployment files with the real tools: nginx -t on
# deploy/nginx/execgate.conf (inside a minimal nginx.conf, with a throwaway
# self-signed certificate) and systemd-analyze verify on the unit.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

command -v nginx >/dev/null || { echo "check-deploy: nginx is not installed (make deps)"; exit 1; }
mkdir -p "$tmp/ssl" "$tmp/logs"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
  -keyout "$tmp/ssl/privkey.pem" -out "$tmp/ssl/fullchain.pem" >/dev/null 2>&1
sed -e "s#/etc/ssl/execgate#$tmp/ssl#g" -e "s#/var/log/nginx#$tmp/logs#g" \
  -e "s#/etc/nginx/execgate-error-headers.conf#$tmp/execgate-error-headers.conf#g" \
  deploy/nginx/execgate.conf > "$tmp/execgate.conf"
cp deploy/nginx/execgate-error-headers.conf "$tmp/"
cat > "$tmp/nginx.conf" <<CONF
pid $tmp/nginx.pid;
error_log $tmp/logs/error.log;
events {}
http { include $tmp/execgate.conf; }
CONF
nginx -t -q -p "$tmp" -c "$tmp/nginx.conf"
echo "check-deploy: nginx configuration ok"

if command -v systemd-analyze >/dev/null; then
  # The binary path need not exist on a build machine; everything else must verify.
  out=$(systemd-analyze verify deploy/systemd/execgate.service 2>&1 | grep -v 'is not executable' || true)
  if [ -n "$out" ]; then echo "$out"; exit 1; fi
  echo "check-deploy: systemd unit ok"
fi
