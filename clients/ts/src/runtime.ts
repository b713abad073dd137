// The few globals the client needs, typed here rather than through the DOM
// or Node type libraries: the package compiles against ES2022 alone, so it
// cannot come to depend on something only one runtime has. Every name below
// exists in browsers and in Node 20.

export type TimerHandle = unknown;

interface Globals {
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
  URL: new (url: string) => {
    searchParams: { set(name: string, value: string): void; delete(name: string): void };
    toString(): string;
  };
  TextDecoder: new () => { decode(bytes: Uint8Array): string };
  crypto?: { randomUUID?: () => string; getRandomValues?: (a: Uint8Array) => Uint8Array };
  atob(data: string): string;
  WebSocket?: unknown;
}

const g = globalThis as unknown as Globals;

export function setTimer(fn: () => void, ms: number): TimerHandle {
  return g.setTimeout(fn, ms);
}

export function clearTimer(handle: TimerHandle | undefined): void {
  if (handle !== undefined) g.clearTimeout(handle);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimer(resolve, ms));
}

/** The URL with `token` set in its query (removed when token is empty). */
export function withToken(url: string, token: string | null | undefined): string {
  const u = new g.URL(url);
  if (token) u.searchParams.set("token", token);
  else u.searchParams.delete("token");
  return u.toString();
}

let decoder: { decode(bytes: Uint8Array): string } | undefined;

/** A WebSocket message's text: a string, or UTF-8 bytes (Node's ws may hand over a Buffer). */
export function messageText(data: unknown): string | null {
  if (typeof data === "string") return data;
  let bytes: Uint8Array | null = null;
  if (data instanceof Uint8Array) bytes = data;
  else if (data instanceof ArrayBuffer) bytes = new Uint8Array(data);
  else if (Array.isArray(data) && data.every((d) => d instanceof Uint8Array)) {
    const parts = data as Uint8Array[];
    bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      bytes.set(p, at);
      at += p.length;
    }
  }
  if (bytes === null) return null;
  decoder ??= new g.TextDecoder();
  return decoder.decode(bytes);
}

/** A fresh idempotency key: a random UUID where the runtime has one. */
export function newKey(): string {
  const c = g.crypto;
  if (c?.randomUUID) return c.randomUUID();
  const bytes = new Uint8Array(16);
  if (c?.getRandomValues) c.getRandomValues(bytes);
  else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function globalWebSocket(): unknown {
  return g.WebSocket;
}

/**
 * The `exp` claim of a JWT, in milliseconds since the epoch, read without
 * verifying anything (the server verifies); null when the token is not a JWT
 * or has no exp.
 */
export function tokenExpiry(token: string | null | undefined): number | null {
  const part = token?.split(".")[1];
  if (!part) return null;
  try {
    const b64 = part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "=");
    const claims = JSON.parse(g.atob(b64)) as { exp?: unknown };
    return typeof claims.exp === "number" ? claims.exp * 1000 : null;
  } catch {
    return null;
  }
}
