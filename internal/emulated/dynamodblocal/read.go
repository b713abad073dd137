package dynamodblocal

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// read serves GetItem, Query, Scan, BatchGetItem and TransactGetItems:
// minidyn finds the items (keys, conditions, filters, pages, indexes,
// projections); the wrapper then replaces each attribute minidyn returned
// with the exact value written, since minidyn's rendering may have been
// through float64 (projections, updates) or lost an empty list or map.
// A Query of one partition is answered from the partition index first
// (query.go), and a GetItem of a whole item from the items (getItem),
// without minidyn.
func (s *Server) read(op string, body []byte) (any, error) {
	if op == "Query" {
		s.mu.RLock()
		out, ok := s.query(body)
		s.mu.RUnlock()
		if ok {
			return out, nil
		}
	}
	if op == "GetItem" {
		s.mu.RLock()
		out, ok := s.getItem(body)
		s.mu.RUnlock()
		if ok {
			return out, nil
		}
	}
	var in struct {
		TableName            string
		Key                  item
		ProjectionExpression string
		Select               string
		RequestItems         map[string]struct {
			ProjectionExpression string
			Keys                 []item
		}
		TransactItems []struct {
			Get *struct {
				TableName            string
				Key                  item
				ProjectionExpression string
			}
		}
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	// minidyn holds no items (scratch.go): the ones this read may
	// return are loaded for it, with s.mu held alone.
	s.mu.Lock()
	defer s.mu.Unlock()
	loaded := map[*table][]item{}
	defer func() {
		for t, keys := range loaded {
			s.unload(t, keys...)
		}
	}()
	need := func(name string, key item) error {
		t, ok := s.tables[name]
		if !ok {
			return nil // minidyn answers with its error
		}
		k, err := keyString(t, key)
		if err != nil {
			return nil
		}
		if it, ok := t.items[k]; ok {
			loaded[t] = append(loaded[t], keyOf(t, it))
			return s.load(t, it)
		}
		return nil
	}
	var err error
	switch op {
	case "GetItem":
		err = need(in.TableName, in.Key)
	case "Query", "Scan":
		if t, ok := s.tables[in.TableName]; ok {
			loaded[t], err = s.loadFor(t, op, body)
		}
	case "BatchGetItem":
		for name, r := range in.RequestItems {
			for _, k := range r.Keys {
				if err == nil {
					err = need(name, k)
				}
			}
		}
	case "TransactGetItems":
		for _, ti := range in.TransactItems {
			if ti.Get != nil && err == nil {
				err = need(ti.Get.TableName, ti.Get.Key)
			}
		}
	}
	if err != nil {
		return nil, err
	}
	var whole bool
	if op == "GetItem" || op == "Query" || op == "Scan" {
		if body, whole, err = s.keysOnly(body); err != nil {
			return nil, err
		}
	}
	raw, err := s.call(op, body)
	if err != nil {
		return nil, err
	}
	var out map[string]json.RawMessage
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, err
	}
	switch op {
	case "GetItem":
		var it item
		if err := unmarshalField(out, "Item", &it); err != nil {
			return nil, err
		}
		if it != nil {
			if whole {
				it = s.written(in.TableName, in.Key, it)
			}
			s.exact(in.TableName, in.Key, it, in.ProjectionExpression)
			return encode(out, "Item", it)
		}
	case "Query", "Scan":
		if in.Select == "COUNT" {
			// minidyn returns the items too; DynamoDB only the count.
			delete(out, "Items")
			return out, nil
		}
		var items []item
		if err := unmarshalField(out, "Items", &items); err != nil {
			return nil, err
		}
		for i, it := range items {
			if whole {
				items[i] = s.written(in.TableName, it, it)
			}
			s.exact(in.TableName, it, items[i], in.ProjectionExpression)
		}
		if items == nil {
			items = []item{}
		}
		return encode(out, "Items", items)
	case "BatchGetItem":
		var resp map[string][]item
		if err := unmarshalField(out, "Responses", &resp); err != nil {
			return nil, err
		}
		for name, items := range resp {
			for _, it := range items {
				s.exact(name, it, it, in.RequestItems[name].ProjectionExpression)
			}
		}
		return out, setField(out, "Responses", resp)
	case "TransactGetItems":
		var resp []struct {
			Item item `json:"Item,omitempty"`
		}
		if err := unmarshalField(out, "Responses", &resp); err != nil {
			return nil, err
		}
		for i := range resp {
			if i < len(in.TransactItems) && in.TransactItems[i].Get != nil && resp[i].Item != nil {
				g := in.TransactItems[i].Get
				s.exact(g.TableName, g.Key, resp[i].Item, g.ProjectionExpression)
			}
		}
		return out, setField(out, "Responses", resp)
	}
	return out, nil
}

