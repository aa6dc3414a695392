// The bench's peer (bench row 8): chatprep's job written as a competent Node
// team would write it first, with the usual libraries: bbc/sqs-consumer on
// the AWS SDK v3 (SQS's JSON protocol), Weaviate's GraphQL API for the
// searches and its REST batch endpoint for the store, the five calls of a
// user message at once with Promise.all. It is not chatprep and is not
// shipped: it is what chatprep is measured against.
//
//   node worker.js setup   create the peer's two collections (idempotent)
//   node worker.js         consume INPUT_QUEUE until SIGTERM/SIGINT
//
// Environment: AWS_ENDPOINT_URL, AWS_REGION and credentials, INPUT_QUEUE,
// DLQ_QUEUE, RESPONSE_QUEUE (names), WEAVIATE_URL, HEALTH_ADDR (host:port of
// /readyz and /debug/vars, which the bench harness reads), PEER_CONSUMERS
// (sqs-consumer instances, default 1).
import http from "node:http";
import os from "node:os";
import { readFileSync } from "node:fs";
import { Consumer } from "sqs-consumer";
import { SQSClient, GetQueueUrlCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import { v5 as uuidv5 } from "uuid";

const env = process.env;
const WEAVIATE = env.WEAVIATE_URL ?? "http://127.0.0.1:8080";
const HISTORY_LIMIT = 10;
const RELEVANCE_LIMIT = 5;
const NAMESPACE = "6f1c1f6e-8f7e-4a51-9d0c-2f7a4c3b9e10"; // object ids: uuid v5 of the event id
const schema = JSON.parse(readFileSync(new URL("./schema.json", import.meta.url)));
const [MESSAGES, STATE] = schema.classes.map((c) => c.class);
const WORKER = `${os.hostname()}/${process.pid}`;

const sqs = new SQSClient({ region: env.AWS_REGION ?? "us-east-1", endpoint: env.AWS_ENDPOINT_URL });

// --- Weaviate -------------------------------------------------------------

async function weaviate(method, path, body) {
  const res = await fetch(WEAVIATE + "/v1" + path, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`weaviate ${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

async function graphql(query) {
  const out = await weaviate("POST", "/graphql", { query });
  if (out.errors?.length) throw new Error("graphql: " + out.errors.map((e) => e.message).join("; "));
  return out.data.Get;
}

const q = JSON.stringify; // a JSON string is a GraphQL string

const whereChat = (chatId, ...more) =>
  `{operator: And, operands: [{path: ["chat_id"], operator: Equal, valueText: ${q(chatId)}}${more.map((m) => ", " + m).join("")}]}`;

async function history(chatId, role, before) {
  const get = await graphql(`{ Get { ${MESSAGES}(
      where: ${whereChat(chatId, `{path: ["role"], operator: Equal, valueText: ${q(role)}}`,
        `{path: ["sent_at"], operator: LessThan, valueDate: ${q(before)}}`)},
      sort: [{path: ["sent_at"], order: desc}], limit: ${HISTORY_LIMIT + 1}) { event_id role text sent_at } } }`);
  return get[MESSAGES];
}

async function relevant(chatId, text, before) {
  const words = text.replace(/[^\p{L}\p{N}]+/gu, " ").trim();
  if (!words) return [];
  const get = await graphql(`{ Get { ${MESSAGES}(
      bm25: {query: ${q(words)}, properties: ["text"]},
      where: ${whereChat(chatId, `{path: ["sent_at"], operator: LessThan, valueDate: ${q(before)}}`)},
      limit: ${RELEVANCE_LIMIT + 2 * HISTORY_LIMIT + 1}) { event_id role text sent_at _additional { score } } } }`);
  return get[MESSAGES];
}

async function muted(chatId, at) {
  const get = await graphql(`{ Get { ${STATE}(where: {path: ["chat_id"], operator: Equal, valueText: ${q(chatId)}}, limit: 1)
      { muted until } } }`);
  const s = get[STATE][0];
  return Boolean(s?.muted && (!s.until || new Date(s.until) > new Date(at)));
}

async function batch(objects) {
  const out = await weaviate("POST", "/batch/objects", { objects });
  for (const o of out) {
    if (o.result?.errors) throw new Error("store: " + JSON.stringify(o.result.errors));
  }
}

const store = (ev) =>
  batch([{
    class: MESSAGES,
    id: uuidv5(ev.event_id, NAMESPACE),
    properties: {
      chat_id: ev.chat_id, role: ev.role, event_id: ev.event_id, text: ev.text, sent_at: ev.sent_at,
      user_id: ev.user_id, channel: ev.channel,
    },
  }]);

const setMuted = (ev) =>
  batch([{
    class: STATE,
    id: uuidv5("state:" + ev.chat_id, NAMESPACE),
    properties: { chat_id: ev.chat_id, muted: ev.type === "mute", until: ev.until },
  }]);

// --- the job --------------------------------------------------------------

const ODOO = /\b(S\d{5}|INV\/\d{4}\/\d{5}|WH\/(OUT|IN)\/\d{5}|PO\d{5})\b|\b(orders?|quotations?|invoices?|deliver(y|ies)|stock|products?)\b/i;

function validate(body) {
  const ev = JSON.parse(body);
  ev.type ??= "message";
  ev.role ??= "user";
  if (typeof ev.event_id !== "string" || !/^[A-Za-z0-9._:-]{1,128}$/.test(ev.event_id)) throw new Error("bad event_id");
  if (typeof ev.chat_id !== "string" || !/^[A-Za-z0-9._:@+-]{1,128}$/.test(ev.chat_id)) throw new Error("bad chat_id");
  if (!["message", "mute", "unmute"].includes(ev.type)) throw new Error("bad type");
  if (ev.type === "message") {
    if (!["user", "assistant"].includes(ev.role)) throw new Error("bad role");
    if (typeof ev.text !== "string" || ev.text.length === 0) throw new Error("bad text");
    if (Number.isNaN(Date.parse(ev.sent_at))) throw new Error("bad sent_at");
  }
  return ev;
}

let finished = 0;

async function handle(message, urls) {
  const started = performance.now();
  let ev;
  try {
    ev = validate(message.Body);
  } catch (err) {
    await sqs.send(new SendMessageCommand({
      QueueUrl: urls.dlq, MessageBody: message.Body, MessageGroupId: "invalid", MessageDeduplicationId: message.MessageId,
      MessageAttributes: { error: { DataType: "String", StringValue: err.message } },
    }));
    return;
  }
  if (ev.type !== "message") return setMuted(ev);
  if (ev.role === "assistant") return store(ev);

  const timed = async (name, timings, p) => {
    const t0 = performance.now();
    try {
      return await p;
    } finally {
      timings[name] = performance.now() - t0;
    }
  };
  const timings = {};
  const degraded = [];
  const soft = (task, p) => p.catch((err) => { degraded.push({ task, error: err.message }); return []; });
  const [users, assistants, hits, isMuted] = await Promise.all([
    soft("message_history", timed("user_history", timings, history(ev.chat_id, "user", ev.sent_at))),
    soft("message_history", timed("assistant_history", timings, history(ev.chat_id, "assistant", ev.sent_at))),
    soft("relevance_search", timed("relevance_search", timings, relevant(ev.chat_id, ev.text, ev.sent_at))),
    soft("muted_status", timed("muted_status", timings, muted(ev.chat_id, ev.sent_at))).then((m) => m === true),
    timed("store", timings, store(ev)),
  ]);
  const pick = (m) => ({ event_id: m.event_id, role: m.role, text: m.text, sent_at: m.sent_at });
  const notThis = (ms) => ms.filter((m) => m.event_id !== ev.event_id).slice(0, HISTORY_LIMIT); // it may be stored already
  const hist = isMuted ? [] : [...notThis(users), ...notThis(assistants)]
    .sort((a, b) => Date.parse(a.sent_at) - Date.parse(b.sent_at))
    .map(pick);
  const seen = new Set([ev.event_id, ...hist.map((m) => m.event_id)]);
  const rel = isMuted ? [] : hits.filter((m) => !seen.has(m.event_id)).slice(0, RELEVANCE_LIMIT)
    .map((m) => ({ ...pick(m), score: Number(m._additional.score) }));
  const route = ev.route_hint || (ODOO.test(ev.text) ? "odoo_erp" : "general");
  const total = performance.now() - started;
  const result = {
    event_id: ev.event_id, chat_id: ev.chat_id, route, muted: isMuted, history: hist, relevant: rel, degraded,
    timings_ms: {
      message_history: Math.max(timings.user_history ?? 0, timings.assistant_history ?? 0),
      relevance_search: timings.relevance_search ?? 0, muted_status: timings.muted_status ?? 0,
      preprocessing: total, total,
    },
    worker: WORKER, processed_at: new Date().toISOString(),
  };
  await sqs.send(new SendMessageCommand({
    QueueUrl: urls.response, MessageBody: JSON.stringify(result),
    MessageGroupId: ev.chat_id, MessageDeduplicationId: ev.event_id,
    MessageAttributes: {
      event_id: { DataType: "String", StringValue: ev.event_id },
      chat_id: { DataType: "String", StringValue: ev.chat_id },
      route: { DataType: "String", StringValue: route },
    },
  }));
  console.log(JSON.stringify({ level: "info", event_id: ev.event_id, chat_id: ev.chat_id, route, muted: isMuted,
    degraded: degraded.length, duration_ms: total, timings_ms: result.timings_ms, message: "message preprocessed" }));
}

// A batch from a FIFO queue may hold several messages of one chat: those run
// one after another, in order; the chats run at once.
async function handleBatch(messages, urls) {
  const groups = new Map();
  for (const m of messages) {
    const g = m.Attributes?.MessageGroupId ?? m.MessageId;
    if (!groups.has(g)) groups.set(g, []);
    groups.get(g).push(m);
  }
  const done = [];
  await Promise.all([...groups.values()].map(async (group) => {
    for (const m of group) {
      try {
        await handle(m, urls);
        done.push(m);
      } catch (err) {
        console.log(JSON.stringify({ level: "error", message_id: m.MessageId, error: err.message, message: "message failed" }));
        return; // the rest of the chat waits for this one's redelivery
      }
    }
  }));
  return done; // deleted by sqs-consumer (DeleteMessageBatch) after the results were sent
}

// --- setup and run ----------------------------------------------------------

async function setup() {
  for (const c of schema.classes) {
    const res = await fetch(`${WEAVIATE}/v1/schema/${c.class}`);
    if (res.status === 200) continue;
    await weaviate("POST", "/schema", c);
  }
}

const queueUrl = async (name) => (await sqs.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl;

async function run() {
  const urls = {
    input: await queueUrl(env.INPUT_QUEUE ?? "chat-events.fifo"),
    dlq: await queueUrl(env.DLQ_QUEUE ?? "chat-events-dlq.fifo"),
    response: await queueUrl(env.RESPONSE_QUEUE ?? "chat-context.fifo"),
  };
  const consumers = Array.from({ length: Number(env.PEER_CONSUMERS ?? 1) }, () => Consumer.create({
    queueUrl: urls.input, sqs, batchSize: 10, waitTimeSeconds: 20, visibilityTimeout: 30,
    attributeNames: ["MessageGroupId"], messageAttributeNames: ["All"], suppressFifoWarning: true,
    handleMessageBatch: (messages) => handleBatch(messages, urls),
  }));
  for (const c of consumers) {
    c.on("message_processed", () => finished++); // deleted
    c.on("error", (err) => console.log(JSON.stringify({ level: "error", error: err.message, message: "sqs-consumer" })));
    c.start();
  }
  const [host, port] = (env.HEALTH_ADDR ?? "127.0.0.1:8081").split(":");
  const server = http.createServer((req, res) => {
    res.setHeader("content-type", "application/json");
    if (req.url === "/debug/vars") return res.end(JSON.stringify({ consumer: { finished } }));
    res.end(JSON.stringify({ status: "ready" })); // /readyz, /healthz
  }).listen(Number(port), host);
  const stop = () => {
    Promise.all(consumers.map((c) => new Promise((resolve) => {
      c.once("stopped", resolve);
      c.stop({ abort: true });
    }))).then(() => server.close(() => process.exit(0)));
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}

(process.argv[2] === "setup" ? setup() : run()).catch((err) => {
  console.error(err);
  process.exit(1);
});
