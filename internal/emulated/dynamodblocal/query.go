package dynamodblocal

import (
	"bytes"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
)

// minidyn answers a Query by matching every item of the table (or
// index) against the key condition, so a query of one small partition
// costs the whole table: the fan-out's query of one topic, and a list of
// one stream, slowed down as the tables grew. The wrapper therefore keeps
// a partition index of each table, and of each global secondary index,
// whose key attributes are strings, and answers the Query the framework
// sends itself: equality on the partition key, and maybe on the sort key
// too (a read of every scope looks an id up in by_binding), with or
// without Limit, ExclusiveStartKey, ScanIndexForward, Select COUNT and a
// projection of top-level attributes. Anything else (a filter, another
// condition on the sort key, legacy parameters, a request DynamoDB would
// refuse) goes to minidyn as before, which keeps the one source of
// DynamoDB's rules and errors.

// index is the partition index of a table or of one of its global
// secondary indexes.
type index struct {
	hash, rng string   // key attributes; rng is "" without a sort key
	tieKeys   []string // a global index's table key attributes, hash first; nil for the table's own
	keysOnly  bool     // a global secondary index projecting keys only
	parts     map[string][]entry
}

// entry is an item in its partition: its sort key value, then its key in
// the table, the order a Query returns. tie orders items of a global
// index whose sort keys are equal (one id in several scopes, one
// connection's subscription in several topics) as minidyn does: by the
// table's key values, hash first, in byte order (tieKey). key is
// keyString, which identifies the item.
type entry struct{ sort, tie, key string }

func (a entry) compare(b entry) int {
	if c := strings.Compare(a.sort, b.sort); c != 0 {
		return c
	}
	if c := strings.Compare(a.tie, b.tie); c != 0 {
		return c
	}
	return strings.Compare(a.key, b.key)
}

// tieKey encodes the values of the attributes names of it so that the
// encodings compare as the tuples of values do, in byte order: each
// value with its NUL bytes escaped (00 → 00 ff), then 00 01. A value
// that is not a string (a number or binary key) is taken as its JSON.
func tieKey(it item, names []string) string {
	var b strings.Builder
	for _, name := range names {
		v, ok := stringAttr(it, name)
		if !ok {
			v = string(it[name])
		}
		b.WriteString(strings.ReplaceAll(v, "\x00", "\x00\xff"))
		b.WriteString("\x00\x01")
	}
	return b.String()
}

// indexDef is a key schema of CreateTable: the table's own, or a global
// secondary index's.
type indexDef struct {
	IndexName string
	KeySchema []struct {
		AttributeName string
		KeyType       string
	}
	Projection struct{ ProjectionType string }
}

// newIndex returns the index of def in a table keyed on tableKeys, or nil
// when a key attribute is not a string or the projection is neither ALL
// nor KEYS_ONLY.
func newIndex(def indexDef, tableKeys []string, types map[string]string, gsi bool) *index {
	ix := &index{parts: map[string][]entry{}}
	if gsi {
		ix.tieKeys = tableKeys
	}
	for _, k := range def.KeySchema {
		if types[k.AttributeName] != "S" {
			return nil
		}
		switch k.KeyType {
		case "HASH":
			ix.hash = k.AttributeName
		case "RANGE":
			ix.rng = k.AttributeName
		}
	}
	if gsi {
		switch def.Projection.ProjectionType {
		case "KEYS_ONLY":
			ix.keysOnly = true
		case "ALL":
		default:
			return nil
		}
	}
	if ix.hash == "" {
		return nil
	}
	return ix
}

// stringAttr returns the value of it's attribute name if it is a string.
func stringAttr(it item, name string) (string, bool) {
	raw, ok := it[name]
	if !ok {
		return "", false
	}
	a, err := parseAttr(raw)
	if err != nil || a.typ != "S" {
		return "", false
	}
	var s string
	return s, json.Unmarshal(a.val, &s) == nil
}

// entryOf returns it's partition and entry in ix; ok is false for an
// item the index leaves out (a sparse index).
func (ix *index) entryOf(it item, key string) (part string, e entry, ok bool) {
	part, ok = stringAttr(it, ix.hash)
	if !ok {
		return "", entry{}, false
	}
	if ix.rng != "" {
		if e.sort, ok = stringAttr(it, ix.rng); !ok {
			return "", entry{}, false
		}
	}
	if ix.tieKeys != nil { // a global index: its keys may repeat
		e.tie = tieKey(it, ix.tieKeys)
	}
	e.key = key
	return part, e, true
}

