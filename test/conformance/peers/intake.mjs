// An MCP server on the TypeScript SDK that counts its tool calls, for the
// intake tests (charsets, detection): the peer whose reading agentg must
// match. Three doors to one set of counters:
//   POST /mcp          express.json() (which decodes the body by its
//                      charset through iconv-lite), then a stateless
//                      StreamableHTTPServerTransport given the parsed body;
//   GET /sse, POST /messages  the SDK's SSEServerTransport (2024-11-05),
//                      which reads the body itself with raw-body, again by
//                      its charset;
//   GET /count         the calls so far, by tool, and the Content-Type of
//                      the last POST: {"delete":0,"echo":2,"type":"..."}.
// Tools: "delete" (the tests' policy denies it) and "echo". Prints
// "listening 127.0.0.1:PORT" once it listens.
import express from "express";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { SSEServerTransport } from "@modelcontextprotocol/sdk/server/sse.js";

const counts = { delete: 0, echo: 0 };

function newServer() {
  const server = new McpServer({ name: "intake-peer", version: "1.0.0" });
  for (const name of Object.keys(counts)) {
    server.registerTool(name, { description: name }, async () => {
      counts[name]++;
      return { content: [{ type: "text", text: name + " ran" }] };
    });
  }
  return server;
}

const app = express();
let lastType = null;
app.get("/count", (req, res) => res.json({ ...counts, type: lastType }));
app.use((req, res, next) => {
  if (req.method === "POST") lastType = req.headers["content-type"] ?? null;
  next();
});

app.post("/mcp", express.json({ type: () => true, limit: "4mb" }), async (req, res) => {
  const server = newServer();
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
  res.on("close", () => { transport.close(); server.close(); });
  await server.connect(transport);
  await transport.handleRequest(req, res, req.body);
});

const sessions = new Map();
app.get("/sse", async (req, res) => {
  const transport = new SSEServerTransport("/messages", res);
  sessions.set(transport.sessionId, transport);
  res.on("close", () => sessions.delete(transport.sessionId));
  await newServer().connect(transport);
});
app.post("/messages", async (req, res) => {
  const transport = sessions.get(req.query.sessionId);
  if (!transport) {
    res.status(404).end("no session");
    return;
  }
  await transport.handlePostMessage(req, res);
});

const server = app.listen(0, "127.0.0.1", () => {
  console.log(`listening 127.0.0.1:${server.address().port}`);
});
