# Shared by scripts/test.sh and scripts/conformance.sh (sourced, from
# the repository's root): installing what the tests need.

# install_conformance installs the official MCP conformance suite (and
# the Node 22 it needs) from npm, pinned by
# test/conformance/package-lock.json, when it is missing. It returns
# non-zero (having said why) when it cannot: the tests that need it skip.
install_conformance() {
	if [ -e test/conformance/node_modules/@modelcontextprotocol/conformance/dist/index.js ]; then
		return 0
	fi
	if ! command -v npm >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "installing test dependencies: npm"
		apt-get update -qq >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
	fi
	if ! command -v npm >/dev/null 2>&1; then
		echo "missing npm: the MCP conformance suite cannot be installed" >&2
		return 1
	fi
	if ! npm ci --prefix test/conformance --no-audit --no-fund --loglevel=error >/dev/null; then
		echo "npm ci in test/conformance failed: the MCP conformance suite is not installed" >&2
		return 1
	fi
}
