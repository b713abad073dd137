// Compile-time checks of the generics: this file must type-check (npm test
// runs tsc first), and each @ts-expect-error must meet an error. What runs is
// only a token test so that the file shows in the report.

import { test } from "node:test";
import assert from "node:assert/strict";
import { WebSocket } from "ws";
import {
  connect,
  type Client,
  type ChangeEvent,
  type Page,
  type Stream,
  type StreamTypes,
  type SubscriptionEvent,
  type WriteReply,
} from "../src/index.js";

// What a generator writes from an AsyncAPI document: interfaces, with no index signature.
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
export interface Streams {
  questions: Question;
  notes: Note;
}

// A type alias (which does have an implicit index signature) works as well.
type AliasStreams = { questions: Question };

function typed(client: Client<Streams>): void {
  const questions: Stream<Question> = client.stream("questions");
  const notes: Stream<Note> = client.stream("notes");
  // @ts-expect-error: no such stream in Streams
  client.stream("nope");
  // @ts-expect-error: a field of the wrong type
  void questions.create({ question_text: 42 });
  // @ts-expect-error: a Stream<Note> is not a Stream<Question>
  const wrong: Stream<Question> = notes;
  void wrong;

  void (async () => {
    const r: WriteReply<Question> = await questions.create({ question_text: "Why?" });
    if (!r.truncated) {
      const text: string = r.data.question_text;
      void text;
    } else {
      const nothing: null = r.data;
      void nothing;
    }
    const page: Page<Question> = await questions.list({ page: 2 });
    const published: boolean[] = page.data.map((q) => q.published);
    void published;
    const report = await questions.action<{ count: number; published: number }>("report");
    if (!report.truncated) {
      const n: number = report.data.count;
      void n;
    }
    const sub = questions.subscribe({ action: ["create", "update"], filter: { published: true } });
    for await (const e of sub) {
      if (e.gap) {
        const reason: "server" | "reconnect" = e.reason;
        void reason;
      } else if (!e.truncated) {
        const ev: ChangeEvent<Question> = e;
        const text: string = e.data.question_text;
        void ev;
        void text;
      }
    }
    const snap = await questions.snapshot({ filter: { published: true } });
    const q: Question | undefined = snap.objects.get("id");
    void q;
  })();
}

function untyped(client: Client): void {
  // Without a stream map every name is a stream of any.
  const s = client.stream("anything");
  void s.create({ whatever: 1 });
  const handler = (e: SubscriptionEvent<any>) => void e;
  s.subscribe({ action: "create", onEvent: handler });
}

test("generics accept generated interfaces, aliases and no map at all", () => {
  const opts = { WebSocket, token: () => Promise.resolve("t") };
  const makeTyped = () => connect<Streams>("ws://127.0.0.1:1/", opts);
  const makeAlias = () => connect<AliasStreams>("ws://127.0.0.1:1/", opts);
  const makeRecord = () => connect<StreamTypes>("ws://127.0.0.1:1/", opts);
  const makeUntyped = () => connect("ws://127.0.0.1:1/", opts);
  // Only the types matter here: the functions are not called.
  assert.equal(typeof typed, "function");
  assert.equal(typeof untyped, "function");
  for (const f of [makeTyped, makeAlias, makeRecord, makeUntyped]) assert.equal(typeof f, "function");
});
