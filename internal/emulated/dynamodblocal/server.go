// Package dynamodblocal is the emulator's DynamoDB: an http.Handler that
// speaks DynamoDB's JSON 1.0 wire protocol (github.com/truora/minidyn
// does the work) and keeps, for every table created with a stream, the
// change stream that feeds the fan-out function.
//
//	db := dynamodblocal.New(dynamodblocal.Config{})
//	go http.Serve(ln, db) // point the SDK's BaseEndpoint here
//	st, _ := db.Stream("items") // then read it, or hand it to internal/emulated/streams
//
// minidyn is wrapped rather than used as it is: the wrapper keeps every
// item exactly as it was written (minidyn computes numbers as float64),
// answers what minidyn leaves out (TableStatus, ALL_OLD on PutItem and on
// a failed condition, REMOVE of a whole attribute, ListTables), writes
// errors as the SDK parses them, and serializes writes so that the
// stream's order is the order of the writes.
package dynamodblocal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/truora/minidyn/server"
)

// ErrStreamClosed is returned by Stream.Read when the stream's table was
// deleted and every record has been read.
var ErrStreamClosed = errors.New("dynamodblocal: stream closed: its table was deleted")

// Config configures a Server. The zero value works.
type Config struct {
	// Region and Account make up the tables' and streams' ARNs. Defaults:
	// "us-east-1" and "000000000000".
	Region  string
	Account string
	// Retention is how long a stream keeps a record. Default: 24 hours,
	// DynamoDB Streams' own.
	Retention time.Duration
	// Now is the clock of the records' ApproximateCreationDateTime. nil
	// means time.Now.
	Now func() time.Time
}

// maxBody bounds a request: 25 items of 400 KB, with room for the JSON.
const maxBody = 32 << 20

// Server is the DynamoDB endpoint. It is safe for concurrent use.
type Server struct {
	cfg  Config
	mini *server.Server

	// mu orders everything: a write, or a table's creation or deletion,
	// holds it alone, so that the shadow items and the streams change in
	// the order minidyn's data does; reads share it.
	mu     sync.RWMutex
	tables map[string]*table
	seq    uint64
	data   *dataLog // nil without a data directory (Open)
}

// table is what the wrapper knows of a table: its key and the exact
// items.
type table struct {
	name    string
	arn     string
	keys    []string // hash key, then range key if any
	keysS   bool     // every key attribute is a string
	items   map[string]item
	indexes map[string]*index // "" is the table's own; see query.go
	stream  *Stream           // nil without a stream
	created time.Time
	ttl     *ttlSpec
}

type ttlSpec struct {
	Enabled       bool   `json:"Enabled"`
	AttributeName string `json:"AttributeName"`
}

// New returns an empty Server.
func New(cfg Config) *Server {
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.Account == "" {
		cfg.Account = "000000000000"
	}
	if cfg.Retention <= 0 {
		cfg.Retention = 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Server{cfg: cfg, mini: server.NewServer(), tables: map[string]*table{}}
}

// Stream returns the change stream of a table, ok false when the table
// does not exist or was created without a stream.
func (s *Server) Stream(tableName string) (st *Stream, ok bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, ok := s.tables[tableName]
	if !ok || t.stream == nil {
		return nil, false
	}
	return t.stream, true
}

// apiError is an error in DynamoDB's wire form.
type apiError struct {
	status int
	code   string
	msg    string
	item   item // a failed condition's ALL_OLD
}

func (e *apiError) Error() string { return e.code + ": " + e.msg }

func validation(format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: "ValidationException", msg: fmt.Sprintf(format, args...)}
}

func notFound(name string) *apiError {
	return &apiError{status: http.StatusBadRequest, code: "ResourceNotFoundException",
		msg: "Requested resource not found: Table: " + name + " not found"}
}

