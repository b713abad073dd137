package asyncapi

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"github.com/wsbind/wsbind/internal/core/store"
	"github.com/wsbind/wsbind/internal/sandbox/guest"
)

// stream adds a binding's schemas, messages and operations.
func (g *gen) stream(s guest.Stream) error {
	n := g.pickNames(s)
	if err := g.objectSchemas(s, n); err != nil {
		return err
	}
	for _, a := range s.Actions {
		req, reply := g.action(s, n, a)
		op := key(g.operationNames, s.Stream, a.Name)
		g.operations = append(g.operations, member{op, obj(
			"action", "send",
			"channel", channelRef,
			"title", s.Stream+" "+a.Name,
			"summary", summary(a),
			"messages", []any{channelMessageRef(req)},
			"reply", obj(
				"channel", channelRef,
				"messages", []any{channelMessageRef(reply)},
			),
		)})
	}
	if offers(s, "subscribe") {
		push := g.message(key(g.messageNames, s.Stream, "push"), s.Stream+" push",
			"A change to an object, sent to each connection whose subscriptions let it see the change (docs/protocol.md §4): "+
				"create, update or delete, one push per change per connection. The object is data (for a delete, as it was); "+
				"pk and version name the change, so a repeat can be dropped. A replayed change (subscribe with since) has replay: true.",
			frame(s.Stream, obj(
				"type", "object",
				"required", []string{"action", "data", "model", "pk"},
				"properties", obj(
					"action", subActRef,
					"data", obj("anyOf", []any{ref("schemas", n.object), obj("type", "null")},
						"description", "The object; null when truncated."),
					"model", obj("const", s.Model),
					"pk", obj("type", "string"),
					"version", versionRef,
					"cursor", cursorRef,
					"replay", obj("const", true, "description", "Present on a change replayed for a subscribe with since."),
					"truncated", obj("const", true, "description", "Present when the object did not fit in a message: retrieve it."),
				),
			)), false)
		op := key(g.operationNames, s.Stream, "push")
		g.operations = append(g.operations, member{op, obj(
			"action", "receive",
			"channel", channelRef,
			"title", s.Stream+" push",
			"summary", "Changes to "+s.Stream+" the connection subscribed to.",
			"messages", []any{channelMessageRef(push)},
		)})
	}
	return nil
}

// offers reports whether the binding has the built-in action.
func offers(s guest.Stream, action string) bool {
	return slices.ContainsFunc(s.Actions, func(a guest.Action) bool { return a.Name == action && !a.Custom })
}

var channelRef = obj("$ref", "#/channels/"+channelKey)

func channelMessageRef(k string) object {
	return obj("$ref", "#/channels/"+channelKey+"/messages/"+k)
}

// message adds a component message and its entry in the channel, and
// returns its key.
func (g *gen) message(k, title, summary string, payload object, correlated bool) string {
	m := obj("name", k, "title", title, "summary", summary, "payload", payload)
	if correlated {
		m.set("correlationId", ref("correlationIds", "requestId"))
	}
	g.messages = append(g.messages, member{k, m})
	g.channelMessages = append(g.channelMessages, member{k, ref("messages", k)})
	return k
}

// frame is the schema of a frame of the stream around its payload.
func frame(stream string, payload object) object {
	return obj(
		"type", "object",
		"required", []string{"stream", "payload"},
		"properties", obj(
			"stream", obj("const", stream),
			"payload", payload,
		),
	)
}

