// Cursors, replay, gaps and snapshots, against a fake server that speaks
// /work/notes/cursor-spec.md (the emulator does not have cursors yet).

import { test } from "node:test";
import assert from "node:assert/strict";
import { WebSocket } from "ws";
import { connect, WsbindError, type Client, type SubscriptionEvent } from "../src/index.js";
import { comparePks } from "../src/stream.js";
import { FakeServer, eventually, sleep, type Conn, type Frame } from "./fakeserver.js";

interface Item {
  id: string;
  n: number;
  color?: string;
}
interface Streams {
  items: Item;
}

function client(server: FakeServer, extra: Parameters<typeof connect>[1] = {}): Client<Streams> {
  return connect<Streams>(server.url, { WebSocket, timeoutMs: 2000, backoff: { baseMs: 20, maxMs: 100 }, ...extra });
}

const item = (id: string, n: number, color?: string): Item => (color === undefined ? { id, n } : { id, n, color });

/** A push of object id at version v, at cursor c, as a replay or live. */
function change(conn: Conn, action: string, id: string, v: number, c: string, replay = false, data: Item = item(id, v)) {
  conn.push("items", action, id, v, data, replay ? { cursor: c, replay: true } : { cursor: c });
}

const summary = (events: SubscriptionEvent<Item>[]) =>
  events.map((e) => (e.gap ? `gap:${e.reason}` : `${e.action} ${e.pk} v${e.version} ${e.cursor}${e.replay ? " replay" : ""}`));

test("replayed changes arrive before the subscribe reply; repeats are dropped; the cursor follows", async (t) => {
  let subscribes = 0;
  const server = await FakeServer.start((conn, f) => {
    if (f.payload.action !== "subscribe") return;
    subscribes++;
    if (subscribes === 1) {
      assert.equal(f.payload.data.since, "c0");
      change(conn, "update", "a", 2, "c1", true);
      change(conn, "update", "b", 3, "c2", true);
      change(conn, "update", "a", 2, "c1", true); // a repeat within the replay
      conn.reply(f, { action: "update" });
      change(conn, "update", "a", 2, "c1"); // a live repeat of a replayed change
      change(conn, "update", "a", 3, "c3");
      setTimeout(() => conn.drop(), 50);
    } else {
      // After the drop: resumed from the last change seen.
      assert.equal(f.payload.data.since, "c3");
      change(conn, "update", "a", 3, "c3", true); // already seen
      change(conn, "update", "a", 4, "c4", true);
      conn.reply(f, { action: "update" });
    }
  });
  const c = client(server);
  t.after(async () => {
    c.close();
    await server.close();
  });
  const events: SubscriptionEvent<Item>[] = [];
  const sub = c.stream("items").subscribe({ action: "update", since: "c0", onEvent: (e) => events.push(e) });
  await sub.ready;
  // The replay is complete when the reply arrives (a live push in the same
  // TCP read may already have followed it).
  assert.deepEqual(summary(events).slice(0, 2), ["update a v2 c1 replay", "update b v3 c2 replay"]);
  await eventually(() => events.length === 4, "the resumed replay");
  assert.deepEqual(summary(events), [
    "update a v2 c1 replay",
    "update b v3 c2 replay",
    "update a v3 c3",
    "update a v4 c4 replay",
  ]);
  assert.equal(sub.duplicates, 3);
  assert.equal(c.stats.duplicatesDropped, 3);
  assert.equal(sub.cursor, "c4");
  assert.equal(subscribes, 2);
});

