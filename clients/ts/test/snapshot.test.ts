// A snapshot taken while another client writes, against the real emulator:
// 100 runs, each a user of its own whose 60 to 80 notes (three pages and
// more), made before the runs, are the stream's state. While the snapshot lists, a writer creates,
// changes and deletes notes, most deletes on the first page; once it stops
// and its pushes are in, the snapshot must equal the table.
//
// By page number a delete on page 1 while the snapshot lists moves the
// first note of page 2 onto page 1, already read, and, unchanged, that note
// is never pushed either: the snapshot would lack it for good. listAll reads
// each page after the last pk of the one before, which no delete moves.
//
// SNAPSHOT_RUNS changes the number of runs, SNAPSHOT_SETTLE_MS how long each
// waits for its snapshot to equal the table (10 s).

import { after, test } from "node:test";
import assert from "node:assert/strict";
import { isDeepStrictEqual } from "node:util";
import { WebSocket } from "ws";
import { WsbindError, connect, type Client, type Page, type Stream } from "../src/index.js";
import { Emulator, cleanupBinary } from "./emulator.js";

interface Note {
  id: string;
  owner: string;
  text: string;
  pinned: boolean;
}
interface Streams {
  notes: Note;
}

after(() => cleanupBinary());

const RUNS = Number.parseInt(process.env["SNAPSHOT_RUNS"] ?? "100", 10);
/** How long a run waits for its snapshot to equal the table (shorter, to count the failures of a broken listing quickly). */
const SETTLE_MS = Number.parseInt(process.env["SNAPSHOT_SETTLE_MS"] ?? "10000", 10);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The notes as the server has them now, read page by page with a client of its own. */
async function table(url: string, token: string): Promise<Map<string, Note>> {
  const c = connect<Streams>(url, { WebSocket, token, timeoutMs: 15_000 });
  try {
    const notes = new Map<string, Note>();
    for (let page = 1; ; page++) {
      let p: Page<Note>;
      try {
        p = await c.stream("notes").list({ page });
      } catch (e) {
        if (page > 1 && e instanceof WsbindError && e.status === 404) return notes;
        throw e;
      }
      assert.deepEqual(p.truncatedPks, []);
      for (const n of p.data) notes.set(n.id, n);
      if (p.data.length === 0) return notes;
    }
  } finally {
    c.close();
  }
}

/** How a view differs from the table, or null if it equals it. */
function diff(view: ReadonlyMap<string, Note>, want: ReadonlyMap<string, Note>): string | null {
  const missing = [...want.keys()].filter((pk) => !view.has(pk));
  const extra = [...view.keys()].filter((pk) => !want.has(pk));
  const stale = [...want.keys()].filter((pk) => view.has(pk) && !isDeepStrictEqual(view.get(pk), want.get(pk)));
  if (missing.length + extra.length + stale.length === 0) return null;
  return `${view.size} objects, the table ${want.size}: missing ${JSON.stringify(missing)}, extra ${JSON.stringify(extra)}, stale ${JSON.stringify(stale)}`;
}

/** A small seeded generator (mulberry32), so that a failing run can be run again. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Writes until stop() resolves it: creates, patches, and deletes of the first 25 notes (the first page), one at a time. */
async function writer(notes: Stream<Note>, live: string[], rnd: () => number, stopped: () => boolean, started: () => void) {
  let writes = 0;
  let deletes = 0;
  for (let i = 0; !stopped(); i++) {
    if (i === 2) started();
    const k = rnd();
    if (k < 0.5 && live.length > 40) {
      const j = Math.floor(rnd() * Math.min(25, live.length));
      const [pk] = live.splice(j, 1);
      await notes.delete(pk!);
      deletes++;
    } else if (k < 0.7) {
      const r = await notes.create({ text: `write ${i}` });
      live.push(r.pk!); // ids grow with time: the end of the list
    } else {
      await notes.patch(live[Math.floor(rnd() * live.length)]!, { text: `write ${i}` });
    }
    writes++;
  }
  started();
  return { writes, deletes };
}

