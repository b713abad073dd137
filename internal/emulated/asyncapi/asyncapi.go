// Package asyncapi writes an AsyncAPI 3.0 document of an application's
// WebSocket API from what its route guest says of its bindings
// (guest.Bindings, the wsbind_describe export): the one channel (the
// WebSocket), a request and a reply message per stream and action, a push
// message per stream, the send and receive operations, and a JSON Schema
// of each binding's objects as clients read them and as they write them.
//
// The emulator serves it at /asyncapi.json and `wsbind describe` writes
// it; clients/asyncapi checks it with the official parser and turns it
// into TypeScript declarations. The frames are docs/protocol.md's.
package asyncapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/wsbind/wsbind/internal/sandbox/guest"
)

// Options are what the bindings do not say.
type Options struct {
	// Title is info.title; "" means "wsbind API".
	Title string
	// Version is info.version, the application's own; "" means "1.0.0".
	Version string
	// Emulator is the host:port of the local emulator's WebSocket API,
	// the "emulator" server; "" means 127.0.0.1:8080, wsbind run's default.
	Emulator string
}

// Extensions on component schemas, for tools (clients/asyncapi's type
// generator): which stream a schema belongs to, and which shape of its
// objects it is.
const (
	extStream = "x-wsbind-stream"
	extShape  = "x-wsbind-shape"
)

// The shapes of a binding's objects.
const (
	shapeObject = "object" // as the server writes it: replies, lists, pushes
	shapeInput  = "input"  // create and update data
	shapePatch  = "patch"  // patch data: any writable field
	shapeFilter = "filter" // a subscription's filter
)

// FromDescribe is Document over the describe export's JSON.
func FromDescribe(describe []byte, o Options) ([]byte, error) {
	var b guest.Bindings
	if err := json.Unmarshal(describe, &b); err != nil {
		return nil, fmt.Errorf("asyncapi: the bindings description: %w", err)
	}
	return Document(b, o)
}

// Document writes the AsyncAPI document of the bindings as indented JSON,
// the same bytes for the same bindings and options.
func Document(b guest.Bindings, o Options) ([]byte, error) {
	if o.Title == "" {
		o.Title = "wsbind API"
	}
	if o.Version == "" {
		o.Version = "1.0.0"
	}
	if o.Emulator == "" {
		o.Emulator = "127.0.0.1:8080"
	}
	g := newGen()
	for _, s := range b.Streams {
		if err := g.stream(s); err != nil {
			return nil, err
		}
	}
	g.gateway()
	doc := obj(
		"asyncapi", "3.0.0",
		"info", obj(
			"title", o.Title,
			"version", o.Version,
			"description", description,
		),
		"defaultContentType", "application/json",
		"servers", obj(
			"emulator", obj(
				"host", o.Emulator,
				"protocol", "ws",
				"title", "Local emulator",
				"description", "wsbind run (make run in wsbind's repository): the WebSocket API at ws://"+o.Emulator+"/.",
			),
			"aws", obj(
				"host", "{apiId}.execute-api.{region}.amazonaws.com",
				"pathname", "/{stage}",
				"protocol", "wss",
				"title", "API Gateway",
				"description", "A deployed stack: its WebSocketURL output.",
				"variables", obj(
					"apiId", obj("description", "The WebSocket API's id."),
					"region", obj("description", "The stack's AWS Region.", "default", "us-east-1"),
					"stage", obj("description", "The stack's StageName parameter.", "default", "prod"),
				),
			),
		),
		"channels", obj(channelKey, obj(
			"address", "/",
			"title", "WebSocket",
			"description", "One WebSocket connection per client carries every stream: requests, their replies, and pushes. "+
				"A connection is anonymous unless it presents a JWT, as ?token=<JWT> or an Authorization: Bearer header; "+
				"a token that fails verification ends the handshake with HTTP 401.",
			"messages", g.channelMessages,
			"bindings", obj("ws", obj(
				"method", "GET",
				"query", obj("type", "object", "properties", obj(
					"token", obj("type", "string", "description", "A JWT (the only way a browser can send one)."),
				)),
				"headers", obj("type", "object", "properties", obj(
					"Authorization", obj("type", "string", "pattern", "^Bearer ", "description", "Bearer <JWT>, when there is no token parameter."),
				)),
				"bindingVersion", "0.1.0",
			)),
		)),
		"operations", g.operations,
		"components", obj(
			"schemas", g.schemas,
			"messages", g.messages,
			"correlationIds", obj("requestId", obj(
				"description", "A reply echoes its request's request_id.",
				"location", "$message.payload#/payload/request_id",
			)),
		),
	)
	var buf bytes.Buffer
	e := json.NewEncoder(&buf)
	e.SetEscapeHTML(false)
	e.SetIndent("", "  ")
	if err := e.Encode(doc); err != nil {
		return nil, fmt.Errorf("asyncapi: %w", err)
	}
	return buf.Bytes(), nil
}