func (ix *index) remove(it item, key string) {
	part, e, ok := ix.entryOf(it, key)
	if !ok {
		return
	}
	es := ix.parts[part]
	if i, found := slices.BinarySearchFunc(es, e, entry.compare); found {
		es = slices.Delete(es, i, i+1)
		if len(es) == 0 {
			delete(ix.parts, part)
		} else {
			ix.parts[part] = es
		}
	}
}

func (ix *index) add(it item, key string) {
	part, e, ok := ix.entryOf(it, key)
	if !ok {
		return
	}
	es := ix.parts[part]
	if i, found := slices.BinarySearchFunc(es, e, entry.compare); !found {
		ix.parts[part] = slices.Insert(es, i, e)
	}
}

// put makes it the item under key (nil: none), in the items and in
// every index. The caller holds s.mu alone.
func (t *table) put(key string, it item) {
	if old, ok := t.items[key]; ok {
		for _, ix := range t.indexes {
			ix.remove(old, key)
		}
	}
	if it == nil {
		delete(t.items, key)
		return
	}
	t.items[key] = it
	for _, ix := range t.indexes {
		ix.add(it, key)
	}
}

// queryPage is DynamoDB's cut of a Query's page: 1 MB of items read.
const queryPage = 1 << 20

var (
	partitionCondition = regexp.MustCompile(`^\s*(#[A-Za-z0-9_]+)\s*=\s*(:[A-Za-z0-9_]+)\s*$`)
	keyCondition       = regexp.MustCompile(`^\s*(#[A-Za-z0-9_]+)\s*=\s*(:[A-Za-z0-9_]+)\s+(?i:AND)\s+(#[A-Za-z0-9_]+)\s*(=|>=|>)\s*(:[A-Za-z0-9_]+)\s*$`)
	nameRef            = regexp.MustCompile(`^#[A-Za-z0-9_]+$`)
)

