// The TypeScript SDK's Streamable HTTP client against agentg's MCP gateway.
// Usage: gateway_client.mjs MCP_URL TOOL... It lists the tools (every
// page), then calls each TOOL with {"from": "ts"}, and prints one JSON line
// per step: {"step": ..., "result": ...} or {"step": ..., "error": {code,
// message, data}}. It exits 0 once every step has an outcome.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, ...tools] = process.argv.slice(2);
const client = new Client({ name: "ts-gateway-client", version: "1.0.0" });
const out = (o) => console.log(JSON.stringify(o));
const step = async (name, fn) => {
  try {
    out({ step: name, result: await fn() });
  } catch (e) {
    out({ step: name, error: { code: e.code ?? null, message: String(e.message ?? e), data: e.data ?? null } });
  }
};

setTimeout(() => {
  out({ step: "timeout" });
  process.exit(2);
}, 20000).unref();
const transport = new StreamableHTTPClientTransport(new URL(url));
await step("connect", async () => {
  await client.connect(transport);
  return client.getServerVersion();
});
await step("list", async () => {
  const names = [];
  let cursor;
  do {
    const page = await client.listTools(cursor ? { cursor } : {});
    names.push(...page.tools.map((t) => t.name));
    cursor = page.nextCursor;
  } while (cursor);
  return names;
});
for (const tool of tools) {
  await step("call " + tool, () => client.callTool({ name: tool, arguments: { from: "ts" } }));
}
await client.close();
process.exit(0);
