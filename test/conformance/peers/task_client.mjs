// The TypeScript SDK's client (its experimental task API) against
// agentg's MCP gateway. Usage: task_client.mjs MCP_URL TOOL. It calls
// TOOL as a task (callToolStream with an explicit task), which polls
// tasks/get and fetches tasks/result itself, then lists its tasks. It
// prints one JSON line per step: {"step": ..., "result": ...} or
// {"step": ..., "error": {code, message}}, and exits 0 once every step
// has an outcome.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, tool] = process.argv.slice(2);
const out = (o) => console.log(JSON.stringify(o));
setTimeout(() => {
  out({ step: "timeout" });
  process.exit(2);
}, 20000).unref();

const client = new Client({ name: "ts-task-client", version: "1.0.0" });
try {
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  out({ step: "connect", result: client.getServerCapabilities() });
} catch (e) {
  out({ step: "connect", error: { code: e.code ?? null, message: String(e.message ?? e) } });
  process.exit(0);
}
const messages = [];
try {
  const stream = client.experimental.tasks.callToolStream({ name: tool, arguments: { ms: 200, msg: "ts" } }, undefined, { task: { ttl: 60000 } });
  for await (const m of stream) {
    messages.push(m.type === "error" ? { type: "error", error: String(m.error?.message ?? m.error) } : m);
  }
  out({ step: "stream", result: messages });
} catch (e) {
  out({ step: "stream", error: { code: e.code ?? null, message: String(e.message ?? e) } });
}
try {
  out({ step: "list", result: await client.experimental.tasks.listTasks() });
} catch (e) {
  out({ step: "list", error: { code: e.code ?? null, message: String(e.message ?? e) } });
}
await client.close();
process.exit(0);
