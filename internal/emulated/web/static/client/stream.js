// One binding's actions as methods: the requests of protocol §3, their replies
// as typed values.
import { WsbindError } from "./errors.js";
import { newKey } from "./runtime.js";
import { snapshot } from "./snapshot.js";
import { Subscription } from "./subscription.js";
/** A stream (binding) of objects of type T, on one client. Get it from client.stream(name). */
export class Stream {
    /** @internal */
    _client;
    name;
    /** Use client.stream(name). */
    constructor(client, name) {
        this._client = client;
        this.name = name;
    }
    /** Creates an object: 201 and the object as the server stored it. */
    create(data, opts = {}) {
        return this.write("create", undefined, data, opts);
    }
    /** The object with that pk; a WsbindError 404 when it does not exist or is not yours to see. */
    async retrieve(pk, opts = {}) {
        const payload = { action: "retrieve", pk };
        const reply = await this._client._request(this.name, payload, { timeoutMs: opts.timeoutMs, resend: true });
        return toReply(reply, String(pk), null);
    }
    /** Replaces the object's fields: every required field must be given. */
    update(pk, data, opts = {}) {
        return this.write("update", pk, data, opts);
    }
    /** Changes only the fields given. */
    patch(pk, data, opts = {}) {
        return this.write("patch", pk, data, opts);
    }
    /** Deletes the object; the reply's version is the one after its last. */
    delete(pk, opts = {}) {
        return this.write("delete", pk, undefined, opts);
    }
    /** One page of objects, in pk order (page 1 unless told). Past the last page: WsbindError 404 "Invalid page.". */
    async list(opts = {}) {
        const page = opts.page ?? 1;
        const payload = { action: "list" };
        if (opts.page !== undefined)
            payload["data"] = { page };
        const reply = await this._client._request(this.name, payload, { timeoutMs: opts.timeoutMs, resend: true });
        const items = Array.isArray(reply.data) ? reply.data : [];
        const data = [];
        const truncatedPks = [];
        for (const item of items) {
            const obj = item;
            if (obj !== null && typeof obj === "object" && obj.truncated === true)
                truncatedPks.push(String(obj.id));
            else
                data.push(item);
        }
        return {
            ...meta(reply, null, null),
            data,
            truncatedPks,
            cursor: typeof reply.cursor === "string" ? reply.cursor : null,
            page,
        };
    }
    /**
     * Every page, from the first until one is empty, shorter than the first, or
     * past the last. The cursor is the first page's.
     */
    async listAll(opts = {}) {
        const out = { data: [], truncatedPks: [], cursor: null, pages: 0 };
        let size = 0;
        for (let page = 1;; page++) {
            let p;
            try {
                p = await this.list({ ...opts, page });
            }
            catch (e) {
                if (page > 1 && e instanceof WsbindError && e.status === 404)
                    break;
                throw e;
            }
            out.pages = page;
            if (page === 1)
                out.cursor = p.cursor;
            out.data.push(...p.data);
            out.truncatedPks.push(...p.truncatedPks);
            const n = p.data.length + p.truncatedPks.length;
            if (page === 1)
                size = n;
            if (n === 0 || n < size)
                break;
        }
        return out;
    }
    /**
     * A custom action: a detail action with `pk`, a list action without. It
     * may write, so it carries an idempotency key and is resent after a drop
     * like every write.
     */
    action(name, opts = {}) {
        return this.write(name, opts.pk, opts.data, opts);
    }
    /**
     * Follows changes: an async iterable of events that also calls onEvent.
     * Resubscribes after every reconnect, from the last cursor seen.
     */
    subscribe(opts) {
        return new Subscription(this._client, this.name, opts);
    }
    /** Every object (matching the filter), kept up to date: see snapshot(). */
    snapshot(opts = {}) {
        return snapshot(this, opts);
    }
    async write(action, pk, data, opts) {
        const key = opts.idempotencyKey ?? newKey();
        const payload = { action, idempotency_key: key };
        if (pk !== undefined)
            payload["pk"] = pk;
        if (data !== undefined)
            payload["data"] = data;
        if (opts.ifVersion !== undefined)
            payload["if_version"] = opts.ifVersion;
        const reply = await this._client._request(this.name, payload, { timeoutMs: opts.timeoutMs, resend: true });
        return toReply(reply, pk === undefined ? null : String(pk), key);
    }
}
function meta(reply, pk, key) {
    const rid = reply.request_id;
    return {
        status: reply.response_status,
        version: typeof reply.version === "number" ? reply.version : null,
        pk,
        requestId: typeof rid === "string" ? rid : String(rid),
        idempotencyKey: key,
    };
}
function toReply(reply, requestPk, key) {
    let pk = requestPk;
    if (typeof reply.pk === "string" || typeof reply.pk === "number")
        pk = String(reply.pk);
    else if (pk === null) {
        const id = reply.data?.id;
        if (typeof id === "string" || typeof id === "number")
            pk = String(id);
    }
    const m = meta(reply, pk, key);
    if (reply.truncated === true)
        return { ...m, pk: pk ?? "", data: null, truncated: true };
    return { ...m, data: (reply.data ?? null), truncated: false };
}