// ServeHTTP answers one DynamoDB request (POST, X-Amz-Target
// DynamoDB_20120810.<Operation>, JSON body). Signatures are not checked.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeError(w, &apiError{status: http.StatusMethodNotAllowed, code: "UnknownOperationException", msg: "only POST"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeError(w, &apiError{status: http.StatusRequestEntityTooLarge, code: "SerializationException", msg: err.Error()})
		return
	}
	target := r.Header.Get("X-Amz-Target")
	op := target[strings.LastIndexByte(target, '.')+1:]
	var out any
	switch op {
	case "CreateTable":
		out, err = s.createTable(body)
	case "DeleteTable":
		out, err = s.deleteTable(body)
	case "DescribeTable", "UpdateTable":
		out, err = s.describeTable(op, body)
	case "ListTables":
		out, err = s.listTables(body)
	case "UpdateTimeToLive", "DescribeTimeToLive":
		out, err = s.timeToLive(op, body)
	case "PutItem", "DeleteItem", "UpdateItem":
		out, err = s.writeItem(op, body)
	case "BatchWriteItem":
		out, err = s.batchWrite(body)
	case "TransactWriteItems":
		out, err = s.transactWrite(body)
	case "GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems":
		out, err = s.read(op, body)
	default:
		err = &apiError{status: http.StatusBadRequest, code: "UnknownOperationException",
			msg: "the emulator does not serve the operation " + strconv.Quote(target)}
	}
	if err != nil {
		writeError(w, err)
		return
	}
	b, ok := out.(rawJSON)
	if !ok {
		b, err = json.Marshal(out)
	}
	if err != nil {
		writeError(w, &apiError{status: http.StatusInternalServerError, code: "InternalServerError", msg: err.Error()})
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	_, _ = w.Write(b)
}

// writeError writes err as DynamoDB does: status 400 (500 for the
// server's own failures), `__type` with the service's namespace, which
// the SDK strips to find the error's type, and `message`.
func writeError(w http.ResponseWriter, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = &apiError{status: http.StatusInternalServerError, code: "InternalServerError", msg: err.Error()}
	}
	body := map[string]any{"__type": "com.amazonaws.dynamodb.v20120810#" + ae.code, "message": ae.msg}
	if ae.item != nil {
		body["Item"] = ae.item
	}
	b, _ := json.Marshal(body)
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.WriteHeader(ae.status)
	_, _ = w.Write(b)
}

// rawJSON is an answer already in JSON.
type rawJSON []byte

// recorder is the http.ResponseWriter minidyn writes into.
type recorder struct {
	h      http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.h }
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

// call sends one request to minidyn and returns its answer's body, or
// its error as an *apiError with the type the SDK expects.
func (s *Server) call(op string, in any) ([]byte, error) {
	body, ok := in.([]byte)
	if !ok {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return nil, err
		}
	}
	req, err := http.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-Amz-Target", "DynamoDB_20120810."+op)
	rec := &recorder{h: http.Header{}}
	s.mini.ServeHTTP(rec, req)
	if rec.status == 0 || rec.status == http.StatusOK {
		return rec.body.Bytes(), nil
	}
	return nil, miniError(rec.status, rec.body.Bytes())
}

// miniError reads minidyn's error answer. Its `__type` lacks the
// namespace (which the SDK accepts), but errors without a code of their
// own come as "InternalFailure" with status 400, and a body that is not
// JSON (a request minidyn could not decode) as plain text: both are the
// client's mistakes, a ValidationException or SerializationException.
func miniError(status int, body []byte) *apiError {
	var e struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &e) != nil || e.Type == "" {
		return &apiError{status: http.StatusBadRequest, code: "SerializationException", msg: strings.TrimSpace(string(body))}
	}
	code := e.Type[strings.LastIndexByte(e.Type, '#')+1:]
	if code == "InternalFailure" && status < 500 {
		code = "ValidationException"
	}
	if status >= 500 {
		status = http.StatusInternalServerError
	}
	return &apiError{status: status, code: code, msg: e.Message}
}

