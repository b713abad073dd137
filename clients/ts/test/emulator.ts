// Runs the repository's emulator (`wsbind run`) for the tests: builds the
// wsbind command once (or takes $WSBIND_BIN), starts it on a free port, waits
// for its "WebSocket API" line, and stops it.

import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);

/** The repository's root: this file is clients/ts/build/test/emulator.js once compiled. */
export const repoRoot = fileURLToPath(new URL("../../../../", import.meta.url));

let built: Promise<{ bin: string; cleanup: () => Promise<void> }> | undefined;

/** The wsbind command: $WSBIND_BIN, or built from this checkout into a temporary directory. */
function wsbind(): Promise<{ bin: string; cleanup: () => Promise<void> }> {
  const given = process.env["WSBIND_BIN"];
  if (given) return Promise.resolve({ bin: given, cleanup: async () => {} });
  built ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), "wsbind-ts-test-"));
    const bin = join(dir, "wsbind");
    await run("go", ["build", "-o", bin, "./cmd/wsbind"], { cwd: repoRoot });
    return { bin, cleanup: () => rm(dir, { recursive: true, force: true }) };
  })();
  return built;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr ? resolve(addr.port) : reject(new Error("no port"))));
    });
  });
}

// The emulator must not outlive a test process that fails badly.
const running = new Set<ChildProcess>();
process.on("exit", () => {
  for (const p of running) p.kill("SIGKILL");
});

export class Emulator {
  readonly url: string;
  private readonly proc: ChildProcess;
  private readonly bin: string;

  private constructor(url: string, proc: ChildProcess, bin: string) {
    this.url = url;
    this.proc = proc;
    this.bin = bin;
  }

  /**
   * Starts `wsbind run` with these extra flags (-idle, -lifetime, -guests).
   * opts.env adds to the emulator's environment: the guests get its WSBIND_*
   * settings (WSBIND_HISTORY_RETENTION, WSBIND_REPLAY_OVERLAP, ...).
   */
  static async start(flags: string[] = [], opts: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<Emulator> {
    const timeoutMs = opts.timeoutMs ?? 180_000;
    const { bin } = await wsbind();
    const port = await freePort();
    const env = { ...process.env };
    delete env["WSBIND_FAULTS"]; // the tests want the emulator without injected faults
    delete env["WSBIND_ADDR"];
    Object.assign(env, opts.env);
    const proc = spawn(bin, ["run", "-addr", `127.0.0.1:${port}`, ...flags], {
      cwd: repoRoot,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    running.add(proc);
    proc.once("exit", () => running.delete(proc));
    let stderr = "";
    proc.stderr!.on("data", (b: Buffer) => (stderr = (stderr + b.toString()).slice(-4000)));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = "";
        const timer = setTimeout(() => reject(new Error(`wsbind run: no "WebSocket API" line within ${timeoutMs} ms`)), timeoutMs);
        proc.stdout!.on("data", (b: Buffer) => {
          out += b.toString();
          const m = /WebSocket API\s+(ws:\/\/\S+)/.exec(out);
          if (m) {
            clearTimeout(timer);
            resolve(m[1]!);
          }
        });
        proc.once("exit", (code) => {
          clearTimeout(timer);
          reject(new Error(`wsbind run exited (${code}) before serving:\n${stderr}`));
        });
      });
      proc.stdout!.resume();
      return new Emulator(url, proc, bin);
    } catch (e) {
      proc.kill("SIGKILL");
      throw e;
    }
  }

  /** A token the emulator accepts for user (its sub), valid for ttl (a Go duration). */
  async token(user: string, ttl = "1h"): Promise<string> {
    const { stdout } = await run(this.bin, ["token", "-ttl", ttl, user], { cwd: repoRoot });
    return stdout.trim();
  }

  /** Stops the emulator: SIGTERM, then SIGKILL if it has not exited within 10 s. */
  async stop(): Promise<void> {
    const proc = this.proc;
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
      proc.once("exit", () => {
        clearTimeout(timer);
        resolve();
      });
      proc.kill("SIGTERM");
    });
  }
}

/** Removes the wsbind command this process built, if it built one. */
export async function cleanupBinary(): Promise<void> {
  if (built) await (await built).cleanup();
}