// objectSchemas adds the stream's object shapes: as the server writes it,
// as create and update take it, as patch takes it, and a filter.
func (g *gen) objectSchemas(s guest.Stream, n names) error {
	out := obj()
	var outRequired []string
	in, patch := obj(), obj()
	var inRequired []string
	filter := obj()
	for _, f := range s.Fields {
		if !f.WriteOnly {
			sch, err := fieldSchema(f, true)
			if err != nil {
				return fmt.Errorf("asyncapi: stream %s: %w", s.Stream, err)
			}
			out = append(out, member{f.Name, sch})
			outRequired = append(outRequired, f.Name)
			if f.Type != "json" {
				filter = append(filter, member{f.Name, filterSchema(f)})
			}
		}
		if !f.ReadOnly && !f.PK {
			sch, err := fieldSchema(f, false)
			if err != nil {
				return fmt.Errorf("asyncapi: stream %s: %w", s.Stream, err)
			}
			in = append(in, member{f.Name, sch})
			patch = append(patch, member{f.Name, sch})
			if f.Required {
				inRequired = append(inRequired, f.Name)
			}
		}
	}
	shape := func(shape, desc string, props object, required []string) object {
		o := obj("description", desc, "type", "object", "properties", props)
		if len(required) > 0 {
			o.set("required", required)
		}
		o.set(extStream, s.Stream)
		o.set(extShape, shape)
		return o
	}
	g.schema(n.object, shape(shapeObject, "A "+s.Model+" object of stream "+s.Stream+" as the server sends it: every readable field, write-only ones never.", out, outRequired))
	// The other shapes only where an action takes them (a read-only
	// binding takes none).
	if offers(s, "create") || offers(s, "update") {
		g.schema(n.input, shape(shapeInput, "The data of a create or update on "+s.Stream+": the writable fields; read-only and unknown ones are ignored.", in, inRequired))
	}
	if offers(s, "patch") {
		g.schema(n.patch, shape(shapePatch, "The data of a patch on "+s.Stream+": only the fields to change.", patch, nil))
	}
	if offers(s, "subscribe") || offers(s, "unsubscribe") {
		f := shape(shapeFilter, "A subscription's filter on "+s.Stream+": an object matches when each field named equals its value.", filter, nil)
		f.set("additionalProperties", false)
		g.schema(n.filter, f)
	}
	return nil
}

// fieldSchema is a field's JSON Schema in output (replies, pushes) or
// input (create, update, patch data). Input carries the field's options;
// a blank string is refused unless AllowBlank, so it takes at least one
// character.
func fieldSchema(f guest.Field, output bool) (object, error) {
	var s object
	switch f.Type {
	case "string", "integer", "number", "boolean":
		s = obj("type", f.Type)
	case "date-time":
		if output {
			s = obj("type", []string{"string", "null"}, "format", "date-time",
				"description", "RFC 3339 in UTC; null while unset.")
		} else {
			s = obj("type", "string", "format", "date-time")
		}
	case "json":
		s = obj("description", "Any JSON value.")
		if !output && !f.Nullable {
			s = obj("description", "Any JSON value but null.", "not", obj("type", "null"))
		}
	default:
		// A guest newer than this host: say what is known.
		s = obj("description", "A field of type "+f.Type+".")
	}
	if f.PK {
		s.set("description", "The object's id, chosen by the server.")
	}
	if output {
		// Output is the type alone: the options are checked on input, but
		// a field left out stores its zero value ("" for a string with
		// choices), hooks set read-only fields unchecked, and other tools
		// may write the table.
		if f.ReadOnly {
			s.set("readOnly", true)
		}
		return s, nil
	}
	if f.MaxLength != nil {
		s.set("maxLength", *f.MaxLength)
	}
	minLen := f.MinLength
	if f.Type == "string" && !f.AllowBlank && len(f.Enum) == 0 && (minLen == nil || *minLen < 1) {
		one := 1 // blank is refused: at least one character
		minLen = &one
	}
	if minLen != nil {
		s.set("minLength", *minLen)
	}
	if f.Minimum != nil {
		s.set("minimum", *f.Minimum)
	}
	if f.Maximum != nil {
		s.set("maximum", *f.Maximum)
	}
	if len(f.Enum) > 0 {
		s.set("enum", f.Enum)
	}
	if len(f.Default) > 0 {
		s.set("default", json.RawMessage(f.Default))
	}
	return s, nil
}

// filterSchema is the value a filter may give a field: the field's
// value as the server writes it, or null.
func filterSchema(f guest.Field) object {
	switch f.Type {
	case "string", "boolean":
		return obj("type", []string{f.Type, "null"})
	case "integer", "number":
		return obj("type", []string{"number", "null"})
	case "date-time":
		return obj("type", []string{"string", "null"}, "format", "date-time")
	}
	return obj("type", []string{"string", "number", "boolean", "null"})
}

