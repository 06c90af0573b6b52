#!/usr/bin/env bash
# Runs the transparent-mode bench: the harness's workloads (plain HTTP, TLS
# tunnel, intercepted, large transfer) across network namespaces, with the
# clients in an agent namespace, agentg in a router namespace and the
# origins in an upstream namespace: direct (routed, no redirect), through
# agentg's explicit listener, and through its transparent listener by the
# redirect `agentg netsetup --apply` installs. Prints the table of ratios
# (Markdown, for bench/README.md); the target is transparent within 10% of
# explicit. Needs root (namespaces, firewall rules); everything it creates
# lives in its own namespaces and goes with them. Arguments go to
# agentg-load, e.g. -runs 7, -scenarios http,connect, -json, -keep.
set -euo pipefail
cd "$(dirname "$0")/.."
PATH=$PATH:/usr/sbin:/sbin

if [ "$(id -u)" != 0 ]; then
	echo "bench-transparent: needs root (network namespaces, nftables)" >&2
	exit 1
fi
need=()
for tool in ip:iproute2 nft:nftables; do
	command -v "${tool%%:*}" >/dev/null 2>&1 || need+=("${tool#*:}")
done
if [ ${#need[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "bench-transparent: installing ${need[*]}" >&2
	apt-get update -qq >/dev/null
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/agentg" ./cmd/agentg
go run ./bench/cmd/agentg-load -transparent -agentg "$tmp/agentg" "$@"
