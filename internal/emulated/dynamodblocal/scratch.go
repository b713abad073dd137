package dynamodblocal

import (
	"encoding/json"
	"maps"
	"regexp"
	"slices"
)

// minidyn is the wrapper's scratch space, not its storage. The items
// live in the wrapper's tables only (table.items: the exact items, once
// each); minidyn holds the tables' definitions and, between requests, no
// item at all. A request minidyn must decide (a write with its
// condition and update expression, a transaction, a read the wrapper
// does not answer itself) has the items it touches loaded into minidyn
// first, under s.mu held alone, and unloaded when it is done. minidyn
// then sees exactly the items it would have held, so its answer is the
// same, while every stored item costs its exact JSON once instead of
// that plus minidyn's decoded copy of it and of each index entry
// (BenchmarkEmulator_Memory; RATIONALE: "Why does the emulator's
// DynamoDB keep each item once?").

// load puts items into minidyn's copy of t, as they are (nil ones are
// skipped). The caller holds s.mu alone and unloads them after.
func (s *Server) load(t *table, items ...item) error {
	for _, it := range items {
		if it == nil {
			continue
		}
		if _, err := s.call("PutItem", map[string]any{"TableName": t.name, "Item": it}); err != nil {
			return err
		}
	}
	return nil
}

// unload deletes from minidyn's copy of t the items under keys (each
// the key attributes of an item), so that minidyn holds nothing again.
// A delete of a key minidyn does not hold is no error there; an error
// (which minidyn gives only for a malformed key, one it refused anyway)
// is ignored: the next load of that key overwrites what is left.
func (s *Server) unload(t *table, keys ...item) {
	for _, k := range keys {
		if len(k) == 0 || slices.ContainsFunc(slices.Collect(maps.Values(k)), func(v json.RawMessage) bool { return v == nil }) {
			continue
		}
		_, _ = s.call("DeleteItem", map[string]any{"TableName": t.name, "Key": k})
	}
}

// loadFor puts into minidyn the items of t a Scan or a Query (one the
// partition index does not answer itself: a filter, say) may read, and
// returns their keys, to unload: for a Query whose key condition names
// its partition, that partition's items (from the partition index, so
// that such a query costs its partition, not the table); otherwise
// every item of t.
func (s *Server) loadFor(t *table, op string, body []byte) ([]item, error) {
	var keys []string
	if op == "Query" {
		keys = queryPartition(t, body)
	}
	if keys == nil {
		keys = slices.Sorted(maps.Keys(t.items))
	}
	loaded := make([]item, 0, len(keys))
	for _, k := range keys {
		it := t.items[k]
		if err := s.load(t, it); err != nil {
			s.unload(t, loaded...)
			return nil, err
		}
		if it != nil {
			loaded = append(loaded, keyOf(t, it))
		}
	}
	return loaded, nil
}

// hashCondition finds the partition key's equality in a key condition:
// "#name = :value" (or the other way round) among its AND-ed terms.
var hashCondition = regexp.MustCompile(`(?:^|\s(?i:AND)\s)\s*(?:(#[A-Za-z0-9_]+)\s*=\s*(:[A-Za-z0-9_]+)|(:[A-Za-z0-9_]+)\s*=\s*(#[A-Za-z0-9_]+))\s*(?:$|\s(?i:AND)\s)`)

// queryPartition returns the keys of the items in the partition a
// Query's key condition names, nil when it cannot tell (then every item
// is loaded, and minidyn sorts it out).
func queryPartition(t *table, body []byte) []string {
	var in struct {
		IndexName                 string
		KeyConditionExpression    string
		ExpressionAttributeNames  map[string]string
		ExpressionAttributeValues map[string]json.RawMessage
	}
	if json.Unmarshal(body, &in) != nil {
		return nil
	}
	ix := t.indexes[in.IndexName]
	if ix == nil {
		return nil
	}
	for _, m := range hashCondition.FindAllStringSubmatch(in.KeyConditionExpression, -1) {
		name, val := m[1], m[2]
		if name == "" {
			name, val = m[4], m[3]
		}
		if in.ExpressionAttributeNames[name] != ix.hash {
			continue
		}
		part, ok := stringAttr(item{"v": in.ExpressionAttributeValues[val]}, "v")
		if !ok {
			return nil
		}
		es := ix.parts[part]
		keys := make([]string, len(es))
		for i, e := range es {
			keys[i] = e.key
		}
		return keys
	}
	return nil
}
