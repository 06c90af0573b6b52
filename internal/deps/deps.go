// Package deps pins the modules the MCP work is being built on while its
// packages are written; it is removed once they import them directly.
package deps

import (
	_ "github.com/go-json-experiment/json/jsontext"
	_ "github.com/hashicorp/go-memdb"
	_ "github.com/modelcontextprotocol/go-sdk/mcp"
	_ "golang.org/x/time/rate"
)