const description = "A wsbind application: Django channels-api's protocol over one WebSocket. " +
	"Every frame is a JSON object {\"stream\", \"payload\"}. A request names an action on a stream's binding; " +
	"exactly one reply answers it, with the request's request_id, response_status, data and errors. " +
	"Pushes arrive unasked for the subscriptions of the connection, and have no response_status. " +
	"docs/protocol.md in wsbind's repository is the contract."

// channelKey names the one channel.
const channelKey = "websocket"

// gen accumulates the document's maps.
type gen struct {
	schemas, messages, channelMessages, operations object
	// names taken among component schemas (and the TypeScript names the
	// type generator declares), and among messages and operations.
	schemaNames, messageNames, operationNames map[string]bool
}

func newGen() *gen {
	g := &gen{
		schemaNames:    map[string]bool{},
		messageNames:   map[string]bool{},
		operationNames: map[string]bool{},
	}
	// Names a model must not take: TypeScript's own types, which a
	// declaration of the same name would shadow, and what the type
	// generator declares besides the schemas.
	for _, n := range []string{"Array", "BigInt", "Boolean", "Date", "Error", "Function", "JSON", "Map", "Math",
		"NonNullable", "Number", "Object", "Omit", "Partial", "Pick", "Promise", "Readonly", "Record",
		"RegExp", "Required", "Set", "String", "Symbol", "JsonValue", "Streams", "StreamInputs"} {
		g.schemaNames[n] = true
	}
	g.shared()
	return g
}

// schema adds a component schema under name and returns a reference to it.
func (g *gen) schema(name string, s object) object {
	g.schemaNames[name] = true
	g.schemas = append(g.schemas, member{name, s})
	return ref("schemas", name)
}

func ref(kind, name string) object {
	return obj("$ref", "#/components/"+kind+"/"+name)
}

// Shared schemas.
var (
	pkRef      = ref("schemas", "Pk")
	requestRef = ref("schemas", "RequestId")
	errorsRef  = ref("schemas", "Errors")
	cursorRef  = ref("schemas", "Cursor")
	versionRef = ref("schemas", "Version")
	ifVerRef   = ref("schemas", "IfVersion")
	keyRef     = ref("schemas", "IdempotencyKey")
	subActRef  = ref("schemas", "SubscriptionAction")
	statusRef  = ref("schemas", "ResponseStatus")
	anyRef     = ref("schemas", "AnyValue")
)