// action adds an action's request and reply messages and returns their
// keys.
func (g *gen) action(s guest.Stream, n names, a guest.Action) (req, reply string) {
	objRef := ref("schemas", n.object)
	reqProps := obj("action", obj("const", a.Name), "request_id", requestRef)
	var data any
	var replyData any = anyRef
	version, write := false, false
	pkData := obj("description", "Ignored but for pk, which names the object when payload.pk is absent.",
		"type", []string{"object", "null"}, "properties", obj("pk", pkRef))
	switch {
	case a.Custom:
		data = obj("description", "The action's input, as the binding reads it.")
		version, write = a.Detail, true
	case a.Name == "create":
		data = ref("schemas", n.input)
		replyData = nullable(objRef)
		version, write = true, true
	case a.Name == "retrieve":
		data = pkData
		replyData = nullable(objRef)
		version = true
	case a.Name == "update":
		data = ref("schemas", n.input)
		replyData = nullable(objRef)
		version, write = true, true
	case a.Name == "patch":
		data = ref("schemas", n.patch)
		replyData = nullable(objRef)
		version, write = true, true
	case a.Name == "delete":
		data = pkData
		replyData = nullable(obj("type", "object", "maxProperties", 0))
		version, write = true, true
	case a.Name == "list":
		data = obj("type", []string{"object", "null"}, "properties", obj(
			"page", obj("type", "integer", "minimum", 1, "default", 1, "description", "The page, from 1; past the last, 404 Invalid page."),
			"after", obj("type", "string", "minLength", 1, "maxLength", store.MaxPK,
				"description", "The page of the objects whose pks sort after this one (by UTF-8 bytes): the last pk of the page before. Unlike page, a delete or create before it moves nothing; past the last object, an empty page. At most "+strconv.Itoa(store.MaxPK)+" bytes, alone or with page 1; anything else is 404 Invalid cursor."),
		))
		replyData = nullable(obj(
			"type", "array",
			"maxItems", s.PageSize,
			"description", "The page's objects in pk order; a short page (or an empty one, or Invalid page.) ends the list.",
			"items", obj("anyOf", []any{objRef, ref("schemas", "Truncated")}),
		))
	case a.Name == "subscribe":
		data = obj("type", "object", "required", []string{"action"}, "properties", obj(
			"action", subActRef,
			"filter", nullable(ref("schemas", n.filter)),
			"since", obj("allOf", []any{cursorRef}, "description", "Replay the changes after this cursor (a push's, or a list reply's) before the reply."),
			"pk", pkRef,
		))
		replyData = nullable(obj("type", "object", "required", []string{"action"}, "properties", obj(
			"action", subActRef,
			"gap", obj("const", true, "description", "The changes since the cursor were not replayed (too old, or too many): list again."),
		)))
	case a.Name == "unsubscribe":
		data = obj("type", "object", "required", []string{"action"}, "properties", obj(
			"action", subActRef,
			"filter", nullable(ref("schemas", n.filter)),
			"pk", pkRef,
		))
		replyData = nullable(obj("type", "object", "required", []string{"action"}, "properties", obj(
			"action", subActRef,
		)))
	default:
		// A built-in this host does not know (a newer guest).
		data = obj("description", "The action's input.")
	}
	if a.Detail || a.Name == "subscribe" || a.Name == "unsubscribe" {
		reqProps = append(reqProps, member{"pk", pkRef})
	}
	reqProps = append(reqProps, member{"data", data})
	if write && a.Detail {
		reqProps = append(reqProps, member{"if_version", ifVerRef})
	}
	if write {
		reqProps = append(reqProps, member{"idempotency_key", keyRef})
	}
	req = g.message(key(g.messageNames, s.Stream, a.Name, "request"), s.Stream+" "+a.Name,
		summary(a), frame(s.Stream, obj(
			"type", "object",
			"required", []string{"action"},
			"properties", reqProps,
		)), true)

	replyProps := obj(
		"action", obj("const", a.Name),
		"data", replyData,
		"errors", errorsRef,
		"response_status", statusRef,
		"request_id", requestRef,
	)
	if version {
		replyProps = append(replyProps, member{"version", versionRef})
	}
	if write {
		replyProps = append(replyProps,
			member{"pk", obj("type", "string", "description", "With truncated: the object the committed write made or changed.")},
			member{"truncated", obj("const", true, "description", "The committed write's object did not fit in a message: data is null.")},
		)
	}
	if a.Name == "list" && !a.Custom {
		replyProps = append(replyProps, member{"cursor", obj("allOf", []any{cursorRef},
			"description", "Where the page was read: subscribe with since set to the first page's cursor to miss no change.")})
	}
	if a.Name == "subscribe" && !a.Custom {
		replyProps = append(replyProps, member{"cursor", obj("allOf", []any{cursorRef},
			"description", "Where the subscription began: resume it from here (since) if no push has come since.")})
	}
	reply = g.message(key(g.messageNames, s.Stream, a.Name, "reply"), s.Stream+" "+a.Name+" reply",
		"The one reply to "+a.Name+": success with data and no errors, or data null and errors.",
		frame(s.Stream, obj(
			"type", "object",
			"required", []string{"action", "data", "errors", "response_status", "request_id"},
			"properties", replyProps,
		)), true)
	return req, reply
}

