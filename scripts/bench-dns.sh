#!/usr/bin/env bash
# Runs the DNS benchmark: dnsperf against a loopback upstream directly,
# against dnsmasq forwarding to it, and against agentg's DNS filter (its own
# process; events off, then every query logged to a file), cached, blocked
# and uncached, with a 1,000,000-name denylist loaded into agentg and
# dnsmasq; then the memory of the filter's cache at 100,000 names. Prints a
# Markdown table (for bench/README.md). Arguments go to agentg-dnsbench,
# e.g. -seconds 20, -unique 500000, -keep.
#
# dnsperf and dnsmasq (dnsmasq-base: the binary without the system
# service) are installed from Debian when missing and when we may (root
# with apt-get).
set -euo pipefail
cd "$(dirname "$0")/.."
PATH=$PATH:/usr/sbin:/sbin

need=()
command -v dnsperf >/dev/null 2>&1 || need+=(dnsperf)
command -v dnsmasq >/dev/null 2>&1 || need+=(dnsmasq-base)
if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "bench-dns: installing ${need[*]}" >&2
		apt-get update -qq >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
	else
		echo "bench-dns: missing ${need[*]} and not root: install them first" >&2
		exit 1
	fi
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/agentg" ./cmd/agentg
go run ./bench/cmd/agentg-dnsbench -agentg "$tmp/agentg" "$@"
