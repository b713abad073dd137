// The wsbind debugger, on the TypeScript client (clients/ts, compiled into
// client/ by `make web-client`): it connects to the WebSocket API at this
// page's origin, sends the requests built from bindings.json through the
// client's streams, follows changes with the client's subscriptions, and logs
// each frame sent, each reply (timed from its request) and each push (timed
// from the connection), with the frame as it passed on the wire.

import { connect, WsbindError } from "./client/index.js";

const $ = (id) => document.getElementById(id);
const ui = {
  status: $("status"), conn: $("conn"), token: $("token"), connect: $("connect"),
  disconnect: $("disconnect"), endpoint: $("endpoint"), request: $("request"),
  stream: $("stream"), action: $("action"), pk: $("pk"), pkHint: $("pk-hint"),
  data: $("data"), dataError: $("data-error"),
  subs: $("subs"), subsEmpty: $("subs-empty"), log: $("log"),
  newestFirst: $("newest-first"), clear: $("clear"),
};
const maxEntries = 500;
const maxRecords = 1000;

let streams = []; // from bindings.json
let client = null; // the current Client, or null
let wire = null; // the current client's Wire
let openedAt = 0; // performance.now() when the connection last opened
let dataEdited = false; // whether the user typed data (templates stop)
const subs = new Map(); // subKey -> {stream, action, pk, filter, sub, ready}

function socketURL() {
  const u = new URL("/", location.href);
  u.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  return u.href;
}

function shownURL(token) {
  return token ? `${socketURL()}?token=…` : socketURL();
}

function fmtMs(ms) {
  return ms < 1000 ? `${ms.toFixed(1)} ms` : `${(ms / 1000).toFixed(3)} s`;
}

function setStatus(state, text) {
  ui.status.dataset.state = state;
  ui.status.textContent = text;
}