test("a gap is surfaced as an event and forgets the old cursor", async (t) => {
  const server = await FakeServer.start((conn, f) => {
    if (f.payload.action !== "subscribe") return;
    conn.reply(f, { action: "create", gap: true });
    change(conn, "create", "x", 1, "c9");
  });
  const c = client(server);
  t.after(async () => {
    c.close();
    await server.close();
  });
  const sub = c.stream("items").subscribe({ action: "create", since: "ancient" });
  const it = sub[Symbol.asyncIterator]();
  const first = (await it.next()).value as SubscriptionEvent<Item>;
  assert.equal(first.gap, true);
  assert.ok(first.gap && first.reason === "server");
  const second = (await it.next()).value as SubscriptionEvent<Item>;
  assert.deepEqual(summary([second]), ["create x v1 c9"]);
  assert.equal(sub.cursor, "c9");
});

test("a subscription with no cursor to resume from reports a gap after a reconnect", async (t) => {
  const server = await FakeServer.start((conn, f) => {
    if (f.payload.action === "subscribe") conn.reply(f, { action: "delete" });
  });
  const c = client(server);
  t.after(async () => {
    c.close();
    await server.close();
  });
  const events: SubscriptionEvent<Item>[] = [];
  const sub = c.stream("items").subscribe({ action: "delete", onEvent: (e) => events.push(e) });
  await sub.ready;
  assert.deepEqual(events, []);
  server.conns[0]!.drop();
  await eventually(() => events.length === 1, "the gap event");
  assert.deepEqual(summary(events), ["gap:reconnect"]);
  const resub = server.received("subscribe");
  assert.equal(resub.length, 2);
  assert.equal(resub[1]!.payload.data.since, undefined);
});

test("with several actions, each resumes from where its own replay got: a drop before update's reply keeps create's progress", async (t) => {
  let round = 0;
  const seen: string[] = [];
  const server = await FakeServer.start((conn, f) => {
    if (f.payload.action !== "subscribe") return;
    seen.push(`${f.payload.data.action} since ${f.payload.data.since}`);
    if (round === 0 && f.payload.data.action === "create") {
      // create's replay and reply come, then the connection drops before
      // update's subscribe is answered.
      change(conn, "create", "n", 1, "1.7", true);
      conn.reply(f, { action: "create" }, { extra: { cursor: "1.7" } });
      round = 1;
      setTimeout(() => conn.drop(), 20);
    } else if (round === 1 && seen.length > 2) {
      conn.reply(f, { action: f.payload.data.action });
    }
  });
  const c = client(server);
  t.after(async () => {
    c.close();
    await server.close();
  });
  const events: SubscriptionEvent<Item>[] = [];
  const sub = c.stream("items").subscribe({ action: ["update", "create"], since: "1.5", onEvent: (e) => events.push(e) });
  await sub.ready;
  // create was answered, so its replay was handed over and it resumes from
  // there; update's changes after 1.5 were never replayed, so it resumes
  // from 1.5, and so does the subscription as a whole.
  assert.deepEqual(summary(events), ["create n v1 1.7 replay"]);
  assert.deepEqual(seen.slice(2).sort(), ["create since 1.7", "update since 1.5"]);
  assert.equal(sub.cursor, "1.5");
});

