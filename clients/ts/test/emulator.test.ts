// The client against the real emulator, with the repository's bindings:
// `questions` (anonymous allowed; publish, unpublish, report) and `notes`
// (a token needed; each user sees their own).
//
// Two emulators: `stable` with API Gateway's limits, and `cutting`, which
// ends every connection after 3 s (and idle ones after 2 s) for the
// reconnection tests. The tests run concurrently, each on objects of its own.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { WebSocket } from "ws";
import {
  ConnectionError,
  WsbindError,
  connect,
  type Client,
  type ConnectOptions,
  type ConnectionState,
  type SubscriptionEvent,
  type WebSocketConstructor,
} from "../src/index.js";
import { Emulator, cleanupBinary, repoRoot } from "./emulator.js";

interface Question {
  id: string;
  question_text: string;
  pub_date: string;
  published: boolean;
}
interface Note {
  id: string;
  owner: string;
  text: string;
  pinned: boolean;
}
interface Streams {
  questions: Question;
  notes: Note;
}

let stable: Emulator;
let cutting: Emulator;
const clients: Client<Streams>[] = [];

function open(emu: Emulator, opts: ConnectOptions = {}): Client<Streams> {
  const c = connect<Streams>(emu.url, { WebSocket, timeoutMs: 5000, backoff: { baseMs: 50, maxMs: 500 }, ...opts });
  clients.push(c);
  return c;
}

const unique = (what: string) => `${what} ${Date.now()} ${Math.random().toString(36).slice(2, 8)}`;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A JWT's exp, in milliseconds. */
function expiry(token: string): number {
  const claims = JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString()) as { exp: number };
  return claims.exp * 1000;
}

