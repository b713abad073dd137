package dynamodblocal

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/aws/aws-lambda-go/events"
)

// writeInput is the part of PutItem, DeleteItem and UpdateItem (and of a
// transaction's Put, Delete and Update) the wrapper reads.
type writeInput struct {
	TableName                           string
	Item                                item
	Key                                 item
	UpdateExpression                    string
	ExpressionAttributeNames            map[string]string
	ExpressionAttributeValues           map[string]json.RawMessage
	ReturnValues                        string
	ReturnValuesOnConditionCheckFailure string
}

// change is one write that succeeded: the item's old and new state (nil
// for none), to make the stream record from once the request is done.
type change struct {
	t        *table
	key      string
	old, new item
}

// writeItem serves PutItem, DeleteItem and UpdateItem: minidyn decides
// and applies the write; the wrapper keeps the exact item, answers the
// ReturnValues, and appends the stream record.
func (s *Server) writeItem(op string, body []byte) (any, error) {
	var in writeInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, err := s.apply(op, &in, body)
	if err != nil {
		return nil, err
	}
	s.emit(ch)
	var attrs item
	switch in.ReturnValues {
	case "ALL_OLD":
		attrs = ch.old
	case "ALL_NEW":
		if op == "UpdateItem" {
			attrs = ch.new
		}
	case "UPDATED_OLD", "UPDATED_NEW":
		if op == "UpdateItem" {
			attrs = updated(ch, in.ReturnValues == "UPDATED_NEW")
		}
	}
	if len(attrs) == 0 {
		return struct{}{}, nil
	}
	return map[string]item{"Attributes": attrs}, nil
}

// updated returns the attributes an update changed (added, removed or
// given another value), with their old or new values.
func updated(ch change, newValues bool) item {
	out := item{}
	for _, k := range slices.Sorted(maps.Keys(ch.new)) {
		if o, ok := ch.old[k]; !ok || string(ch.new[k]) != string(o) {
			if newValues {
				out[k] = ch.new[k]
			} else if ok {
				out[k] = o
			}
		}
	}
	if !newValues {
		for k, o := range ch.old {
			if _, ok := ch.new[k]; !ok {
				out[k] = o
			}
		}
	}
	return out
}

// apply runs one single-item write against minidyn and the shadow items.
// The caller holds s.mu. body is the request to forward; nil builds it
// from in (a batch's or a transaction's part).
func (s *Server) apply(op string, in *writeInput, body []byte) (change, error) {
	t, ok := s.tables[in.TableName]
	if !ok {
		return change{}, notFound(in.TableName)
	}
	keySrc := in.Key
	if op == "PutItem" {
		keySrc = in.Item
		if err := checkNumbers(in.Item); err != nil {
			return change{}, validation("the item holds a number DynamoDB cannot: %v", err)
		}
	}
	if err := checkNumbers(in.ExpressionAttributeValues); err != nil {
		return change{}, validation("ExpressionAttributeValues hold a number DynamoDB cannot: %v", err)
	}
	if len(keySrc) == 0 {
		return change{}, validation("the request has no %s", map[bool]string{true: "Item", false: "Key"}[op == "PutItem"])
	}
	key, err := keyString(t, keySrc)
	if err != nil {
		return change{}, validation("The provided key element does not match the schema: %v", err)
	}
	old := t.items[key]
	if body == nil {
		body, err = json.Marshal(forward(op, in))
		if err != nil {
			return change{}, err
		}
	}
	// minidyn decides with the item as it is now, and holds nothing
	// once the write is done (see scratch).
	if err := s.load(t, old); err != nil {
		return change{}, err
	}
	defer s.unload(t, keyOf(t, keySrc))
	if _, err := s.call(op, body); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.code == "ConditionalCheckFailedException" {
			ae.item = nil
			if in.ReturnValuesOnConditionCheckFailure == "ALL_OLD" && old != nil {
				ae.item = old
			}
		}
		return change{}, err
	}
	ch := change{t: t, key: key, old: old}
	switch op {
	case "PutItem":
		ch.new = maps.Clone(in.Item)
	case "DeleteItem":
		ch.new = nil
	case "UpdateItem":
		if ch.new, err = s.afterUpdate(t, in, old); err != nil {
			return change{}, fmt.Errorf("update of %s applied, but: %w", in.TableName, err)
		}
	}
	if err := s.commit(ch); err != nil {
		return change{}, err
	}
	return ch, nil
}

// forward is the minidyn request for a write built from its parts.
func forward(op string, in *writeInput) map[string]any {
	m := map[string]any{"TableName": in.TableName}
	if op == "PutItem" {
		m["Item"] = in.Item
	} else {
		m["Key"] = in.Key
	}
	if in.UpdateExpression != "" {
		m["UpdateExpression"] = in.UpdateExpression
	}
	if len(in.ExpressionAttributeNames) > 0 {
		m["ExpressionAttributeNames"] = in.ExpressionAttributeNames
	}
	if len(in.ExpressionAttributeValues) > 0 {
		m["ExpressionAttributeValues"] = in.ExpressionAttributeValues
	}
	return m
}

