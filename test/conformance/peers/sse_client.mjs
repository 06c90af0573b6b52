// The TypeScript SDK's 2024-11-05 HTTP+SSE client (SSEClientTransport),
// through an HTTP proxy (undici's ProxyAgent, for the GET stream and every
// POST). Usage: sse_client.mjs SSE_URL PROXY_URL. It lists the tools, calls
// echo, then delete_project, then echo again, and prints one JSON line per
// step: {"step": ..., "result": ...} or {"step": ..., "error": {code,
// message, data}}. It exits 0 once every step has an outcome.
import { ProxyAgent, fetch as undiciFetch } from "undici";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";

const [url, proxy] = process.argv.slice(2);
const dispatcher = new ProxyAgent(proxy);
const proxiedFetch = (input, init) => undiciFetch(input, { ...init, dispatcher });

const transport = new SSEClientTransport(new URL(url), {
  fetch: proxiedFetch,
  eventSourceInit: { fetch: proxiedFetch },
});
const client = new Client({ name: "ts-sse-client", version: "1.0.0" });
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
await step("connect", async () => {
  await client.connect(transport);
  return client.getServerVersion();
});
await step("list", () => client.listTools());
await step("echo", () => client.callTool({ name: "echo", arguments: { from: "ts" } }));
await step("delete", () => client.callTool({ name: "delete_project", arguments: { project: "p" } }));
await step("echo2", () => client.callTool({ name: "echo", arguments: { n: 2 } }));
await client.close();
process.exit(0);
