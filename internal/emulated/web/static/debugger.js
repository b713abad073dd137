// The wsbind debugger: connects to the WebSocket API at this page's origin,
// sends frames built from the bindings in bindings.json, and logs replies
// (timed from their request) and pushes (timed from the connection).
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const ui = {
    status: $("status"), conn: $("conn"), token: $("token"), connect: $("connect"),
    disconnect: $("disconnect"), endpoint: $("endpoint"), request: $("request"),
    stream: $("stream"), action: $("action"), pk: $("pk"), pkHint: $("pk-hint"),
    data: $("data"), dataError: $("data-error"), nextID: $("next-id"),
    subs: $("subs"), subsEmpty: $("subs-empty"), log: $("log"),
    newestFirst: $("newest-first"), clear: $("clear"),
  };
  const maxEntries = 500;

  let streams = []; // from bindings.json
  let ws = null; // the current WebSocket, or null
  let openedAt = 0; // performance.now() when ws opened
  let seq = 0; // request_ids sent on this page
  let dataEdited = false; // whether the user typed data (templates stop)
  const session = Math.random().toString(36).slice(2, 6);
  const pending = new Map(); // JSON of request_id -> {at, sub}
  const subs = new Map(); // stream, action, pk -> {stream, action, pk}

  const nextID = () => `${session}-${seq + 1}`;

  function socketURL(token) {
    const u = new URL("/", location.href);
    u.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    if (token) u.searchParams.set("token", token);
    return u.href;
  }

  function shownURL(token) {
    return token ? socketURL("").replace(/\/?$/, "/?token=…") : socketURL("");
  }

  function fmtMs(ms) {
    return ms < 1000 ? `${ms.toFixed(1)} ms` : `${(ms / 1000).toFixed(3)} s`;
  }

  function setStatus(state, text) {
    ui.status.dataset.state = state;
    ui.status.textContent = text;
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

  function connect() {
    if (ws) return;
    const token = ui.token.value.trim();
    const sock = new WebSocket(socketURL(token));
    ws = sock;
    setStatus("connecting", `Connecting to ${shownURL(token)}…`);
    ui.connect.disabled = true;
    ui.disconnect.disabled = false;
    sock.onopen = () => {
      openedAt = performance.now();
      setStatus("open", `Connected to ${shownURL(token)}.`);
      addEntry({ kind: "event", label: "open", summary: `connected to ${shownURL(token)}` });
    };
    sock.onmessage = (ev) => receive(ev.data, performance.now());
    sock.onclose = (ev) => {
      if (ws !== sock) return;
      ws = null;
      const why = `code ${ev.code}${ev.reason ? `: ${ev.reason}` : ""}`;
      setStatus(ev.code === 1000 ? "closed" : "error", `Disconnected (${why}).`);
      addEntry({ kind: "event", label: "closed", ok: ev.code === 1000, summary: `connection closed, ${why}` });
      ui.connect.disabled = false;
      ui.disconnect.disabled = true;
      pending.clear();
      subs.clear();
      renderSubs();
      if (document.activeElement === ui.disconnect || document.activeElement === document.body) ui.connect.focus();
    };
  }

  function disconnect() {
    if (ws) ws.close(1000, "closed by the debugger");
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

  function send() {
    clearError();
    if (!ws || ws.readyState !== WebSocket.OPEN) {
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
    const requestID = nextID();
    seq++;
    ui.nextID.textContent = nextID();
    const payload = { action };
    if (pk !== "") payload.pk = pk;
    payload.data = data;
    payload.request_id = requestID;
    let sub = null;
    if ((action === "subscribe" || action === "unsubscribe") && data && typeof data === "object" && !Array.isArray(data)) {
      const subPK = pk !== "" ? pk : data.pk;
      const filter = data.filter && typeof data.filter === "object" && Object.keys(data.filter).length > 0 ? data.filter : null;
      sub = {
        stream, action: String(data.action), pk: subPK === undefined || subPK === null ? null : String(subPK),
        filter: filter === null ? null : JSON.stringify(filter, Object.keys(filter).sort()),
        remove: action === "unsubscribe",
      };
    }
    const frame = JSON.stringify({ stream, payload });
    pending.set(JSON.stringify(requestID), { at: performance.now(), sub });
    ws.send(frame);
    addEntry({
      kind: "sent", stream, action, requestID,
      summary: `${stream} ${action}${pk ? ` pk=${pk}` : ""} · request_id ${requestID}`, body: frame,
    });
  }

  // --- frames in ---

  function receive(text, now) {
    let msg = null;
    try {
      msg = JSON.parse(text);
    } catch {
      // shown as it came
    }
    const p = msg && typeof msg === "object" ? msg.payload : null;
    if (!p || typeof p !== "object") {
      addEntry({ kind: "message", summary: "frame that is not a reply or a push", body: text });
      return;
    }
    const stream = typeof msg.stream === "string" ? msg.stream : String(msg.stream);
    if ("response_status" in p) {
      const key = JSON.stringify(p.request_id === undefined ? null : p.request_id);
      const req = pending.get(key);
      pending.delete(key);
      const status = p.response_status;
      const ok = status >= 200 && status < 300;
      if (req && req.sub && status === 200) (req.sub.remove ? removeSub : addSub)(req.sub);
      const ms = req ? now - req.at : null;
      addEntry({
        kind: "reply", stream, action: p.action, status, ok, ms, requestID: p.request_id,
        time: ms === null ? "unmatched" : fmtMs(ms),
        summary: `${status} · ${stream} ${p.action} · request_id ${typeof p.request_id === "string" ? p.request_id : JSON.stringify(p.request_id)}`,
        body: msg,
      });
    } else if ("model" in p) {
      const ms = now - openedAt;
      addEntry({
        kind: "push", stream, action: p.action, ms, time: `+${fmtMs(ms)}`,
        summary: `${stream} ${p.action} · ${p.model} pk=${p.pk}`, body: msg,
      });
    } else {
      addEntry({ kind: "message", summary: `${stream}`, body: msg });
    }
  }

  // --- subscriptions ---

  const subKey = (s) => JSON.stringify([s.stream, s.action, s.pk, s.filter]);

  function addSub(s) {
    subs.set(subKey(s), s);
    renderSubs();
  }

  function removeSub(s) {
    subs.delete(subKey(s));
    renderSubs();
  }

  function renderSubs() {
    ui.subs.replaceChildren(...[...subs.values()].map((s) => {
      const li = document.createElement("li");
      li.dataset.stream = s.stream;
      li.dataset.action = s.action;
      li.dataset.pk = s.pk === null ? "" : s.pk;
      li.dataset.filter = s.filter === null ? "" : s.filter;
      li.textContent = `${s.stream} · ${s.action} · ${s.pk === null ? "every object" : `pk ${s.pk}`}${s.filter === null ? "" : ` · filter ${s.filter}`}`;
      return li;
    }));
    ui.subsEmpty.hidden = subs.size > 0;
  }

  // --- log ---

  function addEntry(e) {
    const li = document.createElement("li");
    li.dataset.kind = e.kind;
    for (const k of ["stream", "action", "status", "ok"]) {
      if (e[k] !== undefined && e[k] !== null) li.dataset[k] = String(e[k]);
    }
    if (e.requestID !== undefined) li.dataset.requestId = JSON.stringify(e.requestID);
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
      if (typeof body === "string") {
        try {
          body = JSON.parse(body);
        } catch {
          // not JSON: show the text
        }
      }
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
    connect();
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
  ui.nextID.textContent = nextID();
  renderSubs();
  loadBindings();
})();