// afterUpdate works out the exact item an UpdateItem made. minidyn
// rewrites every attribute of the item through float64 and ignores a
// REMOVE of a whole attribute; so the wrapper reads minidyn's result,
// takes the old exact value of each attribute the expression did not
// name, the expression's value that explains each one it did, and
// removes what REMOVE named. The caller unloads the item from minidyn.
func (s *Server) afterUpdate(t *table, in *writeInput, old item) (item, error) {
	b, err := s.call("GetItem", map[string]any{"TableName": t.name, "Key": in.Key})
	if err != nil {
		return nil, err
	}
	var got struct{ Item item }
	if err := json.Unmarshal(b, &got); err != nil {
		return nil, err
	}
	removed, changed, ok := updateTargets(in.UpdateExpression, in.ExpressionAttributeNames)
	vals := make([]json.RawMessage, 0, len(in.ExpressionAttributeValues))
	for _, k := range slices.Sorted(maps.Keys(in.ExpressionAttributeValues)) {
		vals = append(vals, in.ExpressionAttributeValues[k])
	}
	exact := item{}
	for k, v := range got.Item {
		switch {
		case removed[k]:
		case slices.Contains(t.keys, k):
			exact[k] = in.Key[k]
		case ok && !changed[k] && old[k] != nil:
			exact[k] = old[k]
		default:
			exact[k] = exactify(v, append(vals, old[k])...)
		}
	}
	return exact, nil
}

// emit appends the stream record of a change, if its table has a stream
// and something changed: a delete of nothing is no change. The caller
// holds s.mu, so records take sequence numbers in the order of writes.
// The record keeps the old and new items themselves, which the table
// shares (items are never changed once stored, only replaced); the
// event Lambda gets is made of them when the record is read.
func (s *Server) emit(ch change) {
	if ch.t == nil || ch.t.stream == nil || (ch.old == nil && ch.new == nil) {
		return
	}
	s.seq++
	src := ch.new
	if src == nil {
		src = ch.old
	}
	size := itemSize(keyOf(ch.t, src)) + itemSize(ch.old) + itemSize(ch.new)
	ch.t.stream.append(change{t: ch.t, old: ch.old, new: ch.new}, s.seq, s.cfg.Now(), size)
}

// itemSize is an item's size as a stream record counts it: the names and
// the values' JSON.
func itemSize(it item) int {
	n := 0
	for k, raw := range it {
		n += len(k) + len(raw)
	}
	return n
}

// event makes the record of a change as Lambda delivers it.
func (st *Stream) event(r *storedRecord) events.DynamoDBEventRecord {
	ev := events.DynamoDBEventRecord{
		AWSRegion:      st.region,
		EventID:        fmt.Sprintf("%032x", r.seq),
		EventSource:    "aws:dynamodb",
		EventVersion:   "1.1",
		EventSourceArn: st.arn,
	}
	switch {
	case r.ch.old == nil:
		ev.EventName = string(events.DynamoDBOperationTypeInsert)
	case r.ch.new == nil:
		ev.EventName = string(events.DynamoDBOperationTypeRemove)
	default:
		ev.EventName = string(events.DynamoDBOperationTypeModify)
	}
	src := r.ch.new
	if src == nil {
		src = r.ch.old
	}
	rec := &ev.Change
	rec.Keys = image(keyOf(r.ch.t, src))
	if r.ch.old != nil {
		rec.OldImage = image(r.ch.old)
	}
	if r.ch.new != nil {
		rec.NewImage = image(r.ch.new)
	}
	rec.SequenceNumber = fmt.Sprintf("%021d", r.seq)
	rec.SizeBytes = int64(r.size)
	rec.StreamViewType = "NEW_AND_OLD_IMAGES"
	rec.ApproximateCreationDateTime = events.SecondsEpochTime{Time: r.at}
	return ev
}

// image converts an item to the event's attribute values (numbers stay
// text).
func image(it item) map[string]events.DynamoDBAttributeValue {
	out := make(map[string]events.DynamoDBAttributeValue, len(it))
	for k, raw := range it {
		var v events.DynamoDBAttributeValue
		if err := json.Unmarshal(raw, &v); err != nil {
			// minidyn took it, so DynamoDB JSON it is; a value the events
			// package cannot read is left out rather than invented.
			continue
		}
		out[k] = v
	}
	return out
}

