#!/usr/bin/env bash
# Runs the official MCP conformance suite's server scenarios in one mode
# and ends with one line, "N passed, M failed". Modes:
#
#   gateway   every server scenario of requirements/2026-07-28.yaml and
#             requirements/2025-11-25.yaml against the Go SDK's
#             everything-server directly, and through agentg's MCP gateway
#             fronting it with no prefix; a scenario passes when its
#             outcome (each check's status) through the gateway equals its
#             outcome direct (test/gateway_conformance_test.go).
#
# Another mode (auth, ...) is one more case below, ending the same way.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh

usage() {
	echo "usage: scripts/conformance.sh gateway" >&2
	exit 2
}
[ $# -eq 1 ] || usage

install_conformance || { echo "0 passed, 1 failed"; exit 1; }
case "$1" in
gateway)
	log=$(mktemp)
	trap 'rm -f "$log"' EXIT
	# The Go test builds agentg and the everything-server, runs both
	# sides and prints the count as its last line of output.
	status=0
	AGENTG_CONFORMANCE_FULL=1 go test -count=1 -timeout 20m -v -run '^TestGatewayConformance$' ./test >"$log" 2>&1 || status=$?
	grep -E '^\s+gateway_conformance_test.go:[0-9]+: ' "$log" >&2 || true
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
	if [ -z "$line" ]; then
		cat "$log" >&2
		echo "0 passed, 1 failed"
		exit 1
	fi
	echo "$line"
	exit "$status"
	;;
*)
	usage
	;;
esac
