#!/usr/bin/env bash
# Runs agentg's load harness: the same workloads direct, through agentg (its
# own process, logging to a file) and through Squid, all on loopback, and
# prints the table of ratios (Markdown, for bench/README.md). Arguments go
# to agentg-load, e.g. -runs 5, -scenarios http,connect, -json, -keep.
#
# Squid is installed from Debian when missing and when we may (root with
# apt-get): squid-openssl, whose ssl-bump the intercepted scenarios need;
# if no OpenSSL-enabled squid is available, plain squid, and the harness
# leaves out Squid's rows for the intercepted scenarios. The package's own
# service is kept from starting: the harness runs its own squid -N with a
# configuration it generates, and stops it at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
PATH=$PATH:/usr/sbin:/sbin

squid_bumps() { command -v squid >/dev/null 2>&1 && squid -v 2>/dev/null | grep -q -- '--with-openssl'; }
candidate() { apt-cache policy "$1" 2>/dev/null | grep -q 'Candidate: [0-9]'; }

if ! squid_bumps; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		apt-get update -qq >/dev/null
		pkg=
		if candidate squid-openssl; then
			pkg=squid-openssl
		elif ! command -v squid >/dev/null 2>&1 && candidate squid; then
			pkg=squid
			echo "bench: no squid-openssl in the package lists; installing plain squid (no ssl-bump rows)" >&2
		fi
		if [ -n "$pkg" ]; then
			echo "bench: installing $pkg" >&2
			# Keep the package's service from starting while it installs.
			made_policy=
			if [ ! -e /usr/sbin/policy-rc.d ]; then
				printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
				chmod +x /usr/sbin/policy-rc.d
				made_policy=1
			fi
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null || echo "bench: installing $pkg failed" >&2
			if [ -n "$made_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
		fi
	else
		echo "bench: no OpenSSL-enabled squid and not root: Squid's rows are left out where it cannot run" >&2
	fi
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/agentg" ./cmd/agentg
go run ./bench/cmd/agentg-load -agentg "$tmp/agentg" "$@"