async function eventually(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

before(async () => {
  stable = await Emulator.start();
  // The guests are built now: the second emulator serves the same ones.
  cutting = await Emulator.start(["-guests", join(repoRoot, "build", "local"), "-idle", "2s", "-lifetime", "3s"]);
});

after(async () => {
  for (const c of clients) c.close();
  await Promise.all([stable?.stop(), cutting?.stop()]);
  await cleanupBinary();
});

describe("against the emulator", { concurrency: true }, () => {
  test("CRUD: create, retrieve, update, patch, delete, each with the object's version", async () => {
    const q = open(stable).stream("questions");
    const created = await q.create({ question_text: "  Why?  " });
    assert.ok(!created.truncated);
    assert.equal(created.status, 201);
    assert.equal(created.version, 1);
    assert.equal(created.data.question_text, "Why?"); // trimmed, as DRF does
    assert.equal(created.data.published, false);
    const pk = created.data.id;
    assert.equal(created.pk, pk);

    const got = await q.retrieve(pk);
    assert.deepEqual(got.data, created.data);
    assert.equal(got.version, 1);

    const updated = await q.update(pk, { question_text: "How?" });
    assert.ok(!updated.truncated);
    assert.equal(updated.data.question_text, "How?");
    assert.equal(updated.version, 2);

    // published is read-only (publish sets it): ignored, as DRF ignores it.
    const patched = await q.patch(pk, { question_text: "What?", published: true });
    assert.ok(!patched.truncated);
    assert.equal(patched.data.question_text, "What?");
    assert.equal(patched.data.published, false);
    assert.equal(patched.version, 3);

    const deleted = await q.delete(pk);
    assert.deepEqual(deleted.data, {});
    assert.equal(deleted.version, 4);
    await assert.rejects(q.retrieve(pk), (e: unknown) => e instanceof WsbindError && e.status === 404);
  });

  test("list: pages in pk order, listAll, and 404 'Invalid page.' past the last", async () => {
    const c = open(stable, { token: await stable.token("lister") });
    const notes = c.stream("notes");
    const made: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await notes.create({ text: `note ${i}` });
      made.push(r.pk!);
    }
    const page = await notes.list();
    assert.equal(page.page, 1);
    assert.deepEqual(page.data.map((n) => n.id), made);
    assert.ok(page.data.every((n) => n.owner === "lister"));
    assert.ok(page.cursor === null || typeof page.cursor === "string");
    const all = await notes.listAll();
    assert.deepEqual(all.data.map((n) => n.id), made);
    await assert.rejects(notes.list({ page: 2 }), (e: unknown) => {
      assert.ok(e instanceof WsbindError);
      assert.equal(e.status, 404);
      assert.deepEqual(e.errors, ["Invalid page."]);
      return true;
    });
  });

  test("custom actions: publish (a detail action) and report (a list action)", async () => {
    const q = open(stable).stream("questions");
    const r = await q.create({ question_text: unique("publish me") });
    const published = await q.action<Question>("publish", { pk: r.pk! });
    assert.ok(!published.truncated);
    assert.equal(published.data.published, true);
    assert.equal(published.version, 2);
    const report = await q.action<{ count: number; published: number }>("report");
    assert.ok(!report.truncated);
    assert.ok(report.data.count >= 1 && report.data.published >= 1, JSON.stringify(report.data));
    await assert.rejects(q.action("publish", { pk: "no-such-question" }), (e: unknown) => e instanceof WsbindError && e.status === 404);
  });

  test("errors are typed: DRF field errors, Permission Denied, Invalid Stream, Invalid Action", async () => {
    const c = open(stable);
    await assert.rejects(c.stream("questions").create({}), (e: unknown) => {
      assert.ok(e instanceof WsbindError);
      assert.equal(e.status, 400);
      assert.deepEqual(e.errors, { question_text: ["This field is required."] });
      assert.deepEqual(e.fieldErrors, { question_text: ["This field is required."] });
      assert.deepEqual(e.messages, ["question_text: This field is required."]);
      assert.equal(e.stream, "questions");
      assert.equal(e.action, "create");
      return true;
    });
    await assert.rejects(c.stream("notes").list(), (e: unknown) => {
      assert.ok(e instanceof WsbindError);
      assert.equal(e.status, 401);
      assert.deepEqual(e.errors, ["Permission Denied"]);
      return true;
    });
    const untyped = c as unknown as Client;
    await assert.rejects(untyped.stream("nope").list(), (e: unknown) => e instanceof WsbindError && e.status === 400 && e.messages[0] === "Invalid Stream");
    await assert.rejects(c.stream("questions").action("nope"), (e: unknown) => e instanceof WsbindError && e.status === 400 && e.messages[0] === "Invalid Action");
  });

  test("if_version: a write at a stale version is a 409 and changes nothing", async () => {
    const q = open(stable).stream("questions");
    const r = await q.create({ question_text: "v1" });
    const pk = r.pk!;
    await q.patch(pk, { question_text: "v2" }, { ifVersion: 1 });
    await assert.rejects(q.update(pk, { question_text: "stale" }, { ifVersion: 1 }), (e: unknown) => {
      assert.ok(e instanceof WsbindError);
      assert.equal(e.status, 409);
      assert.deepEqual(e.errors, ["Version conflict: the object is at version 2."]);
      return true;
    });
    await assert.rejects(q.delete(pk, { ifVersion: 5 }), (e: unknown) => e instanceof WsbindError && e.status === 409);
    const now = await q.retrieve(pk);
    assert.equal(now.data.question_text, "v2");
    assert.equal(now.version, 2);
  });

  test("idempotency: a repeated key runs once; a write whose reply a drop lost is resent and runs once", async () => {
    // Drop the connection right after the second create is written to the socket:
    // the server has it, its reply is lost.
    let creates = 0;
    class Dropping extends WebSocket {
      override send(data: any, ...rest: any[]): void {
        if (typeof data === "string" && data.includes('"action":"create"') && ++creates === 2) {
          super.send(data, () => this.terminate());
          return;
        }
        (super.send as (...a: unknown[]) => void)(data, ...rest);
      }
    }
    const user = `idem-${Date.now()}`;
    const token = await stable.token(user);
    const c = open(stable, { WebSocket: Dropping as unknown as WebSocketConstructor, token: () => token });
    const notes = c.stream("notes");

    const first = await notes.create({ text: "once" }, { idempotencyKey: `${user}-k1` });
    const again = await notes.create({ text: "once" }, { idempotencyKey: `${user}-k1` });
    assert.equal(again.pk, first.pk);

    const text = unique("dropped");
    const r = await notes.create({ text });
    assert.equal(r.status, 201);
    assert.equal(c.stats.resent, 1);
    assert.equal(c.stats.connects, 2);
    const mine = (await notes.listAll()).data;
    assert.deepEqual(mine.filter((n) => n.text === text).map((n) => n.id), [r.pk]);
    assert.equal(mine.filter((n) => n.text === "once").length, 1);
  });

  test("subscribe: live pushes for matching changes; unsubscribe stops them", async () => {
    const c = open(stable);
    const writer = open(stable).stream("questions");
    const text = unique("watched");
    const events: SubscriptionEvent<Question>[] = [];
    const sub = c.stream("questions").subscribe({ action: ["create", "update"], filter: { question_text: text } });
    await sub.ready;
    const collect = (async () => {
      for await (const e of sub) events.push(e);
    })();
    const r = await writer.create({ question_text: text });
    await writer.create({ question_text: unique("not watched") });
    await writer.action("publish", { pk: r.pk! });
    await eventually(() => events.length === 2, "two pushes");
    const [created, updated] = events;
    assert.ok(created && !created.gap && !created.truncated);
    assert.equal(created.action, "create");
    assert.equal(created.pk, r.pk);
    assert.equal(created.version, 1);
    assert.equal(created.data.question_text, text);
    assert.equal(created.model, "polls.question");
    assert.equal(created.replay, false);
    assert.ok(updated && !updated.gap);
    assert.equal(updated.action, "update");
    assert.equal(updated.version, 2);
    assert.ok(!updated.truncated && updated.data.published);

    await sub.unsubscribe();
    await collect; // the iteration ended
    await writer.action("unpublish", { pk: r.pk! });
    await sleep(300);
    assert.equal(events.length, 2);
  });

  test("a token about to expire is refreshed through the hook before it does: pushes keep coming", async () => {
    const user = `refresh-${Date.now()}`;
    const short = await stable.token(user, "3s");
    const long = await stable.token(user, "1h");
    let calls = 0;
    const states: ConnectionState[] = [];
    const c = open(stable, { token: () => (calls++ === 0 ? short : long), onState: (s) => states.push(s) });
    const writer = open(stable, { token: long }).stream("notes");
    const events: SubscriptionEvent<Note>[] = [];
    const sub = c.stream("notes").subscribe({ action: "create", onEvent: (e) => events.push(e) });
    await sub.ready;
    await sleep(expiry(short) + 300 - Date.now()); // past the first token's exp
    const r = await writer.create({ text: "after exp" });
    await eventually(() => events.some((e) => !e.gap && e.pk === r.pk), "the push after exp");
    assert.equal(calls, 2);
    assert.equal(states.filter((s) => s === "open").length, 2);
    const created = await c.stream("notes").create({ text: "still served" });
    assert.equal(created.status, 201);
  });

  test("a token that cannot be refreshed: requests after its exp fail with 401 Token expired", async () => {
    // exp has one-second resolution: 2s is between 1 and 2 seconds away.
    const token = await stable.token(`expired-${Date.now()}`, "2s");
    const c = open(stable, { token });
    await c.stream("notes").list();
    await sleep(expiry(token) + 100 - Date.now());
    await assert.rejects(c.stream("notes").list(), (e: unknown) => {
      assert.ok(e instanceof WsbindError);
      assert.equal(e.status, 401);
      assert.deepEqual(e.errors, ["Token expired"]);
      return true;
    });
  });

  test("snapshot: every object of the user, then the changes that follow", async () => {
    const user = `snap-${Date.now()}`;
    const token = await stable.token(user);
    const writer = open(stable, { token }).stream("notes");
    const a = await writer.create({ text: "a" });
    const b = await writer.create({ text: "b" });
    const snap = await open(stable, { token }).stream("notes").snapshot();
    assert.deepEqual([...snap.objects.keys()].sort(), [a.pk, b.pk].sort());
    const c = await writer.create({ text: "c" });
    await writer.patch(a.pk!, { text: "a2" });
    await writer.delete(b.pk!);
    await eventually(() => snap.objects.size === 2 && snap.objects.get(a.pk!)?.text === "a2", "the changes");
    assert.deepEqual([...snap.objects.keys()].sort(), [a.pk, c.pk].sort());
    await snap.close();
  });

  test("the emulator's lifetime cut: reconnects with the hook's token, resubscribes, no duplicates, every write once", async () => {
    const user = `cut-${Date.now()}`;
    const token = await cutting.token(user);
    let calls = 0;
    const opens: number[] = [];
    const reader = open(cutting, {
      token: () => {
        calls++;
        return token;
      },
      onState: (s) => s === "open" && opens.push(Date.now()),
    });
    const writer = open(cutting, { token: () => token }).stream("notes");
    const created = await writer.create({ text: "0" });
    const pk = created.pk!;

    const events: Array<{ event: SubscriptionEvent<Note>; connection: number }> = [];
    const sub = reader.stream("notes").subscribe({
      action: "update",
      pk,
      onEvent: (event) => events.push({ event, connection: reader.stats.connects }),
    });
    await sub.ready;

    // Write for 7.5 s: every connection of both clients is cut twice or more.
    let writes = 0;
    const until = Date.now() + 7500;
    while (Date.now() < until) {
      await writer.patch(pk, { text: String(++writes) });
      await sleep(100);
    }
    await eventually(() => reader.stats.connects >= 3, "two reconnections", 3000);
    const last = await writer.patch(pk, { text: "last" });
    writes++;
    await eventually(() => events.some((e) => !e.event.gap && e.event.version === last.version), "the last push");

    // Every patch ran exactly once, resends across the cuts included.
    assert.equal(last.version, 1 + writes);
    // The token hook was asked before every connection.
    assert.equal(calls, opens.length);
    assert.ok(opens.length >= 3, `${opens.length} connections`);
    // Pushes came on connections after the first: the subscription was renewed.
    const changes = events.filter((e) => !e.event.gap).map((e) => ({ version: e.event.version!, connection: e.connection }));
    assert.ok(new Set(changes.map((e) => e.connection)).size >= 3, `pushes on connections ${[...new Set(changes.map((e) => e.connection))]}`);
    // No duplicates delivered: versions strictly increase.
    const versions = changes.map((e) => e.version);
    assert.deepEqual(versions, [...versions].sort((x, y) => x - y));
    assert.equal(new Set(versions).size, versions.length);
    // Without cursors on the server, each renewal is announced as a possible gap.
    for (const e of events.filter((e) => e.event.gap)) assert.ok(e.event.gap && ["reconnect", "server"].includes(e.event.reason));
  });

  test("a closed client fails its requests with ConnectionError", async () => {
    const c = open(stable);
    await c.ready();
    c.close();
    await assert.rejects(c.stream("questions").list(), ConnectionError);
  });
});
