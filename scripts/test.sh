#!/usr/bin/env bash
# Runs agentg's whole test suite. The tests drive real clients (curl,
# openssl, a headless chromium for the web console) against real
# listeners; what they need from Debian is installed here when missing and
# when we may (root with apt-get), never assumed.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for tool in curl:curl openssl:openssl ip:iproute2 nft:nftables iptables:iptables dig:dnsutils chromium:chromium python3:python3; do
	command -v "${tool%%:*}" >/dev/null 2>&1 || need+=("${tool#*:}")
done
# Python's requests, one of the clients the trust bundle is tried with.
python3 -c 'import requests' >/dev/null 2>&1 || need+=(python3-requests)
if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "installing test dependencies: ${need[*]}"
		apt-get update -qq >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
	else
		echo "missing ${need[*]}: the tests that need them will skip" >&2
	fi
fi

# The official MCP conformance suite (and the Node 22 it needs) comes from
# npm, pinned by test/conformance/package-lock.json; its test skips when
# it is not installed (scripts/lib/conformance.sh, shared with
# scripts/conformance.sh).
. scripts/lib/conformance.sh
install_conformance_suite || true

go vet ./...
go test -race -count=1 -timeout 8m "$@" ./...
# The race detector's sync.Pool drops what is put back at random, so the
# allocation tests only assert without it: run them once more that way.
go test -count=1 -run 'NoAlloc' ./rules

# The parsers that stand between a client and the policy are fuzzed
# briefly on every run (the seeds already ran above as plain tests);
# AGENTG_FUZZTIME=0 skips this, a longer time digs deeper.
fuzztime=${AGENTG_FUZZTIME:-5s}
# fuzz runs one target. A failing input the fuzzer saves fails the run at
# once. A run that stops without one (the fuzzer's own worker killed or
# timed out on a loaded machine) is said, shown and tried once more.
fuzz() {
	local log
	log=$(mktemp)
	for attempt in 1 2; do
		# The fuzzer minimizes every new interesting input, for up to a
		# minute by default; a run whose -fuzztime ends during that stops
		# with "context deadline exceeded" and no input. One second of
		# minimizing is plenty for inputs of this size.
		if go test -run '^$' -fuzz "^${1#*:}\$" -fuzztime "$fuzztime" -fuzzminimizetime 1s "${1%%:*}" >"$log" 2>&1; then
			if grep -q "no fuzz tests to fuzz" "$log"; then
				echo "fuzzing $1: no such fuzz target" >&2
				rm -f "$log"
				return 1
			fi
			rm -f "$log"
			return 0
		fi
		if grep -q "Failing input written to" "$log"; then
			cat "$log" >&2
			echo "fuzzing $1 found a failure (see testdata/fuzz)" >&2
			rm -f "$log"
			return 1
		fi
		if [ "$attempt" = 2 ]; then
			cat "$log" >&2
			if grep -q "context deadline exceeded" "$log" && ! grep -q -- "--- FAIL: Fuzz.*/" "$log"; then
				# Go's fuzzer reports its own deadline as an error when
				# -fuzztime ends in some states of its workers: no input
				# failed, and the seeds already passed as plain tests.
				echo "fuzzing $1 ended at its deadline twice without a failing input: not a finding" >&2
				rm -f "$log"
				return 0
			fi
			echo "fuzzing $1 failed without saving an input" >&2
			rm -f "$log"
			return 1
		fi
		echo "fuzzing $1 stopped without a failing input; running it once more. It said:" >&2
		tail -n 5 "$log" >&2
	done
}
if [ "$fuzztime" != 0 ] && [ $# -eq 0 ]; then
	n=0
	for target in ./dissect:FuzzReadClientHello ./dissect:FuzzReadServerHello ./dissect:FuzzSniff \
		./proxy:FuzzHostTracker ./proxy:FuzzHostField ./proxy:FuzzIsDoH ./addr:FuzzParseAuthority ./addr:FuzzName \
		./dissect/mcp/wire:FuzzParse ./dissect/mcp/wire:FuzzSSE ./dissect/mcp/wire:FuzzRedact ./dissect/mcp:FuzzGuard ./dissect/mcp:FuzzLists ./rules:FuzzTool ./rules:FuzzParsePolicy \
		./dissect/mcp/wire:FuzzFacts ./dissect/mcp/wire:FuzzDetect ./dissect/mcp/wire:FuzzContentType ./dissect/mcp:FuzzReframe ./dissect/mcp/wire:FuzzIDKey \
		./dnsfilter:FuzzServeDNS ./dnsfilter:FuzzCheckAnswer ./approval:FuzzToken ./approval:FuzzViewBody ./creds:FuzzTemplate ./creds/vault:FuzzRecord \
		./dissect/llm:FuzzStream ./dissect/llm:FuzzAnswer ./rules:FuzzParsePassword ./gateway/auth:FuzzBearerHeader ./gateway/auth:FuzzJWT \
		./creds:FuzzScanner ./creds:FuzzPlaceholder ./creds:FuzzLeakForms ./creds/oauth:FuzzParseChallenge ./creds/oauth:FuzzParsePrivateKey \
		./dissect/mcp:FuzzSession ./gateway/child:FuzzLines ./rules:FuzzModelGlob ./proxy:FuzzTurnWriter ./rules:FuzzGatewayEndpoint \
		./audit/otlp:FuzzParseEndpoint ./audit/otlp:FuzzLinker \
		./dissect/llm:FuzzRewriteChunking ./dissect/llm:FuzzRewriteAnswer \
		./dissect/llm:FuzzRewriteContent ./gateway:FuzzStdioMsg ./gateway:FuzzFastCallRewrite \
		./gateway:FuzzCloseWatch ./gateway:FuzzTaskRewrite ./gateway:FuzzMarkLegacy; do
		fuzz "$target" || exit 1
		n=$((n + 1))
	done
	echo "fuzz: $n targets ran for $fuzztime each"
fi
