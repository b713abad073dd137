// A scripted wsbind server for the tests of what the real one cannot do yet
// (cursors, replay, gaps: /work/notes/cursor-spec.md) and of failures it
// cannot be made to produce on demand. Each test gives the handler that
// answers frames; the server records every frame it received.

import { WebSocketServer, type WebSocket } from "ws";
import type { AddressInfo } from "node:net";

export interface Frame {
  stream: string;
  payload: {
    action: string;
    pk?: string | number;
    data?: any;
    request_id?: string;
    idempotency_key?: string;
    if_version?: number;
  };
}

export class Conn {
  readonly ws: WebSocket;
  readonly token: string | null;
  readonly index: number;

  constructor(ws: WebSocket, token: string | null, index: number) {
    this.ws = ws;
    this.token = token;
    this.index = index;
  }

  send(msg: unknown): void {
    this.ws.send(JSON.stringify(msg));
  }

  /** Answers a request: 200 (or status) with data, or the errors of a failure. */
  reply(f: Frame, data: unknown, opts: { status?: number; errors?: unknown[]; extra?: Record<string, unknown> } = {}): void {
    const status = opts.status ?? 200;
    this.send({
      stream: f.stream,
      payload: {
        action: f.payload.action,
        data: status >= 400 ? null : data,
        ...opts.extra,
        errors: opts.errors ?? [],
        response_status: status,
        request_id: f.payload.request_id ?? null,
      },
    });
  }

  fail(f: Frame, status: number, errors: unknown[]): void {
    this.reply(f, null, { status, errors });
  }

  /** A push: a change of object pk to version, at cursor. */
  push(stream: string, action: string, pk: string, version: number, data: unknown, extra: Record<string, unknown> = {}): void {
    this.send({ stream, payload: { action, data, model: "test.model", pk, version, ...extra } });
  }

  /** Ends the connection without a close handshake, as a network drop or API Gateway's cut does. */
  drop(): void {
    this.ws.terminate();
  }
}

export type Handler = (conn: Conn, frame: Frame) => void;

export class FakeServer {
  readonly url: string;
  readonly conns: Conn[] = [];
  readonly frames: Array<{ conn: Conn; frame: Frame }> = [];
  handler: Handler;
  private readonly wss: WebSocketServer;
  private waiters: Array<() => void> = [];

  private constructor(wss: WebSocketServer, handler: Handler) {
    this.wss = wss;
    this.handler = handler;
    const port = (wss.address() as AddressInfo).port;
    this.url = `ws://127.0.0.1:${port}/`;
    wss.on("connection", (ws, req) => {
      const token = new URL(req.url ?? "/", "http://x").searchParams.get("token");
      const conn = new Conn(ws, token, this.conns.length);
      this.conns.push(conn);
      this.wake();
      ws.on("message", (raw) => {
        const frame = JSON.parse(String(raw)) as Frame;
        this.frames.push({ conn, frame });
        this.wake();
        this.handler(conn, frame);
      });
    });
  }

  static start(handler: Handler = () => {}): Promise<FakeServer> {
    return new Promise((resolve, reject) => {
      const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
      wss.once("error", reject);
      wss.once("listening", () => resolve(new FakeServer(wss, handler)));
    });
  }

  /** Frames received with this action (and, if given, this data.action). */
  received(action: string, subAction?: string): Frame[] {
    return this.frames
      .map((f) => f.frame)
      .filter((f) => f.payload.action === action && (subAction === undefined || f.payload.data?.action === subAction));
  }

  /** Waits until cond() holds, checking after every connection and frame, and every 20 ms. */
  async until(cond: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`fake server: timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 20);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  close(): Promise<void> {
    for (const c of this.conns) c.ws.terminate();
    return new Promise((resolve) => this.wss.close(() => resolve()));
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}

/** Resolves when cond() holds (polled every 10 ms), or fails after timeoutMs. */
export async function eventually(cond: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
