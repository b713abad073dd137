// Two kinds of failure: the server answered no (WsbindError, with the status and
// DRF-style errors of the reply), or no answer came (ConnectionError, and its
// TimeoutError). Only the second leaves a write's fate unknown, which is why it
// carries the idempotency key to retry with.
/** The server answered the request with a status of 400 or more. */
export class WsbindError extends Error {
    name = "WsbindError";
    /** The reply's response_status: 400, 401, 404, 409, 413, 500... */
    status;
    /**
     * The reply's errors: a list of messages (`["Not found."]`), or the field
     * errors of a validation failure (`{question_text: ["This field is required."]}`),
     * unwrapped from the one-element list the wire carries them in.
     */
    errors;
    stream;
    action;
    requestId;
    idempotencyKey;
    constructor(status, errors, info) {
        super(`${info.stream} ${info.action}: ${status} ${flatten(errors).join("; ")}`);
        this.status = status;
        this.errors = errors;
        this.stream = info.stream;
        this.action = info.action;
        this.requestId = info.requestId;
        this.idempotencyKey = info.idempotencyKey;
    }
    /** Every message, field errors as "field: message". */
    get messages() {
        return flatten(this.errors);
    }
    /** The field errors, or undefined when the errors are plain messages. */
    get fieldErrors() {
        return Array.isArray(this.errors) ? undefined : this.errors;
    }
}
/**
 * No reply came: the client was closed, or the connection was lost for a
 * request that is not resent. A write may or may not have run: retry it with
 * the same idempotencyKey to have it run at most once.
 */
export class ConnectionError extends Error {
    name = "ConnectionError";
    stream;
    action;
    requestId;
    idempotencyKey;
    constructor(message, info, options) {
        super(message, options);
        this.stream = info?.stream ?? null;
        this.action = info?.action ?? null;
        this.requestId = info?.requestId ?? null;
        this.idempotencyKey = info?.idempotencyKey ?? null;
    }
}
/** No reply came within the request's timeout (across reconnects). */
export class TimeoutError extends ConnectionError {
    name = "TimeoutError";
    timeoutMs;
    constructor(timeoutMs, info) {
        super(`${info.stream} ${info.action}: no reply within ${timeoutMs} ms`, info);
        this.timeoutMs = timeoutMs;
    }
}
/** The wire's errors as an ErrorDetail: `["m"]` stays, `[{"f": ["m"]}]` becomes `{f: ["m"]}`. */
export function errorDetail(raw) {
    if (!Array.isArray(raw))
        return raw == null ? [] : [String(raw)];
    const messages = [];
    let fields;
    for (const item of raw) {
        if (typeof item === "string") {
            messages.push(item);
        }
        else if (item !== null && typeof item === "object" && !Array.isArray(item)) {
            fields ??= {};
            for (const [k, v] of Object.entries(item)) {
                const list = Array.isArray(v) ? v.map(String) : [String(v)];
                fields[k] = (fields[k] ?? []).concat(list);
            }
        }
        else {
            messages.push(JSON.stringify(item));
        }
    }
    if (!fields)
        return messages;
    // Both kinds in one reply does not happen today; keep the messages where
    // DRF puts errors that belong to no field.
    if (messages.length > 0)
        fields["non_field_errors"] = (fields["non_field_errors"] ?? []).concat(messages);
    return fields;
}
function flatten(errors) {
    if (Array.isArray(errors))
        return errors;
    return Object.entries(errors).flatMap(([field, msgs]) => msgs.map((m) => `${field}: ${m}`));
}