func decode(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return &apiError{status: http.StatusBadRequest, code: "SerializationException", msg: err.Error()}
	}
	return nil
}

func (s *Server) tableARN(name string) string {
	return "arn:aws:dynamodb:" + s.cfg.Region + ":" + s.cfg.Account + ":table/" + name
}

func (s *Server) createTable(body []byte) (any, error) {
	var in struct {
		TableName            string
		AttributeDefinitions []struct{ AttributeName, AttributeType string }
		KeySchema            []struct {
			AttributeName string
			KeyType       string
		}
		GlobalSecondaryIndexes []indexDef
		StreamSpecification    *struct {
			StreamEnabled  bool
			StreamViewType string
		}
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.tables[in.TableName]; ok {
		return nil, &apiError{status: http.StatusBadRequest, code: "ResourceInUseException", msg: "Table already exists: " + in.TableName}
	}
	if sp := in.StreamSpecification; sp != nil && sp.StreamEnabled && sp.StreamViewType != "NEW_AND_OLD_IMAGES" {
		// The only view the fan-out reads; the others would need records
		// the emulator does not make.
		return nil, validation("the emulator's streams are NEW_AND_OLD_IMAGES only, not %q", sp.StreamViewType)
	}
	out, err := s.call("CreateTable", body)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	t := &table{name: in.TableName, arn: s.tableARN(in.TableName), items: map[string]item{}, created: now}
	for _, kt := range []string{"HASH", "RANGE"} {
		for _, k := range in.KeySchema {
			if k.KeyType == kt {
				t.keys = append(t.keys, k.AttributeName)
			}
		}
	}
	t.keysS = true
	for _, k := range t.keys {
		for _, d := range in.AttributeDefinitions {
			if d.AttributeName == k && d.AttributeType != "S" {
				t.keysS = false
			}
		}
	}
	types := map[string]string{}
	for _, d := range in.AttributeDefinitions {
		types[d.AttributeName] = d.AttributeType
	}
	t.indexes = map[string]*index{}
	if ix := newIndex(indexDef{KeySchema: in.KeySchema}, t.keys, types, false); ix != nil {
		t.indexes[""] = ix
	}
	for _, g := range in.GlobalSecondaryIndexes {
		if ix := newIndex(g, t.keys, types, true); ix != nil && g.IndexName != "" {
			t.indexes[g.IndexName] = ix
		}
	}
	if sp := in.StreamSpecification; sp != nil && sp.StreamEnabled {
		label := now.UTC().Format("2006-01-02T15:04:05.000")
		t.stream = newStream(t.arn+"/stream/"+label, t.name, s.cfg.Region, s.cfg.Retention, s.cfg.Now)
	}
	s.tables[in.TableName] = t
	return s.patchDescription(out, "TableDescription", t, "ACTIVE")
}

// patchDescription fills in what minidyn's table description lacks:
// TableStatus (minidyn leaves it empty, and dynamo.CreateTables waits for
// ACTIVE), the ARN, the creation time and the stream.
func (s *Server) patchDescription(out []byte, field string, t *table, status string) (any, error) {
	var o map[string]map[string]any
	d := json.NewDecoder(bytes.NewReader(out))
	d.UseNumber()
	if err := d.Decode(&o); err != nil {
		return nil, err
	}
	desc := o[field]
	if desc == nil {
		desc = map[string]any{"TableName": t.name}
		o = map[string]map[string]any{field: desc}
	}
	desc["TableStatus"] = status
	desc["TableArn"] = t.arn
	desc["CreationDateTime"] = float64(t.created.UnixMilli()) / 1000
	if ix, ok := desc["GlobalSecondaryIndexes"].([]any); ok {
		for _, g := range ix {
			if g, ok := g.(map[string]any); ok {
				if st, _ := g["IndexStatus"].(string); st == "" {
					g["IndexStatus"] = "ACTIVE"
				}
				g["IndexArn"] = t.arn + "/index/" + fmt.Sprint(g["IndexName"])
			}
		}
	}
	if t.stream != nil {
		desc["StreamSpecification"] = map[string]any{"StreamEnabled": true, "StreamViewType": "NEW_AND_OLD_IMAGES"}
		desc["LatestStreamArn"] = t.stream.arn
		desc["LatestStreamLabel"] = t.stream.arn[strings.LastIndexByte(t.stream.arn, '/')+1:]
	}
	return o, nil
}

func tableName(body []byte) (string, error) {
	var in struct{ TableName string }
	if err := decode(body, &in); err != nil {
		return "", err
	}
	return in.TableName, nil
}

func (s *Server) deleteTable(body []byte) (any, error) {
	name, err := tableName(body)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tables[name]
	if !ok {
		return nil, notFound(name)
	}
	out, err := s.call("DeleteTable", body)
	if err != nil {
		return nil, err
	}
	delete(s.tables, name)
	if t.stream != nil {
		t.stream.closeStream()
	}
	return s.patchDescription(out, "TableDescription", t, "DELETING")
}

// describeTable serves DescribeTable, and UpdateTable (index changes
// only: minidyn's; a change of stream is refused rather than ignored).
func (s *Server) describeTable(op string, body []byte) (any, error) {
	var in struct {
		TableName           string
		StreamSpecification json.RawMessage
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if op == "UpdateTable" {
		if in.StreamSpecification != nil {
			return nil, validation("the emulator cannot change a table's stream")
		}
		s.mu.Lock()
		defer s.mu.Unlock()
	} else {
		s.mu.RLock()
		defer s.mu.RUnlock()
	}
	t, ok := s.tables[in.TableName]
	if !ok {
		return nil, notFound(in.TableName)
	}
	out, err := s.call(op, body)
	if err != nil {
		return nil, err
	}
	field := "Table"
	if op == "UpdateTable" {
		field = "TableDescription"
	}
	return s.patchDescription(out, field, t, "ACTIVE")
}

// listTables serves ListTables, which minidyn lacks.
func (s *Server) listTables(body []byte) (any, error) {
	var in struct {
		ExclusiveStartTableName string
		Limit                   int
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.Limit <= 0 || in.Limit > 100 {
		in.Limit = 100
	}
	s.mu.RLock()
	names := slices.Sorted(maps.Keys(s.tables))
	s.mu.RUnlock()
	i, _ := slices.BinarySearch(names, in.ExclusiveStartTableName)
	for i < len(names) && names[i] <= in.ExclusiveStartTableName {
		i++
	}
	out := map[string]any{"TableNames": []string{}}
	if page := names[i:]; len(page) > in.Limit {
		out["TableNames"] = page[:in.Limit]
		out["LastEvaluatedTableName"] = page[in.Limit-1]
	} else if len(page) > 0 {
		out["TableNames"] = page
	}
	return out, nil
}

// timeToLive records a table's TTL setting so that it reads back. Expired
// items are not deleted: our store filters them itself, as it must on
// DynamoDB, which deletes them only within days.
func (s *Server) timeToLive(op string, body []byte) (any, error) {
	var in struct {
		TableName               string
		TimeToLiveSpecification *ttlSpec
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tables[in.TableName]
	if !ok {
		return nil, notFound(in.TableName)
	}
	if op == "UpdateTimeToLive" {
		if in.TimeToLiveSpecification == nil {
			return nil, validation("TimeToLiveSpecification is required")
		}
		t.ttl = in.TimeToLiveSpecification
		return map[string]any{"TimeToLiveSpecification": t.ttl}, nil
	}
	desc := map[string]any{"TimeToLiveStatus": "DISABLED"}
	if t.ttl != nil && t.ttl.Enabled {
		desc = map[string]any{"TimeToLiveStatus": "ENABLED", "AttributeName": t.ttl.AttributeName}
	}
	return map[string]any{"TimeToLiveDescription": desc}, nil
}
