// The few globals the client needs, typed here rather than through the DOM
// or Node type libraries: the package compiles against ES2022 alone, so it
// cannot come to depend on something only one runtime has. Every name below
// exists in browsers and in Node 20.
const g = globalThis;
export function setTimer(fn, ms) {
    return g.setTimeout(fn, ms);
}
export function clearTimer(handle) {
    if (handle !== undefined)
        g.clearTimeout(handle);
}
export function sleep(ms) {
    return new Promise((resolve) => setTimer(resolve, ms));
}
/** The URL with `token` set in its query (removed when token is empty). */
export function withToken(url, token) {
    const u = new g.URL(url);
    if (token)
        u.searchParams.set("token", token);
    else
        u.searchParams.delete("token");
    return u.toString();
}
let decoder;
/** A WebSocket message's text: a string, or UTF-8 bytes (Node's ws may hand over a Buffer). */
export function messageText(data) {
    if (typeof data === "string")
        return data;
    let bytes = null;
    if (data instanceof Uint8Array)
        bytes = data;
    else if (data instanceof ArrayBuffer)
        bytes = new Uint8Array(data);
    else if (Array.isArray(data) && data.every((d) => d instanceof Uint8Array)) {
        const parts = data;
        bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
        let at = 0;
        for (const p of parts) {
            bytes.set(p, at);
            at += p.length;
        }
    }
    if (bytes === null)
        return null;
    decoder ??= new g.TextDecoder();
    return decoder.decode(bytes);
}
/** A fresh idempotency key: a random UUID where the runtime has one. */
export function newKey() {
    const c = g.crypto;
    if (c?.randomUUID)
        return c.randomUUID();
    const bytes = new Uint8Array(16);
    if (c?.getRandomValues)
        c.getRandomValues(bytes);
    else
        for (let i = 0; i < bytes.length; i++)
            bytes[i] = Math.floor(Math.random() * 256);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
export function globalWebSocket() {
    return g.WebSocket;
}
/**
 * The `exp` claim of a JWT, in milliseconds since the epoch, read without
 * verifying anything (the server verifies); null when the token is not a JWT
 * or has no exp.
 */
export function tokenExpiry(token) {
    const part = token?.split(".")[1];
    if (!part)
        return null;
    try {
        const b64 = part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "=");
        const claims = JSON.parse(g.atob(b64));
        return typeof claims.exp === "number" ? claims.exp * 1000 : null;
    }
    catch {
        return null;
    }
}