test("a since that is not a cursor: ready rejects with the field error, and the subscription ends", async (t) => {
  const server = await FakeServer.start((conn, f) => {
    if (f.payload.action === "subscribe") conn.fail(f, 400, [{ since: ["Not a valid cursor."] }]);
  });
  const c = client(server);
  t.after(async () => {
    c.close();
    await server.close();
  });
  let reported: Error | null = null;
  const sub = c.stream("items").subscribe({ action: "update", since: "garbage", onError: (e) => (reported = e) });
  const err = await sub.ready.then(
    () => assert.fail("subscribed"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof WsbindError);
  assert.equal(err.status, 400);
  assert.deepEqual(err.fieldErrors, { since: ["Not a valid cursor."] });
  assert.equal(reported, err);
  assert.equal(sub.active, false);
  await assert.rejects(sub[Symbol.asyncIterator]().next(), WsbindError);
});

/**
 * A fake "items" stream whose list and subscribe the test scripts. A page after
 * a pk is the items of every page past it, as many as the first page holds.
 */
function listHandler(pages: () => Array<{ items: Item[]; cursor: string }>, onSubscribe: (conn: Conn, f: Frame) => void) {
  return (conn: Conn, f: Frame) => {
    const p = f.payload;
    if (p.action === "list" && p.data?.after !== undefined) {
      const all = pages();
      const rest = all.flatMap((pg) => pg.items).filter((it) => it.id > p.data.after);
      conn.reply(f, rest.slice(0, all[0]?.items.length ?? 0), { extra: { cursor: `${all[0]?.cursor}-after` } });
    } else if (p.action === "list") {
      const n = p.data?.page ?? 1;
      const page = pages()[n - 1];
      if (!page) conn.fail(f, 404, ["Invalid page."]);
      else conn.reply(f, page.items, { extra: { cursor: page.cursor } });
    } else if (p.action === "subscribe") {
      onSubscribe(conn, f);
    } else if (p.action === "unsubscribe") {
      conn.reply(f, { action: p.data.action });
    }
  };
}

test("snapshot: lists every page, subscribes from the first page's cursor, applies replay and live changes", async (t) => {
  let listing = [
    { items: [item("a", 1), item("b", 1)], cursor: "L1" },
    { items: [item("c", 1)], cursor: "L1b" },
  ];
  let conns = 0;
  const server = await FakeServer.start(
    listHandler(
      () => listing,
      (conn, f) => {
        const action = f.payload.data.action as string;
        if (conn.index === 0) {
          assert.equal(f.payload.data.since, "L1");
          // Changes made while the pages were read:
          if (action === "update") change(conn, "update", "a", 2, "c2", true, item("a", 20));
          if (action === "delete") change(conn, "delete", "b", 2, "c3", true, item("b", 1));
          conn.reply(f, { action });
          return;
        }
        // After the drop: the server no longer has the history.
        conn.reply(f, action === "create" ? { action, gap: true } : { action });
      },
    ),
  );
  const c = client(server);
  t.after(async () => {
    c.close();
    await server.close();
  });
  let changes = 0;
  const snap = await c.stream("items").snapshot({ onChange: () => changes++ });
  assert.deepEqual([...snap.objects.entries()].sort(), [
    ["a", item("a", 20)],
    ["c", item("c", 1)],
  ]);
  // The page after page 1's last pk is shorter than page 1: the last one.
  assert.deepEqual(server.received("list").map((f) => f.payload.data ?? null), [null, { after: "b" }]);
  assert.deepEqual(server.received("subscribe").map((f) => f.payload.data.action).sort(), ["create", "delete", "update"]);

  // A live change.
  conns = server.conns.length;
  change(server.conns[0]!, "create", "d", 1, "c4", false);
  await eventually(() => snap.objects.has("d"), "the live create");
  assert.equal(snap.subscription.cursor, "c4");

  // A drop, and a gap on resubscribing: the snapshot lists again.
  listing = [{ items: [item("a", 20), item("d", 1), item("e", 1)], cursor: "L2" }];
  server.conns[0]!.drop();
  await eventually(() => snap.objects.has("e"), "the relisting");
  assert.ok(server.conns.length > conns);
  assert.deepEqual([...snap.objects.keys()].sort(), ["a", "d", "e"]);
  assert.equal(snap.resyncs, 1);
  assert.ok(changes >= 3);
  await snap.close();
  assert.equal(snap.subscription.active, false);
});

test("listAll: each page after the last pk of the one before, so an object deleted behind the pages moves nothing", async (t) => {
  let listing = [
    { items: [item("a", 1), item("b", 1), item("c", 1)], cursor: "L1" },
    { items: [item("d", 1), item("e", 1), item("f", 1)], cursor: "L2" },
    { items: [item("g", 1)], cursor: "L3" },
  ];
  const server = await FakeServer.start((conn, f) => {
    listHandler(
      () => listing,
      () => {},
    )(conn, f);
    // Once page 1 is read, a and b are deleted: by page number, page 2 would
    // now start at f, and d and e would be missed.
    listing = [
      { items: [item("c", 1), item("d", 1), item("e", 1)], cursor: "L1" },
      { items: [item("f", 1), item("g", 1)], cursor: "L2" },
    ];
  });
  const c = client(server);
  t.after(async () => {
    c.close();
    await server.close();
  });
  const all = await c.stream("items").listAll();
  assert.deepEqual(all.data.map((it) => it.id), ["a", "b", "c", "d", "e", "f", "g"]);
  assert.equal(all.cursor, "L1");
  assert.equal(all.pages, 3);
  assert.deepEqual(server.received("list").map((f) => f.payload.data ?? null), [null, { after: "c" }, { after: "f" }]);
});

test("listAll: a server that ignores after (one older than it) is read by page number", async (t) => {
  const pages = [[item("a", 1), item("b", 1)], [item("c", 1), item("d", 1)], [item("e", 1)]];
  const server = await FakeServer.start((conn, f) => {
    if (f.payload.action !== "list") return;
    const n = f.payload.data?.page ?? 1;
    if (!pages[n - 1]) conn.fail(f, 404, ["Invalid page."]);
    else conn.reply(f, pages[n - 1], { extra: { cursor: `L${n}` } });
  });
  const c = client(server);
  t.after(async () => {
    c.close();
    await server.close();
  });
  const all = await c.stream("items").listAll();
  assert.deepEqual(all.data.map((it) => it.id), ["a", "b", "c", "d", "e"]);
  assert.equal(all.cursor, "L1");
  assert.deepEqual(server.received("list").map((f) => f.payload.data ?? null), [null, { after: "b" }, { page: 1 }, { page: 2 }, { page: 3 }]);
});

test("comparePks orders pks as the server does, by code point", () => {
  const pks = ["", "a", "ab", "b", "\u00e9", "\uffff", "\u{1f600}", "\u{1f600}a"];
  for (let i = 0; i < pks.length; i++) {
    for (let j = 0; j < pks.length; j++) {
      assert.equal(comparePks(pks[i]!, pks[j]!), Math.sign(i - j), `${JSON.stringify(pks[i])} against ${JSON.stringify(pks[j])}`);
    }
  }
});

test("snapshot with a filter: the listing is filtered like the subscription", async (t) => {
  const server = await FakeServer.start(
    listHandler(
      () => [{ items: [item("a", 1, "red"), item("b", 1, "blue"), item("c", 1, "red")], cursor: "L1" }],
      (conn, f) => {
        assert.deepEqual(f.payload.data.filter, { color: "red" });
        if (f.payload.data.action === "delete") change(conn, "delete", "c", 2, "c2", true, item("c", 1, "red"));
        conn.reply(f, { action: f.payload.data.action });
      },
    ),
  );
  const c = client(server);
  t.after(async () => {
    c.close();
    await server.close();
  });
  const snap = await c.stream("items").snapshot({ filter: { color: "red" } });
  assert.deepEqual([...snap.objects.keys()], ["a"]);
});

test("snapshot on a server without cursors subscribes first, then lists; pushes win over the listing", async (t) => {
  const server = await FakeServer.start((conn, f) => {
    const p = f.payload;
    if (p.action === "subscribe") {
      assert.equal(p.data.since, undefined);
      conn.reply(f, { action: p.data.action });
    } else if (p.action === "list") {
      // A change pushed while the page is being read, which the page predates.
      if (p.data === undefined || p.data.page === 1) {
        change(conn, "update", "a", 5, "", false, item("a", 50));
        setTimeout(() => conn.reply(f, [item("a", 4), item("b", 1)]), 30);
      } else {
        conn.fail(f, 404, ["Invalid page."]);
      }
    }
  });
  const c = client(server);
  t.after(async () => {
    c.close();
    await server.close();
  });
  const snap = await c.stream("items").snapshot();
  assert.deepEqual(snap.objects.get("a"), item("a", 50));
  assert.deepEqual(snap.objects.get("b"), item("b", 1));
  const frames = server.frames.map((f) => f.frame.payload.action);
  assert.ok(frames.indexOf("subscribe") < frames.lastIndexOf("list"), `subscribed before the last listing: ${frames}`);
});

test("a push reaches only the subscriptions whose action, pk and filter it matches", async (t) => {
  const server = await FakeServer.start((conn, f) => {
    if (f.payload.action === "subscribe") conn.reply(f, { action: f.payload.data.action });
  });
  const c = client(server);
  t.after(async () => {
    c.close();
    await server.close();
  });
  const got: Record<string, string[]> = { all: [], a: [], red: [], created: [] };
  const s = c.stream("items");
  const subs = [
    s.subscribe({ action: "update", onEvent: (e) => got["all"]!.push(e.pk!) }),
    s.subscribe({ action: "update", pk: "a", onEvent: (e) => got["a"]!.push(e.pk!) }),
    s.subscribe({ action: "update", filter: { color: "red" }, onEvent: (e) => got["red"]!.push(e.pk!) }),
    s.subscribe({ action: "create", onEvent: (e) => got["created"]!.push(e.pk!) }),
  ];
  await Promise.all(subs.map((x) => x.ready));
  const conn = server.conns[0]!;
  change(conn, "update", "a", 2, "c1", false, item("a", 2, "red"));
  change(conn, "update", "b", 2, "c2", false, item("b", 2, "blue"));
  change(conn, "create", "z", 1, "c3", false, item("z", 1, "red"));
  conn.push("other", "update", "a", 9, item("a", 9)); // another stream
  await eventually(() => got["created"]!.length === 1, "the create");
  await sleep(30);
  assert.deepEqual(got, { all: ["a", "b"], a: ["a"], red: ["a"], created: ["z"] });
});

test("unsubscribe waits for the subscribe's reply, ends iteration, and stops delivery", async (t) => {
  const order: string[] = [];
  const server = await FakeServer.start((conn, f) => {
    order.push(f.payload.action);
    if (f.payload.action === "subscribe") {
      setTimeout(() => {
        order.push("subscribe reply");
        conn.reply(f, { action: "update" });
      }, 80);
    } else if (f.payload.action === "unsubscribe") {
      assert.deepEqual(f.payload.data, { action: "update", filter: { color: "red" } });
      conn.reply(f, { action: "update" });
    }
  });
  const c = client(server);
  t.after(async () => {
    c.close();
    await server.close();
  });
  await c.ready();
  const sub = c.stream("items").subscribe({ action: "update", filter: { color: "red" } });
  const next = sub[Symbol.asyncIterator]().next();
  await server.until(() => order.length > 0, "the subscribe");
  await sub.unsubscribe();
  assert.deepEqual(order, ["subscribe", "subscribe reply", "unsubscribe"]);
  assert.deepEqual(await next, { value: undefined, done: true });
  change(server.conns[0]!, "update", "a", 2, "c1", false, item("a", 2, "red"));
  await sleep(30);
  assert.equal(sub.active, false);
});

test("breaking out of for-await unsubscribes", async (t) => {
  const server = await FakeServer.start((conn, f) => {
    conn.reply(f, { action: f.payload.data.action });
    if (f.payload.action === "subscribe") change(conn, "create", "a", 1, "c1");
  });
  const c = client(server);
  t.after(async () => {
    c.close();
    await server.close();
  });
  const sub = c.stream("items").subscribe({ action: "create" });
  for await (const e of sub) {
    assert.equal(e.pk, "a");
    break;
  }
  await server.until(() => server.received("unsubscribe").length === 1, "the unsubscribe");
  assert.equal(sub.active, false);
});
