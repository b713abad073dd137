// The server's filter semantics (protocol §4), applied on the client: to route
// a push to the subscriptions it concerns, and for a snapshot's listing, which
// the server does not filter.
/**
 * Whether an object matches a filter: every named field equals its value.
 * Numbers compare by value, and a string never equals a number. An object the
 * client cannot see (null: a truncated push) counts as matching, since the
 * server already decided it concerns the subscriber.
 */
export function matchesFilter(filter, data) {
    if (!filter)
        return true;
    if (data === null || typeof data !== "object" || Array.isArray(data))
        return true;
    const obj = data;
    for (const [field, want] of Object.entries(filter)) {
        if (!Object.prototype.hasOwnProperty.call(obj, field))
            return false;
        if (obj[field] !== want)
            return false;
    }
    return true;
}
