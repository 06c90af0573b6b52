// The TypeScript SDK's McpServer with 2025-11-25 tasks (its experimental
// task API and InMemoryTaskStore) over Streamable HTTP with sessions, for
// the gateway's task tests. Tools: "slow" (task support required) creates
// a task, sends notifications/tasks/status for it on the call's stream,
// and completes it after arguments.ms milliseconds (default 300) with the
// text "done " + the arguments as JSON; "ask" creates a task that needs
// input (input_required) and asks for it with an elicitation the client
// receives during tasks/result, and completes with "answer " + what the
// client answered; "echo" is a plain tool. Its tasks are shared by every
// session (SharedTaskStore). Every
// tools/call it runs is printed as "ran NAME". Serves /mcp; prints
// "listening 127.0.0.1:PORT" once it listens.
import { randomUUID } from "node:crypto";
import express from "express";
import * as z from "zod/v4";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { InMemoryTaskStore, InMemoryTaskMessageQueue } from "@modelcontextprotocol/sdk/experimental/tasks/stores/in-memory.js";
import { ElicitResultSchema, isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";

// Its tasks are bound to no session (as a server that cannot tell its
// requestors apart): any session may read any task it can name, so what
// keeps one client from another's tasks behind the gateway is the
// gateway.
class SharedTaskStore extends InMemoryTaskStore {
  createTask(p, requestId, request) { return super.createTask(p, requestId, request, undefined); }
  getTask(id) { return super.getTask(id, undefined); }
  storeTaskResult(id, status, result) { return super.storeTaskResult(id, status, result, undefined); }
  getTaskResult(id) { return super.getTaskResult(id, undefined); }
  updateTaskStatus(id, status, msg) { return super.updateTaskStatus(id, status, msg, undefined); }
  listTasks(cursor) { return super.listTasks(cursor, undefined); }
}
const taskStore = new SharedTaskStore();

function newServer() {
  const server = new McpServer(
    { name: "ts-task-peer", version: "1.0.0" },
    {
      capabilities: { tasks: { list: {}, cancel: {}, requests: { tools: { call: {} } } } },
      taskStore,
      taskMessageQueue: new InMemoryTaskMessageQueue(),
    },
  );
  server.registerTool("echo", { description: "Echoes its arguments.", inputSchema: { msg: z.string().optional() } }, async (args) => {
    console.log("ran echo");
    return { content: [{ type: "text", text: JSON.stringify(args) }] };
  });
  server.experimental.tasks.registerToolTask(
    "slow",
    {
      description: "Completes a task after ms milliseconds.",
      inputSchema: { ms: z.number().optional(), msg: z.string().optional() },
      execution: { taskSupport: "required" },
    },
    {
      async createTask(args, extra) {
        console.log("ran slow");
        const task = await extra.taskStore.createTask({ ttl: extra.taskRequestedTtl ?? 60000, pollInterval: 50 });
        await extra.sendNotification({ method: "notifications/tasks/status", params: task });
        setTimeout(async () => {
          try {
            await extra.taskStore.storeTaskResult(task.taskId, "completed", {
              content: [{ type: "text", text: "done " + JSON.stringify(args) }],
            });
          } catch {
            // cancelled meanwhile: it stays cancelled
          }
        }, args.ms ?? 300);
        return { task };
      },
      async getTask(_args, extra) {
        return await extra.taskStore.getTask(extra.taskId);
      },
      async getTaskResult(_args, extra) {
        return await extra.taskStore.getTaskResult(extra.taskId);
      },
    },
  );
  server.experimental.tasks.registerToolTask(
    "ask",
    { description: "A task that needs the user's name: input_required, an elicitation delivered during tasks/result." },
    {
      async createTask(extra) {
        console.log("ran ask");
        const task = await extra.taskStore.createTask({ ttl: 60000, pollInterval: 50 });
        (async () => {
          await taskStore.updateTaskStatus(task.taskId, "input_required");
          const r = await server.server.request(
            {
              method: "elicitation/create",
              params: {
                message: "Your name?",
                requestedSchema: { type: "object", properties: { name: { type: "string" } }, required: ["name"] },
              },
            },
            ElicitResultSchema,
            { relatedTask: { taskId: task.taskId } },
          );
          await taskStore.storeTaskResult(task.taskId, "completed", {
            content: [{ type: "text", text: "answer " + JSON.stringify(r.content ?? r.action) }],
          });
        })().catch((e) => console.log("ask failed: " + e));
        return { task };
      },
      async getTask(extra) {
        return await extra.taskStore.getTask(extra.taskId);
      },
      async getTaskResult(extra) {
        return await extra.taskStore.getTaskResult(extra.taskId);
      },
    },
  );
  return server;
}

const transports = new Map();
const app = express();
app.use(express.json());
app.post("/mcp", async (req, res) => {
  const sid = req.headers["mcp-session-id"];
  let transport = sid ? transports.get(sid) : undefined;
  if (!transport) {
    if (sid || !isInitializeRequest(req.body)) {
      res.status(sid ? 404 : 400).json({ jsonrpc: "2.0", error: { code: -32000, message: "no session" }, id: null });
      return;
    }
    transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => transports.set(id, transport),
    });
    transport.onclose = () => transports.delete(transport.sessionId);
    await newServer().connect(transport);
  }
  await transport.handleRequest(req, res, req.body);
});
const other = async (req, res) => {
  const transport = transports.get(req.headers["mcp-session-id"]);
  if (!transport) {
    res.status(404).send("no session");
    return;
  }
  await transport.handleRequest(req, res);
};
app.get("/mcp", other);
app.delete("/mcp", other);
const server = app.listen(0, "127.0.0.1", () => {
  console.log(`listening 127.0.0.1:${server.address().port}`);
});