func nullable(s any) object {
	return obj("anyOf", []any{s, obj("type", "null")})
}

// summary says what an action does.
func summary(a guest.Action) string {
	if a.Custom {
		if a.Detail {
			return "Custom action " + a.Name + " on one object (pk)."
		}
		return "Custom action " + a.Name + " on the collection."
	}
	switch a.Name {
	case "create":
		return "Create an object: 201 and the object."
	case "retrieve":
		return "Read an object: 200 and the object, 404 when it is missing or outside your scope."
	case "update":
		return "Replace an object's writable fields (every required field): 200 and the object."
	case "patch":
		return "Change only the fields sent: 200 and the object."
	case "delete":
		return "Delete an object: 200 and {}."
	case "list":
		return "A page of objects in pk order."
	case "subscribe":
		return "Receive pushes of one kind of change, optionally for one pk and filtered; with since, the changes after a cursor are replayed before the reply."
	case "unsubscribe":
		return "Undo the subscribe with the same pk and data."
	}
	return "Action " + a.Name + "."
}

// gateway adds what any frame may be answered with besides its stream's
// reply: an error reply to a frame that names no binding or is malformed,
// and API Gateway's own message when the route function failed.
func (g *gen) gateway() {
	bad := g.message(key(g.messageNames, "invalid_frame"), "Invalid frame",
		"The reply to a malformed frame (400 Invalid Message: ...) or to a stream no binding serves (400 Invalid Stream), echoing what could be read.",
		obj(
			"type", "object",
			"required", []string{"stream", "payload"},
			"properties", obj(
				"stream", obj("type", []string{"string", "null"}),
				"payload", obj(
					"type", "object",
					"required", []string{"action", "data", "errors", "response_status", "request_id"},
					"properties", obj(
						"action", obj("type", []string{"string", "null"}),
						"data", obj("type", "null"),
						"errors", errorsRef,
						"response_status", statusRef,
						"request_id", requestRef,
					),
				),
			),
		), true)
	gw := g.message(key(g.messageNames, "gateway_error"), "API Gateway error",
		"API Gateway's own answer when the route function failed or took longer than 29 seconds: it has no stream or payload, "+
			"and does not say which request it answers (requestId is API Gateway's).",
		obj(
			"type", "object",
			"required", []string{"message"},
			"properties", obj(
				"message", obj("type", "string", "examples", []string{"Internal server error", "Endpoint request timed out"}),
				"connectionId", obj("type", "string"),
				"requestId", obj("type", "string"),
			),
		), false)
	for _, m := range []struct{ key, title, summary string }{
		{bad, "Invalid frame", "Replies to frames no binding can take."},
		{gw, "API Gateway error", "API Gateway's messages when the route function cannot answer."},
	} {
		g.operations = append(g.operations, member{key(g.operationNames, m.key), obj(
			"action", "receive",
			"channel", channelRef,
			"title", m.title,
			"summary", m.summary,
			"messages", []any{channelMessageRef(m.key)},
		)})
	}
}