func (g *gen) shared() {
	g.schema("Pk", obj(
		"description", "An object's id. 7 and \"7\" are the same pk; the server's ids are strings.",
		"type", []string{"string", "integer"},
	))
	g.schema("RequestId", obj(
		"description", "Any JSON value the client chooses; its reply echoes it (null when the request had none). At most 1024 bytes.",
	))
	g.schema("AnyValue", obj(
		"description", "Any JSON value.",
	))
	g.schema("Errors", obj(
		"description", "Empty on success. On failure, messages, or one object mapping field names to their messages (Django REST framework's form).",
		"type", "array",
		"items", obj("oneOf", []any{
			obj("type", "string"),
			obj("type", "object", "additionalProperties", obj("type", "array", "items", obj("type", "string"))),
		}),
	))
	g.schema("ResponseStatus", obj(
		"description", "An HTTP status: 200 or 201 on success; 400, 401, 404, 409, 413 or 500 on failure (docs/protocol.md §6).",
		"type", "integer",
	))
	g.schema("Cursor", obj(
		"description", "An opaque position in a stream's changes. Store it, never parse it.",
		"type", "string",
	))
	g.schema("Version", obj(
		"description", "The object's version: 1 when created, one more for every committed write (a delete too).",
		"type", "integer",
		"minimum", 1,
	))
	g.schema("IfVersion", obj(
		"description", "The version the client expects the object at: at any other, nothing is written and the reply is 409.",
		"type", "integer",
		"minimum", 0,
	))
	g.schema("IdempotencyKey", obj(
		"description", "A write with a key runs once: a repeat by the same user within 24 hours answers the first reply again.",
		"type", "string",
		"minLength", 1,
		"maxLength", 128,
	))
	g.schema("SubscriptionAction", obj(
		"description", "The kind of change a subscription receives.",
		"type", "string",
		"enum", []string{"create", "update", "delete"},
	))
	g.schema("Truncated", obj(
		"description", "A list entry too large for the page's message: retrieve the object.",
		"type", "object",
		"required", []string{"id", "truncated"},
		"properties", obj(
			"id", obj("type", "string"),
			"truncated", obj("const", true),
		),
	))
}

// names of one stream's schemas.
type names struct{ object, input, patch, filter string }

// pickNames chooses the stream's schema names: the model's name after its
// app ("polls.question": Question), else the whole label, else the
// stream's, else a number added; the four must all be free.
func (g *gen) pickNames(s guest.Stream) names {
	model := s.Model
	if i := strings.IndexByte(model, '.'); i >= 0 {
		model = model[i+1:]
	}
	free := func(base string) (names, bool) {
		n := names{base, base + "Input", base + "Patch", base + "Filter"}
		ok := base != "" && !g.schemaNames[n.object] && !g.schemaNames[n.input] && !g.schemaNames[n.patch] && !g.schemaNames[n.filter]
		return n, ok
	}
	candidates := []string{pascal(model), pascal(s.Model), pascal(s.Stream)}
	for _, c := range candidates {
		if n, ok := free(c); ok {
			return n
		}
	}
	for i := 2; ; i++ {
		if n, ok := free(fmt.Sprintf("%s%d", pascal(s.Stream), i)); ok {
			return n
		}
	}
}

// pascal makes a TypeScript identifier of a label: its runs of letters
// and digits, each capitalized ("polls.question": PollsQuestion).
func pascal(label string) string {
	var b strings.Builder
	up := true
	for _, c := range label {
		switch {
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9':
			if up && c >= 'a' && c <= 'z' {
				c -= 'a' - 'A'
			}
			b.WriteRune(c)
			up = false
		default:
			up = true
		}
	}
	s := b.String()
	if s != "" && s[0] >= '0' && s[0] <= '9' {
		s = "M" + s
	}
	return s
}

// key makes a component key of parts: the letters, digits, '.', '-' and
// '_' AsyncAPI allows, anything else as '_'; a key already taken gets a
// number.
func key(taken map[string]bool, parts ...string) string {
	k := strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_' {
			return c
		}
		return '_'
	}, strings.Join(parts, "."))
	out := k
	for i := 2; taken[out]; i++ {
		out = fmt.Sprintf("%s_%d", k, i)
	}
	taken[out] = true
	return out
}
