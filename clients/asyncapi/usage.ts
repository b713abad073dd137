// usage.ts is type-checked against the declarations gen-types.mjs writes
// of this repository's document (make asyncapi-test copies both into one
// directory, the declarations as wsbind.d.ts). It shows, and proves, what
// a client gets: each @ts-expect-error line must fail to compile.
import type { Note, NoteFilter, NotePatch, Question, QuestionInput, StreamInputs, Streams } from "./wsbind.js";

// The generic client's shape (clients/ts): connect<S>, then stream<K>.
interface Stream<T extends object> {
  list(): Promise<T[]>;
  get(pk: string): Promise<T>;
}
interface Client<S extends Record<string, object>> {
  stream<K extends keyof S & string>(name: K): Stream<S[K]>;
}
declare function connect<S extends Record<string, object>>(url: string): Client<S>;

const client = connect<Streams>("ws://127.0.0.1:8080/");
export const questions: Stream<Question> = client.stream("questions");
export const notes: Stream<Note> = client.stream("notes");
// @ts-expect-error: no binding serves this stream
client.stream("answers");
// @ts-expect-error: the questions stream holds questions, not notes
export const wrong: Stream<Note> = client.stream("questions");

export const q: Question = { id: "01J0", question_text: "Why?", pub_date: "2026-01-02T03:04:05Z", published: false };
export const unset: Question = { id: "01J1", question_text: "Why?", pub_date: null, published: true };
// @ts-expect-error: published is a boolean
export const badType: Question = { id: "01J2", question_text: "Why?", pub_date: null, published: "yes" };
// @ts-expect-error: every readable field is in the output, id included
export const noId: Question = { question_text: "Why?", pub_date: null, published: false };

export const input: QuestionInput = { question_text: "Why?" };
// @ts-expect-error: question_text is required on create and update
export const noText: QuestionInput = {};
// @ts-expect-error: published is read-only, so not input
export const readOnly: QuestionInput = { question_text: "Why?", published: true };
export const note: StreamInputs["notes"] = { text: "milk", pinned: true };
// @ts-expect-error: pinned is a boolean
export const badNote: StreamInputs["notes"] = { text: "milk", pinned: 1 };
export const patch: NotePatch = {};
export const filter: NoteFilter = { pinned: true };
// @ts-expect-error: a filter names fields only
export const badFilter: NoteFilter = { colour: "red" };
