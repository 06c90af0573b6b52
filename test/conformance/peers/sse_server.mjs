// The TypeScript SDK's 2024-11-05 HTTP+SSE server transport
// (SSEServerTransport) on express, with a low-level MCP server that has the
// tools the agentg tests name: echo (answers its arguments as JSON text)
// and delete_project (which a test policy denies). GET /mcp/sse opens a
// session; its endpoint event names /mcp/messages?sessionId=..., where
// the transport answers each POST 202 with the text body "Accepted" and
// no Content-Type. Every tools/call it runs is printed as "ran NAME".
// Prints "listening 127.0.0.1:PORT" once it listens.
import express from "express";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { SSEServerTransport } from "@modelcontextprotocol/sdk/server/sse.js";
import { CallToolRequestSchema, ListToolsRequestSchema } from "@modelcontextprotocol/sdk/types.js";

const tools = [
  { name: "echo", description: "Echoes its arguments.", inputSchema: { type: "object" } },
  { name: "delete_project", description: "Deletes a project.", inputSchema: { type: "object" } },
];

function newServer() {
  const server = new Server({ name: "ts-sse-peer", version: "1.0.0" }, { capabilities: { tools: {} } });
  server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools }));
  server.setRequestHandler(CallToolRequestSchema, async (req) => {
    console.log(`ran ${req.params.name}`);
    return { content: [{ type: "text", text: JSON.stringify(req.params.arguments ?? {}) }] };
  });
  return server;
}

const transports = new Map();
const app = express();
app.get("/mcp/sse", async (req, res) => {
  const transport = new SSEServerTransport("/mcp/messages", res);
  transports.set(transport.sessionId, transport);
  res.on("close", () => transports.delete(transport.sessionId));
  await newServer().connect(transport);
});
app.post("/mcp/messages", async (req, res) => {
  const transport = transports.get(String(req.query.sessionId));
  if (!transport) {
    res.status(404).send("no such session");
    return;
  }
  await transport.handlePostMessage(req, res);
});
const server = app.listen(0, "127.0.0.1", () => {
  console.log(`listening 127.0.0.1:${server.address().port}`);
});
