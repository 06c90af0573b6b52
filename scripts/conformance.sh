#!/usr/bin/env bash
# Runs one of the official MCP conformance suite's long comparisons from a
# checkout (installing what it needs as scripts/test.sh does) and ends with
# one line, "N passed, M failed". Modes:
#
#   auth      the suite's OAuth client scenarios with agentg as the OAuth
#             client (issue 16): every auth/* scenario in the client lists
#             of requirements/2025-11-25.yaml and requirements/2026-07-28.yaml,
#             each at its revision, plus auth/client-credentials-basic and
#             auth/client-credentials-jwt, run through agentg (the Go SDK
#             client with no OAuth handler, test/conformance/authclient,
#             agentg holding the oauth binding) and, for comparison, by the
#             Go SDK's own conformance client with its own OAuth handler,
#             direct. The count is of the runs through agentg.
#   gateway   every server scenario of requirements/2026-07-28.yaml and
#             requirements/2025-11-25.yaml against the Go SDK's
#             everything-server directly, and through agentg's MCP gateway
#             fronting it with no prefix; a scenario passes when its
#             outcome (each check's status) through the gateway equals its
#             outcome direct (test/gateway_conformance_test.go).
#
# Exits non-zero when any scenario failed.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/conformance.sh

usage() {
	echo "usage: scripts/conformance.sh auth|gateway" >&2
	exit 2
}
[ $# -eq 1 ] || usage

run_auth() {
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	echo "building agentg, the harness and the Go SDK's conformance client"
	go build -o "$tmp/agentg" ./cmd/agentg
	go build -o "$tmp/authclient" ./test/conformance/authclient
	go build -o "$tmp/everything-client" github.com/modelcontextprotocol/go-sdk/conformance/everything-client
	node=$PWD/$CONFORMANCE_NODE
	suite=$PWD/$CONFORMANCE_SUITE
	reqs=$(dirname "$suite")/../requirements

	# auth_scenarios REVISION: the auth/* entries of the file's client list.
	auth_scenarios() {
		awk '/^[a-z_]+:/ { inclient = ($1 == "client:") } inclient && $1 == "-" && $2 ~ /^auth\// { print $2 }' "$reqs/$1.yaml"
	}

	runs=()
	for rev in 2025-11-25 2026-07-28; do
		for s in $(auth_scenarios "$rev"); do
			runs+=("$s $rev")
		done
	done
	# The client-credentials extension: not in the requirement lists, and not
	# on the spec timeline (--spec-version skips it): run with none.
	runs+=("auth/client-credentials-basic extension" "auth/client-credentials-jwt extension")

	# one CLIENT SCENARIO REV OUT: runs one scenario and says PASS or FAIL
	# (with why in OUT/why).
	one() {
		local client=$1 scenario=$2 rev=$3 out=$4
		mkdir -p "$out"
		local version=(--spec-version "$rev")
		if [ "$rev" = extension ]; then
			version=()
		fi
		if AGENTG_BIN="$tmp/agentg" AGENTG_HARNESS_DIR="$out/agentg" timeout 120 "$node" "$suite" client \
			--command "$client" --scenario "$scenario" "${version[@]}" -o "$out/results" >"$out/log" 2>&1; then
			result=PASS
			# A scenario the suite skipped (not applicable at the version)
			# exits 0 having judged nothing: not a pass.
			if grep -q '^SKIPPED' "$out/log"; then
				result=FAIL
				grep -h '^SKIPPED' "$out/log" >"$out/why"
			fi
		else
			result=FAIL
			grep -h -E 'FAILURE|Unknown scenario' "$out/log" | sed 's/\x1b\[[0-9;]*m//g' | head -3 >"$out/why" || true
		fi
		# agentg must never write a token or a secret value (the harness
		# checks its log and stderr; here the log once more, independently).
		if [ -e "$out/agentg/LEAKED" ] || grep -qE '(test-token|cc-token)-[A-Za-z0-9-]*[0-9]{6,}' "$out/agentg/agentg.log" 2>/dev/null; then
			result=FAIL
			echo "agentg wrote a token or secret value" >>"$out/why"
		fi
		echo "$result"
	}

	printf '\n%-42s %-11s %-7s %-10s\n' SCENARIO REVISION AGENTG "SDK DIRECT"
	passed=0
	failed=0
	whys=()
	i=0
	for r in "${runs[@]}"; do
		set -- $r
		i=$((i + 1))
		through=$(one "$tmp/authclient" "$1" "$2" "$tmp/a$i")
		direct=$(one "$tmp/everything-client" "$1" "$2" "$tmp/d$i")
		if [ "$direct" = FAIL ] && grep -q 'Unknown scenario' "$tmp/d$i/log"; then
			direct="n/a"
		fi
		printf '%-42s %-11s %-7s %-10s\n' "$1" "$2" "$through" "$direct"
		if [ "$through" = PASS ]; then
			passed=$((passed + 1))
		else
			failed=$((failed + 1))
			whys+=("$1 ($2) through agentg: $(tr '\n' ' ' <"$tmp/a$i/why" 2>/dev/null)")
		fi
	done
	echo
	echo "SDK DIRECT n/a: the Go SDK's conformance client does not implement the scenario (client credentials)."
	for w in "${whys[@]}"; do
		echo "failed: $w"
	done
	echo "$passed passed, $failed failed"
	[ "$failed" = 0 ]
}

run_gateway() {
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
}

case "$1" in
auth | gateway)
	install_conformance_suite || { echo "0 passed, 1 failed"; exit 1; }
	"run_$1"
	;;
*)
	usage
	;;
esac
