// A materialized view of a stream: every object (matching a filter) in a Map,
// kept current by a subscription, and rebuilt by listing again whenever the
// subscription reports a gap.
import { ConnectionError, WsbindError } from "./errors.js";
import { matchesFilter } from "./filter.js";
import { sleep } from "./runtime.js";
const ALL = ["create", "update", "delete"];
const RETRY_MS = 1000;
/** A stream's objects by pk, kept up to date. Create it with snapshot(stream) or stream.snapshot(). */
export class Snapshot {
    stream;
    filter;
    opts;
    map = new Map();
    /** The highest version seen per pk, deletes included, so that nothing older is applied after them. */
    versions = new Map();
    /** While a listing runs: the pks that changes touched meanwhile, which the listing must not overwrite. */
    touched = null;
    sub = null;
    resyncing = null;
    again = false;
    closed = false;
    relists = 0;
    /** Use snapshot() or stream.snapshot(). */
    constructor(stream, opts) {
        this.stream = stream;
        this.opts = opts;
        this.filter = opts.filter && Object.keys(opts.filter).length > 0 ? opts.filter : null;
    }
    /** The objects, by pk. The map is live: it changes as events arrive. */
    get objects() {
        return this.map;
    }
    /** The subscription that keeps the view current. */
    get subscription() {
        if (!this.sub)
            throw new Error("wsbind: snapshot not started");
        return this.sub;
    }
    /** How many times the view was listed again after a gap. */
    get resyncs() {
        return this.relists;
    }
    /** Stops following changes; the map keeps its last state. */
    async close() {
        this.closed = true;
        await this.sub?.unsubscribe();
    }
    /** @internal */
    async _start() {
        const timeoutMs = this.opts.timeoutMs;
        const listing = await this.stream.listAll({ timeoutMs });
        const base = { action: ALL, onEvent: (e) => this.apply(e), timeoutMs };
        const filter = this.filter ? { filter: this.filter } : {};
        if (listing.cursor !== null) {
            // Listed at a position: the subscription replays every change after it.
            this.merge(listing, new Set());
            this.sub = this.stream.subscribe({ ...base, ...filter, since: listing.cursor });
            await this.ready();
        }
        else {
            // A server without cursors: subscribe first, so that changes made while
            // listing are pushed, then list; pushes win over the listing.
            this.sub = this.stream.subscribe({ ...base, ...filter });
            await this.ready();
            await this.relist();
        }
        this.opts.onChange?.(this, null);
    }
    async ready() {
        try {
            await this.sub.ready;
        }
        catch (e) {
            this.closed = true;
            throw e;
        }
    }
    apply(e) {
        if (this.closed)
            return;
        if (e.gap) {
            this.resync();
            return;
        }
        const known = this.versions.get(e.pk);
        if (e.version !== null) {
            if (known !== undefined && e.version <= known)
                return;
            this.versions.set(e.pk, e.version);
        }
        this.touched?.add(e.pk);
        if (e.action === "delete") {
            this.map.delete(e.pk);
        }
        else if (e.truncated) {
            void this.fetch(e.pk);
            return;
        }
        else {
            this.map.set(e.pk, e.data);
        }
        this.opts.onChange?.(this, e);
    }
    /** Reads an object the server could not send in full (a truncated push or list entry). */
    async fetch(pk) {
        try {
            const r = await this.stream.retrieve(pk, { timeoutMs: this.opts.timeoutMs });
            const known = this.versions.get(pk);
            if (r.version !== null) {
                if (known !== undefined && r.version < known)
                    return;
                this.versions.set(pk, r.version);
            }
            if (matchesFilter(this.filter, r.data))
                this.map.set(pk, r.data);
            else
                this.map.delete(pk);
        }
        catch (e) {
            if (e instanceof WsbindError && e.status === 404)
                this.map.delete(pk);
            else if (e instanceof Error)
                this.opts.onError?.(e);
        }
        if (!this.closed)
            this.opts.onChange?.(this, null);
    }
    /** Lists again after a gap; one relisting at a time, and one more if a gap came meanwhile. */
    resync() {
        this.relists++;
        if (this.resyncing) {
            this.again = true;
            return;
        }
        this.resyncing = (async () => {
            do {
                this.again = false;
                try {
                    await this.relist();
                    if (!this.closed)
                        this.opts.onChange?.(this, null);
                }
                catch (e) {
                    if (this.closed || !(e instanceof Error))
                        break;
                    this.opts.onError?.(e);
                    if (!(e instanceof ConnectionError))
                        break; // refused: retrying would be refused too
                    await sleep(RETRY_MS);
                    this.again = true;
                }
            } while (this.again && !this.closed && this.sub?.active !== false);
            this.resyncing = null;
        })();
    }
    async relist() {
        const touched = new Set();
        this.touched = touched;
        let listing;
        try {
            listing = await this.stream.listAll({ timeoutMs: this.opts.timeoutMs });
        }
        finally {
            if (this.touched === touched)
                this.touched = null;
        }
        if (this.closed)
            return;
        this.merge(listing, touched);
        this.sub?._resumeFromIfUnset(listing.cursor);
    }
    /** Takes a listing as the truth for every pk that no change touched while it was read. */
    merge(listing, touched) {
        const fresh = new Map();
        for (const obj of listing.data) {
            if (matchesFilter(this.filter, obj))
                fresh.set(pkOf(obj), obj);
        }
        const stubs = new Set(listing.truncatedPks);
        for (const [pk, obj] of fresh)
            if (!touched.has(pk))
                this.map.set(pk, obj);
        for (const pk of [...this.map.keys()]) {
            if (!fresh.has(pk) && !touched.has(pk) && !stubs.has(pk))
                this.map.delete(pk);
        }
        for (const pk of stubs)
            if (!touched.has(pk))
                void this.fetch(pk);
    }
}
function pkOf(obj) {
    return String(obj.id);
}
/**
 * Every object of a stream (matching opts.filter) in a Map kept up to date:
 * lists all pages, then subscribes to creates, updates and deletes from the
 * first page's cursor, so that no change made meanwhile is missed. Resolves
 * once the view is complete.
 */
export async function snapshot(stream, opts = {}) {
    const snap = new Snapshot(stream, opts);
    await snap._start();
    return snap;
}