test(`snapshot under writes: ${RUNS} runs, each snapshot equal to the table once the writes stop`, { timeout: 600_000 }, async () => {
  // The replay overlap is 1 s, as in the storm test: the emulator's fan-out
  // takes a change within milliseconds.
  const emu = await Emulator.start([], { env: { WSBIND_REPLAY_OVERLAP: "1s" } });
  const clients: Client<Streams>[] = [];
  const open = (token: string) => {
    const c = connect<Streams>(emu.url, { WebSocket, token, timeoutMs: 15_000 });
    clients.push(c);
    return c;
  };
  const started = Date.now();
  const rnd = random(20261205);
  const nonce = Math.random().toString(36).slice(2, 8);
  let failed = 0;
  let objects = 0;
  let writes = 0;
  let deletes = 0;
  let duplicates = 0;
  let resyncs = 0;
  const failures: string[] = [];
  let seeded = 0;
  try {
    // Every run's fresh state first: a user each, with 60 to 80 notes, made
    // 16 at a time. Then a probe: once its note is pushed the fan-out has
    // taken every seed, and a second later no seed is within a run's replay
    // (which starts 1 s before its cursor), so that the replays hold the
    // writers' changes, not the seeds, and cannot make up for a listing that
    // missed a note.
    const users: Array<{ user: string; token: string; live: string[] }> = [];
    for (let run = 0; run < RUNS; run++) {
      const user = `snap-${nonce}-${run}`;
      const token = await emu.token(user);
      const notes = open(token).stream("notes");
      const n = 60 + Math.floor(rnd() * 21);
      const live: string[] = [];
      for (let i = 0; i < n; i += 16) {
        const made = await Promise.all(
          Array.from({ length: Math.min(16, n - i) }, (_, j) => notes.create({ text: `seed ${i + j}` })),
        );
        live.push(...made.map((r) => r.pk!));
      }
      live.sort();
      users.push({ user, token, live });
    }
    const probe = open(await emu.token(`snap-${nonce}-probe`)).stream("notes");
    const sub = probe.subscribe({ action: "create" });
    await sub.ready;
    const pushed = new Promise<void>((resolve) => {
      void (async () => {
        for await (const e of sub) if (!e.gap) return resolve();
      })();
    });
    await probe.create({ text: "probe" });
    await pushed;
    await sleep(1100);
    for (const c of clients.splice(0)) c.close();
    seeded = Date.now() - started;

    for (const [run, { user, token, live }] of users.entries()) {
      const w = open(token);
      const notes = w.stream("notes");

      // The writer, then the snapshot while it writes.
      let stop = false;
      let signal!: () => void;
      const going = new Promise<void>((r) => (signal = r));
      const writing = writer(notes, live, rnd, () => stop, signal);
      await going;
      const c = open(token);
      let snap;
      try {
        snap = await c.stream("notes").snapshot();
      } finally {
        stop = true;
      }
      const wrote = await writing;
      writes += wrote.writes;
      deletes += wrote.deletes;

      const want = await table(emu.url, token);
      objects += want.size;
      const deadline = Date.now() + SETTLE_MS;
      let d = diff(snap.objects, want);
      while (d !== null && Date.now() < deadline) {
        await sleep(20);
        d = diff(snap.objects, want);
      }
      if (d !== null) {
        failed++;
        if (failures.length < 5) failures.push(`run ${run} (${user}), after ${wrote.writes} writes (${wrote.deletes} deletes): ${d}`);
      }
      duplicates += c.stats.duplicatesDropped;
      resyncs += snap.resyncs;
      await snap.close();
      w.close();
      c.close();
    }
  } finally {
    for (const c of clients) c.close();
    await emu.stop();
  }
  console.log(
    `snapshot under writes: ${RUNS} runs, ${failed} failed, in ${Date.now() - started} ms (${seeded} ms of it making their notes); ` +
      `${(objects / RUNS).toFixed(1)} objects and ${(writes / RUNS).toFixed(1)} writes (${(deletes / RUNS).toFixed(1)} deletes) a run; ` +
      `${duplicates} duplicates dropped, ${resyncs} relists`,
  );
  assert.equal(failed, 0, `${failed} of ${RUNS} runs ended with a snapshot other than the table:\n${failures.join("\n")}`);
});
