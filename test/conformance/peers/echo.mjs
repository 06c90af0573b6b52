// A plain express.json() server: it answers every POST with what
// express.json() parsed from the body, as JSON. Tests use it to see how a
// lenient Node server reads a body agentg forwarded. Prints
// "listening 127.0.0.1:PORT" once it listens.
import express from "express";

const app = express();
app.use(express.json({ type: () => true, limit: "4mb" }));
app.post("*splat", (req, res) => {
  res.json({ parsed: req.body ?? null });
});
const server = app.listen(0, "127.0.0.1", () => {
  console.log(`listening 127.0.0.1:${server.address().port}`);
});