// exact replaces the attributes of it, an item minidyn returned from the
// table under key (the request's, or the item's own keys), with the
// values written. A projection of nested paths (a.b, a[1]) returned parts
// of attributes, which are matched member by member. An item whose key
// was projected away from a Query, Scan or BatchGetItem is left as
// minidyn gave it. The caller holds s.mu.
func (s *Server) exact(tableName string, key, it item, projection string) {
	t, ok := s.tables[tableName]
	if !ok {
		return
	}
	k, err := keyString(t, key)
	if err != nil {
		return
	}
	written, ok := t.items[k]
	if !ok {
		return
	}
	nested := strings.ContainsAny(projection, ".[")
	for k, v := range it {
		w, ok := written[k]
		switch {
		case !ok:
		case nested:
			it[k] = exactify(v, w)
		default:
			it[k] = w
		}
	}
}

// keysOnly rewrites a read of whole items from a table whose keys are
// strings to ask minidyn for the keys alone: the wrapper has the items,
// and copying each one through minidyn's JSON and back costs more than
// the rest of the request (a query of 1 MB pages of 300 KB items). whole
// reports whether it did. Filters and conditions still see the whole
// items in minidyn.
func (s *Server) keysOnly(body []byte) ([]byte, bool, error) {
	var in map[string]json.RawMessage
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, false, &apiError{status: 400, code: "SerializationException", msg: err.Error()}
	}
	var name string
	if json.Unmarshal(in["TableName"], &name) != nil {
		return body, false, nil
	}
	t, ok := s.tables[name]
	if !ok || !t.keysS {
		return body, false, nil
	}
	for _, k := range []string{"IndexName", "ProjectionExpression", "AttributesToGet", "Select"} {
		if _, ok := in[k]; ok {
			return body, false, nil
		}
	}
	names := map[string]string{}
	if raw, ok := in["ExpressionAttributeNames"]; ok && json.Unmarshal(raw, &names) != nil {
		return body, false, nil
	}
	var proj []string
	for i, k := range t.keys {
		alias := "#wsbind_key" + strconv.Itoa(i)
		names[alias] = k
		proj = append(proj, alias)
	}
	var err error
	if in["ExpressionAttributeNames"], err = json.Marshal(names); err != nil {
		return nil, false, err
	}
	if in["ProjectionExpression"], err = json.Marshal(strings.Join(proj, ", ")); err != nil {
		return nil, false, err
	}
	b, err := json.Marshal(in)
	return b, err == nil, err
}

// written returns the item written under key, or it when there is none
// (minidyn and the wrapper disagree: a bug, shown rather than hidden).
func (s *Server) written(tableName string, key, it item) item {
	t := s.tables[tableName]
	k, err := keyString(t, key)
	if err != nil {
		return it
	}
	if w, ok := t.items[k]; ok {
		return maps.Clone(w)
	}
	return it
}

// encode writes out with field k set to v, by hand: the items' values
// are JSON already, checked when their write was decoded, and
// encoding/json would check every byte of them again.
func encode(out map[string]json.RawMessage, k string, v any) (rawJSON, error) {
	b := []byte{'{'}
	first := true
	field := func(name string) {
		if !first {
			b = append(b, ',')
		}
		first = false
		nb, _ := json.Marshal(name)
		b = append(b, nb...)
		b = append(b, ':')
	}
	for _, name := range slices.Sorted(maps.Keys(out)) {
		if name == k {
			continue
		}
		field(name)
		b = append(b, out[name]...)
	}
	field(k)
	switch v := v.(type) {
	case item:
		b = appendItem(b, v)
	case []item:
		b = append(b, '[')
		for i, it := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendItem(b, it)
		}
		b = append(b, ']')
	}
	return append(b, '}'), nil
}

func appendItem(b []byte, it item) []byte {
	b = append(b, '{')
	for i, name := range slices.Sorted(maps.Keys(it)) {
		if i > 0 {
			b = append(b, ',')
		}
		nb, _ := json.Marshal(name)
		b = append(b, nb...)
		b = append(b, ':')
		b = append(b, it[name]...)
	}
	return append(b, '}')
}

func unmarshalField(m map[string]json.RawMessage, k string, v any) error {
	raw, ok := m[k]
	if !ok {
		return nil
	}
	return json.Unmarshal(raw, v)
}

func setField(m map[string]json.RawMessage, k string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	m[k] = b
	return nil
}

// getItem answers a GetItem of a whole item from the table's items; ok
// is false for a request it leaves to minidyn (a projection, a key that
// is not exactly the table's, any other member). The caller holds s.mu.
func (s *Server) getItem(body []byte) (out rawJSON, ok bool) {
	var in struct {
		TableName              string
		Key                    item
		ConsistentRead         bool
		ReturnConsumedCapacity string
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	if d.Decode(&in) != nil || in.ReturnConsumedCapacity != "" && in.ReturnConsumedCapacity != "NONE" {
		return nil, false
	}
	t, found := s.tables[in.TableName]
	if !found || len(in.Key) != len(t.keys) {
		return nil, false
	}
	k, err := keyString(t, in.Key)
	if err != nil {
		return nil, false
	}
	// Each key value must be a well-formed non-empty one: DynamoDB refuses
	// an empty string key, which keyString takes.
	for _, name := range t.keys {
		if a, err := parseAttr(in.Key[name]); err != nil || string(a.val) == `""` {
			return nil, false
		}
	}
	it, found := t.items[k]
	if !found {
		return rawJSON("{}"), true
	}
	out, _ = encode(map[string]json.RawMessage{}, "Item", it)
	return out, true
}