// query answers a Query of one partition from the partition index; ok is
// false for a request it leaves to minidyn. The caller holds s.mu.
func (s *Server) query(body []byte) (out rawJSON, ok bool) {
	// The members of a Query the wrapper answers itself: any other
	// (a filter, legacy parameters) leaves it to minidyn.
	var in struct {
		TableName                 string
		IndexName                 *string
		KeyConditionExpression    string
		ExpressionAttributeNames  map[string]string
		ExpressionAttributeValues map[string]json.RawMessage
		Limit                     *int
		ExclusiveStartKey         item
		ScanIndexForward          *bool
		Select                    string
		ProjectionExpression      *string
		ConsistentRead            bool
		ReturnConsumedCapacity    string
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	if d.Decode(&in) != nil {
		return nil, false
	}
	t, found := s.tables[in.TableName]
	if !found {
		return nil, false
	}
	ix := t.indexes[""]
	if in.IndexName != nil {
		if in.ConsistentRead { // DynamoDB refuses it on a global index
			return nil, false
		}
		ix = t.indexes[*in.IndexName]
	}
	if ix == nil || (in.Limit != nil && *in.Limit < 1) {
		return nil, false
	}

	// The names and values used must be exactly those given: DynamoDB
	// refuses unused ones.
	// The key condition: equality on the partition key, and maybe on the
	// sort key after it (an id looked up in every scope).
	// A sort key condition may also be a lower bound (>= or >: the
	// history read from a position on).
	var hashRef, hashVal, sortRef, sortOp, sortVal string
	if m := partitionCondition.FindStringSubmatch(in.KeyConditionExpression); m != nil {
		hashRef, hashVal = m[1], m[2]
	} else if m := keyCondition.FindStringSubmatch(in.KeyConditionExpression); m != nil {
		hashRef, hashVal, sortRef, sortOp, sortVal = m[1], m[2], m[3], m[4], m[5]
		if ix.rng == "" || in.ExpressionAttributeNames[sortRef] != ix.rng || sortRef == hashRef || sortVal == hashVal {
			return nil, false
		}
	} else {
		return nil, false
	}
	values := 1
	if sortRef != "" {
		values = 2
	}
	if in.ExpressionAttributeNames[hashRef] != ix.hash || len(in.ExpressionAttributeValues) != values {
		return nil, false
	}
	part, isS := stringAttr(item{"v": in.ExpressionAttributeValues[hashVal]}, "v")
	if !isS || part == "" { // DynamoDB refuses an empty key
		return nil, false
	}
	var sortKey string
	if sortRef != "" {
		if sortKey, isS = stringAttr(item{"v": in.ExpressionAttributeValues[sortVal]}, "v"); !isS || sortKey == "" {
			return nil, false
		}
	}
	used := map[string]bool{hashRef: true}
	if sortRef != "" {
		used[sortRef] = true
	}
	var proj []string
	if in.ProjectionExpression != nil {
		if in.Select != "" && in.Select != "SPECIFIC_ATTRIBUTES" {
			return nil, false
		}
		for ref := range strings.SplitSeq(*in.ProjectionExpression, ",") {
			ref = strings.TrimSpace(ref)
			name, named := in.ExpressionAttributeNames[ref]
			if !nameRef.MatchString(ref) || !named {
				return nil, false
			}
			used[ref] = true
			proj = append(proj, name)
		}
	}
	if len(used) != len(in.ExpressionAttributeNames) {
		return nil, false
	}
	keyNames := slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(t.keys), ix.hash, ix.rng))))
	keyNames = slices.DeleteFunc(keyNames, func(n string) bool { return n == "" })
	countOnly := false
	switch in.Select {
	case "", "ALL_PROJECTED_ATTRIBUTES":
		if ix.keysOnly && proj == nil {
			proj = keyNames
		}
	case "ALL_ATTRIBUTES":
		if ix.keysOnly {
			return nil, false
		}
	case "COUNT":
		countOnly = true
	case "SPECIFIC_ATTRIBUTES":
		if proj == nil {
			return nil, false
		}
	default:
		return nil, false
	}
	if ix.keysOnly {
		for _, name := range proj {
			if !slices.Contains(keyNames, name) {
				return nil, false
			}
		}
	}

	es := ix.parts[part]
	if sortRef != "" {
		lo, _ := slices.BinarySearchFunc(es, sortKey, func(e entry, k string) int { return strings.Compare(e.sort, k) })
		hi := lo
		for hi < len(es) && es[hi].sort == sortKey {
			hi++
		}
		switch sortOp {
		case "=":
			es = es[lo:hi]
		case ">=":
			es = es[lo:]
		case ">":
			es = es[hi:]
		}
	}
	forward := in.ScanIndexForward == nil || *in.ScanIndexForward
	i := 0
	if !forward {
		i = len(es) - 1
	}
	if in.ExclusiveStartKey != nil {
		if len(in.ExclusiveStartKey) != len(keyNames) {
			return nil, false
		}
		key, err := keyString(t, in.ExclusiveStartKey)
		if err != nil {
			return nil, false
		}
		p, start, isEntry := ix.entryOf(in.ExclusiveStartKey, key)
		outside := sortRef != "" && ((sortOp == "=" && start.sort != sortKey) ||
			(sortOp == ">=" && start.sort < sortKey) || (sortOp == ">" && start.sort <= sortKey))
		if !isEntry || p != part || outside {
			return nil, false
		}
		// After the start key, whether or not its item is still there.
		at, found := slices.BinarySearchFunc(es, start, entry.compare)
		switch {
		case forward && found:
			i = at + 1
		case forward:
			i = at
		default:
			i = at - 1
		}
	}

	var items []item
	count, size := 0, 0
	var last item
	for ; i >= 0 && i < len(es); i = step(i, forward) {
		it := t.items[es[i].key]
		for name, v := range it {
			size += len(name) + len(v)
		}
		count++
		if !countOnly {
			items = append(items, project(it, proj))
		}
		if (in.Limit != nil && count == *in.Limit) || size >= queryPage {
			if next := step(i, forward); next >= 0 && next < len(es) {
				last = project(it, keyNames)
			}
			break
		}
	}

	fields := map[string]json.RawMessage{}
	n, _ := json.Marshal(count)
	fields["Count"], fields["ScannedCount"] = n, n
	if last != nil {
		fields["LastEvaluatedKey"] = appendItem(nil, last)
	}
	if countOnly {
		return appendItem(nil, item(fields)), true
	}
	if items == nil {
		items = []item{}
	}
	out, _ = encode(fields, "Items", items)
	return out, true
}

func step(i int, forward bool) int {
	if forward {
		return i + 1
	}
	return i - 1
}

// project returns the attributes of it named in names, or it all when
// names is nil.
func project(it item, names []string) item {
	if names == nil {
		return it
	}
	p := make(item, len(names))
	for _, name := range names {
		if v, ok := it[name]; ok {
			p[name] = v
		}
	}
	return p
}
