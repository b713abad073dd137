// Requests across failures, against the fake server: what happens to a write
// when the connection drops, a token expires, or no reply comes.

import { test } from "node:test";
import assert from "node:assert/strict";
import { WebSocket } from "ws";
import { ConnectionError, TimeoutError, WsbindError, connect, type ConnectionState } from "../src/index.js";
import { FakeServer } from "./fakeserver.js";

const quick = { WebSocket, timeoutMs: 2000, backoff: { baseMs: 20, maxMs: 100 } };

test("a write unanswered when the connection drops is resent, with the same request_id and idempotency key", async (t) => {
  const server = await FakeServer.start((conn, f) => {
    if (conn.index === 0) conn.drop(); // received, never answered
    else conn.reply(f, { id: "n1", text: f.payload.data.text }, { status: 201, extra: { version: 1 } });
  });
  const states: ConnectionState[] = [];
  const c = connect(server.url, { ...quick, onState: (s) => states.push(s) });
  t.after(async () => {
    c.close();
    await server.close();
  });
  const r = await c.stream("notes").create({ text: "once" });
  assert.equal(r.status, 201);
  assert.equal(r.pk, "n1");
  assert.equal(r.version, 1);
  const creates = server.received("create");
  assert.equal(creates.length, 2);
  assert.equal(creates[0]!.payload.idempotency_key, creates[1]!.payload.idempotency_key);
  assert.equal(creates[0]!.payload.request_id, creates[1]!.payload.request_id);
  assert.equal(r.idempotencyKey, creates[0]!.payload.idempotency_key);
  assert.equal(c.stats.resent, 1);
  assert.deepEqual(states.slice(0, 5), ["connecting", "open", "reconnecting", "connecting", "open"]);
});

test("a 409 'in progress' is asked again until the first send of the key answers", async (t) => {
  let tries = 0;
  const server = await FakeServer.start((conn, f) => {
    if (++tries < 3) conn.fail(f, 409, ["A request with this idempotency_key is in progress; try again."]);
    else conn.reply(f, { id: "x", text: "t" }, { extra: { version: 2 } });
  });
  const c = connect(server.url, quick);
  t.after(async () => {
    c.close();
    await server.close();
  });
  const r = await c.stream("notes").patch("x", { text: "t" }, { idempotencyKey: "k-1" });
  assert.equal(r.version, 2);
  assert.deepEqual(server.received("patch").map((f) => f.payload.idempotency_key), ["k-1", "k-1", "k-1"]);
});

test("a version conflict (409) is the app's to handle: WsbindError, not retried", async (t) => {
  const server = await FakeServer.start((conn, f) => {
    assert.equal(f.payload.if_version, 3);
    conn.fail(f, 409, ["Version conflict: the object is at version 4."]);
  });
  const c = connect(server.url, quick);
  t.after(async () => {
    c.close();
    await server.close();
  });
  await assert.rejects(c.stream("notes").update("x", { text: "t" }, { ifVersion: 3 }), (e: unknown) => {
    assert.ok(e instanceof WsbindError);
    assert.equal(e.status, 409);
    assert.deepEqual(e.errors, ["Version conflict: the object is at version 4."]);
    return true;
  });
  assert.equal(server.received("update").length, 1);
});

test("no reply: TimeoutError, carrying the idempotency key to retry with", async (t) => {
  const server = await FakeServer.start(() => {});
  const c = connect(server.url, quick);
  t.after(async () => {
    c.close();
    await server.close();
  });
  const err = await c
    .stream("notes")
    .create({ text: "lost" }, { timeoutMs: 150 })
    .then(
      () => assert.fail("answered"),
      (e: unknown) => e,
    );
  assert.ok(err instanceof TimeoutError);
  assert.ok(err instanceof ConnectionError);
  assert.equal(err.timeoutMs, 150);
  assert.equal(err.action, "create");
  assert.equal(err.idempotencyKey, server.received("create")[0]!.payload.idempotency_key);
});