// batchWrite serves BatchWriteItem as single writes in request order,
// each with its stream record, instead of handing it to minidyn, which
// would apply the tables in map order and leave no trace of which
// writes it made before a failure. The request is checked first, as
// DynamoDB checks it, so that a bad request changes nothing.
func (s *Server) batchWrite(body []byte) (any, error) {
	var in struct {
		RequestItems map[string][]struct {
			PutRequest    *struct{ Item item }
			DeleteRequest *struct{ Key item }
		}
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for name, reqs := range in.RequestItems {
		t, ok := s.tables[name]
		if !ok {
			return nil, notFound(name)
		}
		seen := map[string]bool{}
		for _, r := range reqs {
			var k item
			switch {
			case (r.PutRequest == nil) == (r.DeleteRequest == nil):
				return nil, validation("a write request must hold exactly one of PutRequest and DeleteRequest")
			case r.PutRequest != nil:
				k = r.PutRequest.Item
				if err := checkNumbers(k); err != nil {
					return nil, validation("the item holds a number DynamoDB cannot: %v", err)
				}
			default:
				k = r.DeleteRequest.Key
			}
			key, err := keyString(t, k)
			if err != nil {
				return nil, validation("The provided key element does not match the schema: %v", err)
			}
			if seen[key] {
				return nil, validation("Provided list of item keys contains duplicates")
			}
			seen[key] = true
			n++
		}
	}
	if n == 0 || n > 25 {
		return nil, validation("BatchWriteItem takes 1 to 25 requests, not %d", n)
	}
	for _, name := range slices.Sorted(maps.Keys(in.RequestItems)) {
		for _, r := range in.RequestItems[name] {
			op, w := "PutItem", &writeInput{TableName: name}
			if r.PutRequest != nil {
				w.Item = r.PutRequest.Item
			} else {
				op, w.Key = "DeleteItem", r.DeleteRequest.Key
			}
			ch, err := s.apply(op, w, nil)
			if err != nil {
				return nil, err
			}
			s.emit(ch)
		}
	}
	return map[string]any{"UnprocessedItems": map[string]any{}}, nil
}

// transactWrite serves TransactWriteItems: minidyn applies it all or
// nothing to the items loaded for it; then the wrapper brings its items
// up to date and appends the records, in the order of the actions.
func (s *Server) transactWrite(body []byte) (any, error) {
	var in struct {
		TransactItems []struct {
			Put, Delete, Update, ConditionCheck *writeInput
		}
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	type action struct {
		op  string
		in  *writeInput
		t   *table
		key string
		old item
	}
	var acts []action
	for _, ti := range in.TransactItems {
		a := action{}
		switch {
		case ti.Put != nil:
			a.op, a.in = "PutItem", ti.Put
		case ti.Delete != nil:
			a.op, a.in = "DeleteItem", ti.Delete
		case ti.Update != nil:
			a.op, a.in = "UpdateItem", ti.Update
		default:
			continue
		}
		t, ok := s.tables[a.in.TableName]
		if !ok {
			return nil, notFound(a.in.TableName)
		}
		src := a.in.Key
		if a.op == "PutItem" {
			src = a.in.Item
			if err := checkNumbers(src); err != nil {
				return nil, validation("the item holds a number DynamoDB cannot: %v", err)
			}
		}
		if err := checkNumbers(a.in.ExpressionAttributeValues); err != nil {
			return nil, validation("ExpressionAttributeValues hold a number DynamoDB cannot: %v", err)
		}
		key, err := keyString(t, src)
		if err != nil {
			return nil, validation("The provided key element does not match the schema: %v", err)
		}
		a.t, a.key, a.old = t, key, t.items[key]
		acts = append(acts, a)
	}
	// Every item the transaction names, conditions included, is loaded
	// into minidyn for it, and unloaded after.
	for _, ti := range in.TransactItems {
		for _, w := range []*writeInput{ti.Put, ti.Delete, ti.Update, ti.ConditionCheck} {
			if w == nil {
				continue
			}
			t, ok := s.tables[w.TableName]
			if !ok {
				return nil, notFound(w.TableName)
			}
			src := w.Key
			if w == ti.Put {
				src = w.Item
			}
			key, err := keyString(t, src)
			if err != nil {
				return nil, validation("The provided key element does not match the schema: %v", err)
			}
			defer s.unload(t, keyOf(t, src))
			if err := s.load(t, t.items[key]); err != nil {
				return nil, err
			}
		}
	}
	if _, err := s.call("TransactWriteItems", body); err != nil {
		return nil, err
	}
	chs := make([]change, 0, len(acts))
	for _, a := range acts {
		ch := change{t: a.t, key: a.key, old: a.old}
		switch a.op {
		case "PutItem":
			ch.new = maps.Clone(a.in.Item)
		case "UpdateItem":
			var err error
			if ch.new, err = s.afterUpdate(a.t, a.in, a.old); err != nil {
				return nil, fmt.Errorf("transaction applied, but: %w", err)
			}
		}
		chs = append(chs, ch)
	}
	// One record in the data log: all of it survives a crash, or none.
	if err := s.commit(chs...); err != nil {
		return nil, err
	}
	for _, ch := range chs {
		s.emit(ch)
	}
	return struct{}{}, nil
}