function parse(text) {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

// --- the wire ---

// Wire sees the frames of one client at its WebSocket: the client is given
// a WebSocket class that reports each frame here before the client handles
// it. Frames sent are logged as they go; replies are kept by request_id for
// the entry the client's answer makes, with the time they took.
class Wire {
  constructor() {
    this.records = new Map(); // request_id -> {n, stream, action, payload, sentAt, reply, repliedAt}
    this.sends = 0;
    this.received = 0;
    // Push frames by what they carry, so the entry for a change shows the
    // frame it came in even when the client hands it over later (a resuming
    // subscription holds live pushes until its reply), and a push taken by
    // several subscriptions is logged once.
    this.pushes = new Map(); // pushKey -> {text, logged}
    const wire = this;
    this.WebSocket = class extends WebSocket {
      constructor(url) {
        super(url);
        this.binaryType = "arraybuffer";
        // Added before the client sets onmessage, so it runs first.
        this.addEventListener("message", (ev) => wire.in(ev.data));
      }

      send(text) {
        super.send(text);
        wire.out(text);
      }
    };
  }

  out(text) {
    const msg = parse(text);
    const p = isObject(msg) && isObject(msg.payload) ? msg.payload : {};
    const id = p.request_id === undefined ? null : String(p.request_id);
    const stream = String(msg?.stream);
    if (id !== null) {
      this.records.delete(id); // a resend: timed from now
      this.records.set(id, { n: ++this.sends, stream, action: p.action, payload: p, sentAt: performance.now() });
      if (this.records.size > maxRecords) this.records.delete(this.records.keys().next().value);
    }
    addEntry({
      kind: "sent", stream, action: p.action, requestID: id,
      summary: `${stream} ${p.action}${p.pk !== undefined ? ` pk=${p.pk}` : ""} · request_id ${id}`, body: text,
    });
  }

  in(data) {
    const now = performance.now();
    const text = typeof data === "string" ? data : new TextDecoder().decode(data);
    this.received++;
    const msg = parse(text);
    const p = isObject(msg) && isObject(msg.payload) ? msg.payload : null;
    if (p && typeof p.response_status === "number") {
      const r = this.records.get(String(p.request_id));
      if (r) Object.assign(r, { reply: text, repliedAt: now });
    } else if (p && "model" in p) {
      const key = pushKey(msg.stream, p.action, p.pk, p.version, p.cursor);
      if (!this.pushes.has(key)) this.pushes.set(key, { text, logged: false });
      if (this.pushes.size > maxRecords) this.pushes.delete(this.pushes.keys().next().value);
    } else {
      addEntry({ kind: "message", summary: p ? String(msg.stream) : "frame that is not a reply or a push", body: text });
    }
  }

  // The requests sent since sends was at mark, oldest first, that match.
  since(mark, match) {
    return [...this.records.values()].filter((r) => r.n > mark && match(r));
  }
}

// --- bindings ---

function fillStreams() {
  ui.stream.replaceChildren(...streams.map((s) => new Option(`${s.stream} (${s.model})`, s.stream)));
  fillActions();
}

function currentStream() {
  return streams.find((s) => s.stream === ui.stream.value);
}

function currentAction() {
  const s = currentStream();
  return s ? s.actions.find((a) => a.name === ui.action.value) : undefined;
}

function fillActions() {
  const s = currentStream();
  const keep = ui.action.value;
  ui.action.replaceChildren(...(s ? s.actions : []).map((a) => {
    const tags = a.custom ? ["custom", a.detail ? "detail" : "list"] : a.detail ? ["detail"] : [];
    return new Option(tags.length ? `${a.name} (${tags.join(", ")})` : a.name, a.name);
  }));
  if (s && s.actions.some((a) => a.name === keep)) ui.action.value = keep;
  actionChanged();
}

const templates = { create: "{}", update: "{}", patch: "{}", list: '{"page": 1}', subscribe: '{"action": "create"}', unsubscribe: '{"action": "create"}' };

function actionChanged() {
  const a = currentAction();
  let hint = "(not used by this action)";
  if (a && (a.name === "subscribe" || a.name === "unsubscribe")) hint = "(optional: only this object's changes)";
  else if (a && a.detail) hint = "(the object this action acts on)";
  ui.pkHint.textContent = hint;
  if (!dataEdited) ui.data.value = (a && templates[a.name]) || "";
}

async function loadBindings() {
  try {
    const res = await fetch("bindings.json", { cache: "no-store" });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    streams = (await res.json()).streams || [];
    fillStreams();
  } catch (err) {
    setStatus("error", `Could not load bindings.json: ${err.message}`);
  }
}

// --- connection ---

function connectClient() {
  if (client) return;
  const token = ui.token.value.trim();
  const w = new Wire();
  let c = null;
  // The client reports "connecting" before connect() returns, hence c === null.
  const onState = (state, info) => {
    if (c === null || c === client) stateChanged(state, info, token);
  };
  ui.connect.disabled = true;
  ui.disconnect.disabled = false;
  wire = w;
  client = c = connect(socketURL(), { token, WebSocket: w.WebSocket, onState });
}

function stateChanged(state, info, token) {
  const where = shownURL(token);
  if (state === "connecting") {
    setStatus("connecting", `Connecting to ${where}…`);
  } else if (state === "open") {
    openedAt = performance.now();
    setStatus("open", `Connected to ${where}.`);
    addEntry({ kind: "event", label: "open", summary: `connected to ${where}${info.attempt ? ` after ${info.attempt} failed attempts` : ""}` });
  } else if (state === "reconnecting") {
    const why = info.code !== undefined ? `code ${info.code}${info.reason ? `: ${info.reason}` : ""}` : info.reason || (info.error ? "could not connect" : "closed");
    setStatus("reconnecting", `Disconnected (${why}); the client reconnects in ${fmtMs(info.delayMs || 0)} (attempt ${info.attempt}).`);
    addEntry({ kind: "event", label: "lost", ok: false, summary: `connection lost (${why}); reconnecting, attempt ${info.attempt}, subscriptions resume from their cursors` });
  } else if (state === "closed") {
    client = null;
    wire = null;
    setStatus("closed", "Disconnected.");
    addEntry({ kind: "event", label: "closed", summary: "closed by the debugger" });
    ui.connect.disabled = false;
    ui.disconnect.disabled = true;
    subs.clear();
    renderSubs();
    if (document.activeElement === ui.disconnect || document.activeElement === document.body) ui.connect.focus();
  }
}

function disconnect() {
  if (client) client.close();
}

// --- requests ---

function showError(text, field) {
  ui.dataError.textContent = text;
  if (field) {
    field.setAttribute("aria-invalid", "true");
    field.focus();
  }
}

function clearError() {
  ui.dataError.textContent = "";
  ui.data.removeAttribute("aria-invalid");
}

async function send() {
  clearError();
  if (!client) {
    showError("Not connected: press Connect first.");
    return;
  }
  const stream = ui.stream.value;
  const action = ui.action.value;
  if (!stream || !action) {
    showError("Pick a stream and an action first.");
    return;
  }
  let data = null;
  const text = ui.data.value.trim();
  if (text !== "") {
    try {
      data = JSON.parse(text);
    } catch (err) {
      showError(`data is not valid JSON: ${err.message}`, ui.data);
      return;
    }
  }
  const pk = ui.pk.value.trim();
  if (action === "subscribe" || action === "unsubscribe") {
    if (!isObject(data)) {
      showError(`${action} takes data like {"action": "create"}.`, ui.data);
      return;
    }
    if (action === "subscribe") subscribe(stream, pk, data);
    else await unsubscribe(stream, pk, data);
    return;
  }
  const c = client;
  const w = wire;
  const s = c.stream(stream);
  let call;
  try {
    switch (action) {
      case "create": call = s.create(data); break;
      case "retrieve": call = s.retrieve(pk); break;
      case "update": call = s.update(pk, data); break;
      case "patch": call = s.patch(pk, data); break;
      case "delete": call = s.delete(pk); break;
      case "list": call = s.list(isObject(data) && data.page !== undefined ? { page: data.page } : {}); break;
      default: call = s.action(action, pk === "" ? { data } : { pk, data });
    }
  } catch (err) {
    showError(err.message, ui.data);
    return;
  }
  try {
    const r = await call;
    const n = Array.isArray(r.data) ? r.data.length + (r.truncatedPks || []).length : null;
    logReply(w, stream, action, r.requestId, {
      status: r.status, pk: r.pk, version: r.version, cursor: r.cursor,
      extra: n === null ? (r.truncated ? "truncated" : "") : `page ${r.page}: ${n} objects`, result: r,
    });
  } catch (err) {
    logFailure(w, stream, action, err);
  }
}

// logReply logs the client's answer to a request: its status, pk, version
// and cursor, timed and shown as its frame if the wire saw it.
function logReply(w, stream, action, requestId, e) {
  const r = requestId === null ? undefined : w.records.get(requestId);
  const ms = r && r.repliedAt !== undefined ? r.repliedAt - r.sentAt : null;
  const parts = [`${e.status}`, `${stream} ${action}`];
  if (e.pk) parts.push(`pk ${e.pk}`);
  if (e.version !== null && e.version !== undefined) parts.push(`version ${e.version}`);
  if (e.cursor) parts.push(`cursor ${e.cursor}`);
  if (e.extra) parts.push(e.extra);
  if (e.errors) parts.push(e.errors);
  parts.push(`request_id ${requestId}`);
  addEntry({
    kind: "reply", stream, action, status: e.status, ok: e.status >= 200 && e.status < 300,
    pk: e.pk, version: e.version, cursor: e.cursor, requestID: requestId, ms,
    time: ms === null ? "unmatched" : fmtMs(ms), summary: parts.join(" · "), body: r && r.reply !== undefined ? r.reply : e.result,
  });
}

// logFailure logs a request the server refused (WsbindError) or that got no
// reply (ConnectionError, TimeoutError).
function logFailure(w, stream, action, err) {
  if (err instanceof WsbindError) {
    logReply(w, stream, action, err.requestId, { status: err.status, errors: err.messages.join("; "), result: { status: err.status, errors: err.errors } });
  } else {
    addEntry({ kind: "event", label: "no reply", ok: false, stream, action, summary: `${stream} ${action}: ${err.message}`, body: { error: err.name, message: err.message, idempotencyKey: err.idempotencyKey } });
  }
}

// --- subscriptions ---

// What names a subscription: its stream, action(s), pk and filter.
function subInfo(stream, pk, data) {
  const subPK = pk !== "" ? pk : data.pk === undefined || data.pk === null ? null : String(data.pk);
  const f = data.filter;
  const filter = isObject(f) && Object.keys(f).length > 0 ? JSON.stringify(f, Object.keys(f).sort()) : null;
  return { stream, action: String(data.action), pk: subPK, filter };
}

const subKey = (s) => JSON.stringify([s.stream, s.action, s.pk, s.filter]);

function subscribe(stream, pk, data) {
  const info = subInfo(stream, pk, data);
  const key = subKey(info);
  if (subs.has(key)) {
    showError("This connection already has that subscription: unsubscribe first.", ui.data);
    return;
  }
  const w = wire;
  const mark = w.sends;
  const opts = {
    action: data.action,
    onEvent: (ev) => logEvent(w, ev),
    onError: (err) => {
      if (subs.get(key) !== info) return;
      subs.delete(key);
      renderSubs();
      logFailure(w, stream, "subscribe", err);
    },
  };
  if (info.pk !== null) opts.pk = info.pk;
  if (isObject(data.filter)) opts.filter = data.filter;
  if (data.since !== undefined && data.since !== null) opts.since = String(data.since);
  try {
    info.sub = client.stream(stream).subscribe(opts);
  } catch (err) {
    showError(err.message, ui.data);
    return;
  }
  subs.set(key, info);
  info.sub.ready.then(() => {
    if (subs.get(key) !== info) return;
    info.ready = true;
    // The replies to its subscribes (one per action), as the wire saw them.
    const sent = w.since(mark, (r) => r.stream === stream && r.action === "subscribe" && r.reply !== undefined &&
      info.sub.actions.includes(r.payload.data?.action));
    const first = sent[0];
    const reply = first ? parse(first.reply).payload : {};
    logReply(w, stream, "subscribe", first ? String(first.payload.request_id) : null, {
      status: reply.response_status ?? 200, pk: info.pk, cursor: typeof reply.cursor === "string" ? reply.cursor : info.sub.cursor,
      extra: reply.data?.gap ? "gap: too far back to replay" : data.since ? `replayed from ${data.since}` : "",
      result: { subscribed: info.sub.actions, cursor: info.sub.cursor },
    });
    renderSubs();
  }, () => {}); // onError logs it
}

async function unsubscribe(stream, pk, data) {
  const key = subKey(subInfo(stream, pk, data));
  const info = subs.get(key);
  if (!info) {
    showError("This connection has no such subscription (see Subscriptions).", ui.data);
    return;
  }
  subs.delete(key);
  renderSubs();
  const w = wire;
  const mark = w.sends;
  await info.sub.unsubscribe();
  const sent = w.since(mark, (r) => r.stream === stream && r.action === "unsubscribe" && r.reply !== undefined);
  if (sent.length === 0) {
    addEntry({ kind: "event", label: "unsubscribed", stream, action: "unsubscribe", summary: `${stream} ${info.action}: ended (no connection to tell the server on)` });
    return;
  }
  for (const r of sent) {
    const reply = parse(r.reply).payload;
    logReply(w, stream, "unsubscribe", String(r.payload.request_id), {
      status: reply.response_status, pk: info.pk,
      errors: (reply.errors || []).map((e) => (typeof e === "string" ? e : JSON.stringify(e))).join("; "),
    });
  }
}

// pushKey names one change as pushed: a replayed and a live copy of a
// change share it, as do the copies handed to several subscriptions.
function pushKey(stream, action, pk, version, cursor) {
  return JSON.stringify([String(stream), String(action), String(pk), version ?? null, cursor ?? null]);
}

// logEvent logs what a subscription hands over: a change, pushed live or
// replayed, or a gap. A push taken by several subscriptions is logged once.
function logEvent(w, ev) {
  if (ev.gap) {
    addEntry({
      kind: "gap", stream: ev.stream, action: ev.action, ok: false,
      summary: `${ev.stream} ${ev.action}: changes may have been missed (${ev.reason === "server" ? "the server cannot replay that far back" : "resubscribed without a cursor"}); list again`,
      body: ev,
    });
    renderSubs();
    return;
  }
  const frame = w.pushes.get(pushKey(ev.stream, ev.action, ev.pk, ev.version, ev.cursor));
  if (frame) {
    if (frame.logged) return;
    frame.logged = true;
  }
  const ms = performance.now() - openedAt;
  const parts = [`${ev.stream} ${ev.action}`, `pk ${ev.pk}`, `version ${ev.version ?? "none"}`, `cursor ${ev.cursor ?? "none"}`];
  if (ev.model) parts.push(ev.model);
  if (ev.truncated) parts.push("truncated");
  addEntry({
    kind: "push", label: ev.replay ? "replay" : "push", stream: ev.stream, action: ev.action,
    pk: ev.pk, version: ev.version, cursor: ev.cursor, replay: ev.replay, ms, time: `+${fmtMs(ms)}`,
    summary: parts.join(" · "), body: frame ? frame.text : ev,
  });
  renderSubs();
}

function renderSubs() {
  const shown = [...subs.values()].filter((s) => s.ready);
  ui.subs.replaceChildren(...shown.map((s) => {
    const li = document.createElement("li");
    const cursor = s.sub.cursor;
    li.dataset.stream = s.stream;
    li.dataset.action = s.action;
    li.dataset.pk = s.pk === null ? "" : s.pk;
    li.dataset.filter = s.filter === null ? "" : s.filter;
    li.dataset.cursor = cursor === null ? "" : cursor;
    li.textContent = `${s.stream} · ${s.action} · ${s.pk === null ? "every object" : `pk ${s.pk}`}${s.filter === null ? "" : ` · filter ${s.filter}`} · cursor ${cursor ?? "none"}`;
    return li;
  }));
  ui.subsEmpty.hidden = shown.length > 0;
}

// --- log ---

function addEntry(e) {
  const li = document.createElement("li");
  li.dataset.kind = e.kind;
  for (const k of ["stream", "action", "status", "ok", "pk", "version", "cursor", "replay"]) {
    if (e[k] !== undefined && e[k] !== null) li.dataset[k] = String(e[k]);
  }
  if (e.requestID !== undefined && e.requestID !== null) li.dataset.requestId = JSON.stringify(e.requestID);
  if (typeof e.ms === "number") li.dataset.ms = e.ms.toFixed(1);
  const details = document.createElement("details");
  const summary = document.createElement("summary");
  const kind = document.createElement("span");
  kind.className = "kind";
  kind.textContent = e.label || e.kind;
  const time = document.createElement("span");
  time.className = "time";
  time.textContent = e.time || new Date().toLocaleTimeString();
  summary.append(kind, " ", time, " · ", e.summary);
  details.append(summary);
  if (e.body !== undefined) {
    const pre = document.createElement("pre");
    let body = e.body;
    if (typeof body === "string") body = parse(body) ?? body;
    pre.textContent = typeof body === "string" ? body : JSON.stringify(body, null, 2);
    details.append(pre);
  }
  li.append(details);
  const atEnd = ui.log.scrollTop + ui.log.clientHeight >= ui.log.scrollHeight - 4;
  if (ui.newestFirst.checked) {
    ui.log.prepend(li);
    while (ui.log.children.length > maxEntries) ui.log.lastElementChild.remove();
  } else {
    ui.log.append(li);
    while (ui.log.children.length > maxEntries) ui.log.firstElementChild.remove();
    if (atEnd) ui.log.scrollTop = ui.log.scrollHeight;
  }
}

function reorderLog() {
  ui.log.setAttribute("aria-busy", "true");
  ui.log.replaceChildren(...[...ui.log.children].reverse());
  ui.log.setAttribute("aria-busy", "false");
}

// --- wiring ---

ui.conn.addEventListener("submit", (ev) => {
  ev.preventDefault();
  connectClient();
});
ui.disconnect.addEventListener("click", disconnect);
ui.token.addEventListener("input", () => {
  ui.endpoint.textContent = shownURL(ui.token.value.trim());
});
ui.request.addEventListener("submit", (ev) => {
  ev.preventDefault();
  send();
});
ui.stream.addEventListener("change", fillActions);
ui.action.addEventListener("change", actionChanged);
ui.data.addEventListener("input", () => {
  dataEdited = ui.data.value.trim() !== "";
  clearError();
});
ui.newestFirst.addEventListener("change", reorderLog);
ui.clear.addEventListener("click", () => ui.log.replaceChildren());
document.addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
    ev.preventDefault();
    send();
  }
});

ui.endpoint.textContent = shownURL("");
renderSubs();
loadBindings();