test("'Token expired': reconnects, asking the token hook for a fresh token, and resends", async (t) => {
  const server = await FakeServer.start((conn, f) => {
    if (conn.token === "old") conn.fail(f, 401, ["Token expired"]);
    else conn.reply(f, { id: "x", text: "fresh" }, { extra: { version: 1 } });
  });
  const tokens = ["old", "new"];
  let calls = 0;
  const c = connect(server.url, { ...quick, token: async () => tokens[Math.min(calls++, 1)] });
  t.after(async () => {
    c.close();
    await server.close();
  });
  const r = await c.stream("notes").retrieve("x");
  assert.equal(r.data["text"], "fresh");
  assert.equal(calls, 2);
  assert.deepEqual(server.conns.map((x) => x.token), ["old", "new"]);
});

test("a token the hook cannot renew fails the request after one reconnect; a fixed token, at once", async (t) => {
  const server = await FakeServer.start((conn, f) => conn.fail(f, 401, ["Token expired"]));
  const hooked = connect(server.url, { ...quick, token: () => "old" });
  const fixed = connect(server.url, { ...quick, token: "old" });
  t.after(async () => {
    hooked.close();
    fixed.close();
    await server.close();
  });
  const expired = (e: unknown) => e instanceof WsbindError && e.status === 401 && e.messages[0] === "Token expired";
  await assert.rejects(fixed.stream("notes").retrieve("x"), expired);
  await assert.rejects(hooked.stream("notes").retrieve("x"), expired);
  assert.equal(fixed.stats.connects, 1);
  assert.equal(hooked.stats.connects, 2);
  assert.equal(server.conns.length, 3);
});

test("close(): waiting requests fail with ConnectionError; the subscription ends", async (t) => {
  const server = await FakeServer.start((conn, f) => {
    if (f.payload.action === "subscribe") conn.reply(f, { action: "create" });
  });
  const c = connect(server.url, quick);
  t.after(() => server.close());
  const sub = c.stream("notes").subscribe({ action: "create" });
  await sub.ready;
  const next = sub[Symbol.asyncIterator]().next();
  const pending = c.stream("notes").retrieve("x");
  await server.until(() => server.received("retrieve").length === 1, "the retrieve");
  c.close();
  await assert.rejects(pending, (e: unknown) => e instanceof ConnectionError && !(e instanceof TimeoutError));
  assert.deepEqual(await next, { value: undefined, done: true });
  assert.equal(c.state, "closed");
  await assert.rejects(c.stream("notes").retrieve("y"), ConnectionError);
});

test("requests made before the connection opens wait for it; API Gateway's own messages go to onGatewayMessage", async (t) => {
  const server = await FakeServer.start((conn, f) => {
    conn.send({ message: "Internal server error", connectionId: "c", requestId: "r" });
    conn.reply(f, [], { extra: { cursor: "L" } });
  });
  const gateway: unknown[] = [];
  const c = connect(server.url, { ...quick, onGatewayMessage: (m) => gateway.push(m) });
  t.after(async () => {
    c.close();
    await server.close();
  });
  const page = await c.stream("notes").list();
  assert.deepEqual(page.data, []);
  assert.equal(page.cursor, "L");
  assert.deepEqual(gateway, [{ message: "Internal server error", connectionId: "c", requestId: "r" }]);
});

test("the server unreachable: the client keeps retrying with backoff, and a request times out", async (t) => {
  const server = await FakeServer.start();
  const url = server.url;
  await server.close();
  const delays: number[] = [];
  const c = connect(url, { ...quick, backoff: { baseMs: 10, maxMs: 40 }, onState: (s, i) => s === "reconnecting" && delays.push(i.delayMs!) });
  t.after(() => c.close());
  await assert.rejects(c.stream("notes").retrieve("x", { timeoutMs: 300 }), TimeoutError);
  assert.ok(delays.length >= 3, `retried ${delays.length} times`);
  assert.ok(delays.every((d) => d >= 0 && d <= 40), `delays within the cap: ${delays}`);
});
