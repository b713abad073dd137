package protocoltest

import (
	"fmt"
	"strings"
	"time"

	"github.com/wsbind/wsbind/internal/core/store"
)

// Case is one transcript: what it shows, and its steps.
type Case struct {
	Name  string
	Doc   string
	Steps []Step
}

// Step sends a frame from a connection, or writes an item straight to the
// store (Put).
type Step struct {
	Conn  Conn
	Frame string
	Put   *PutItem
}

// PutItem is a direct write to the store.
type PutItem struct {
	Stream string
	Item   store.Item
}

// The connections of the cases.
var (
	anon  = Conn{ID: "conn-anon"}
	alice = Conn{ID: "conn-alice", User: "alice"}
	bob   = Conn{ID: "conn-bob", User: "bob"}
	admin = Conn{ID: "conn-admin", User: "admin"}
)

func send(c Conn, frame string) Step { return Step{Conn: c, Frame: frame} }

// msg builds a frame from its parts; pk and data are raw JSON ("" leaves
// them out).
func msg(stream, action, pk, data string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `{"stream":%q,"payload":{"action":%q`, stream, action)
	if pk != "" {
		fmt.Fprintf(&b, `,"pk":%s`, pk)
	}
	if data != "" {
		fmt.Fprintf(&b, `,"data":%s`, data)
	}
	b.WriteString("}}")
	return b.String()
}

func q(action, pk, data string) string { return msg("questions", action, pk, data) }

func put(stream, id, data string) Step {
	return Step{Put: &PutItem{Stream: stream, Item: store.Item{ID: id, Data: []byte(data)}}}
}

// createQuestions creates n questions "Q1".."Qn" from anon.
func createQuestions(n int) []Step {
	steps := make([]Step, n)
	for i := range steps {
		steps[i] = send(anon, q("create", "", fmt.Sprintf(`{"question_text":"Q%d"}`, i+1)))
	}
	return steps
}

// nested is n arrays, one inside the other: [[...[]...]].
func nested(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }

func join(parts ...[]Step) []Step {
	var out []Step
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// Cases returns every case of the suite.
func Cases() []Case {
	return append(append(seedCases(), protocolCases()...), privateCases()...)
}

// nt is a frame of the private notes binding.
func nt(action, pk, data string) string { return msg("notes", action, pk, data) }

// The connections of the private-data cases.
var (
	root    = Conn{ID: "conn-root", User: "root", Roles: []string{"admin"}}
	expired = Conn{ID: "conn-late", User: "carol", Expires: Start.Add(5 * time.Second).Unix()}
)

// privateCases are the protocol's private data: "Who sees what", "Enter and
// leave", "Filtered subscriptions" and "Unsubscribe" (the full
// authorization matrix is PlayMatrix).
func privateCases() []Case {
	long := `"` + strings.Repeat("k", 2000) + `"`
	return []Case{
		{Name: "private_scope", Doc: "A scoped binding: each user sees only their notes; another's is 404 everywhere, and an admin reads all but writes only their own.", Steps: []Step{
			send(alice, nt("create", "", `{"text":"alice's"}`)),
			send(bob, nt("create", "", `{"text":"bob's"}`)),
			send(bob, nt("retrieve", `"id0001"`, "")),
			send(bob, nt("patch", `"id0001"`, `{"text":"bob was here"}`)),
			send(bob, nt("delete", `"id0001"`, "")),
			send(bob, nt("pin", `"id0001"`, "")),
			send(bob, nt("list", "", "")),
			send(bob, nt("count", "", "")),
			send(root, nt("list", "", "")),
			send(root, nt("retrieve", `"id0001"`, "")),
			send(root, nt("patch", `"id0001"`, `{"text":"root was here"}`)),
			send(alice, nt("retrieve", `"id0001"`, "")),
		}},
		{Name: "private_push", Doc: "Pushes are checked per subscriber against the object after the change (before, for a delete): bob's subscriptions, even by pk, stay silent on alice's notes.", Steps: []Step{
			send(bob, nt("subscribe", "", `{"action":"create"}`)),
			send(bob, nt("subscribe", `"id0001"`, `{"action":"update"}`)),
			send(root, nt("subscribe", "", `{"action":"update"}`)),
			send(alice, nt("create", "", `{"text":"alice's"}`)),
			send(alice, nt("patch", `"id0001"`, `{"text":"still alice's"}`)),
			send(bob, nt("create", "", `{"text":"bob's"}`)),
		}},
		{Name: "filter_enter_leave", Doc: "A filtered subscription sees an object enter (a create push) and leave (a delete push, with the object as it was), and nothing while it is outside.", Steps: join(createQuestions(1), []Step{
			send(bob, q("subscribe", "", `{"action":"create","filter":{"published":true}}`)),
			send(bob, q("subscribe", "", `{"action":"update","filter":{"published":true}}`)),
			send(bob, q("subscribe", "", `{"action":"delete","filter":{"published":true}}`)),
			send(anon, q("patch", `"id0001"`, `{"question_text":"Unseen?"}`)),
			send(anon, q("publish", `"id0001"`, "")),
			send(anon, q("patch", `"id0001"`, `{"question_text":"Seen?"}`)),
			send(anon, q("unpublish", `"id0001"`, "")),
			send(anon, q("patch", `"id0001"`, `{"question_text":"Unseen again?"}`)),
			send(anon, q("create", "", `{"question_text":"Born unpublished"}`)),
		})},
		{Name: "filter_errors", Doc: "A filter must be an object of scalar values for readable, scalar fields.", Steps: []Step{
			send(anon, q("subscribe", "", `{"action":"update","filter":{"nope":1}}`)),
			send(anon, q("subscribe", "", `{"action":"update","filter":{"published":{"a":1}}}`)),
			send(anon, q("subscribe", "", `{"action":"update","filter":[1]}`)),
			send(anon, msg("widgets", "subscribe", "", `{"action":"update","filter":{"secret":"x"}}`)),
			send(anon, msg("widgets", "subscribe", "", `{"action":"update","filter":{"meta":null}}`)),
			send(anon, q("subscribe", "", `{"action":"update","filter":{"id":"x","published":false,"question_text":"`+strings.Repeat("q", 600)+`"}}`)),
			send(anon, q("subscribe", "", `{"action":"update","filter":null}`)),
		}},
		{Name: "unsubscribe", Doc: "unsubscribe removes exactly the subscription that subscribe made, filter and pk included; removing one that does not exist is 200 too.", Steps: join(createQuestions(1), []Step{
			send(bob, q("subscribe", "", `{"action":"update"}`)),
			send(bob, q("subscribe", "", `{"action":"update","filter":{"published":false}}`)),
			send(bob, q("subscribe", `"id0001"`, `{"action":"update"}`)),
			send(bob, q("unsubscribe", "", `{"action":"update"}`)),
			send(anon, q("patch", `"id0001"`, `{"question_text":"Still pushed?"}`)),
			send(bob, q("unsubscribe", "", `{"action":"update","filter":{"published":false}}`)),
			send(bob, q("unsubscribe", `"id0001"`, `{"action":"update"}`)),
			send(anon, q("patch", `"id0001"`, `{"question_text":"Quiet?"}`)),
			send(bob, q("unsubscribe", "", `{"action":"delete"}`)),
			send(bob, q("unsubscribe", "", `{}`)),
		})},
		{Name: "pk_too_long", Doc: "A pk longer than 1024 bytes (DynamoDB's key limit) is refused with 400, for every action that takes one.", Steps: []Step{
			send(anon, q("subscribe", long, `{"action":"update"}`)),
			send(anon, q("retrieve", long, "")),
			send(anon, q("patch", long, `{}`)),
			send(anon, q("delete", long, "")),
			send(anon, q("publish", long, "")),
			send(alice, nt("retrieve", long, "")),
			send(anon, q("list", long, "")),
		}},
		{Name: "token_expired", Doc: "A connection whose token has expired is answered 401 Token expired, and is pushed nothing more.", Steps: join(createQuestions(1), []Step{
			send(expired, q("subscribe", "", `{"action":"update"}`)),
			send(anon, q("patch", `"id0001"`, `{"question_text":"Before?"}`)),
			send(anon, q("list", "", "")),
			send(expired, q("retrieve", `"id0001"`, "")),
			send(anon, q("patch", `"id0001"`, `{"question_text":"After?"}`)),
		})},
	}
}

// seedCases port channels-api's own test suite, one case per test.
func seedCases() []Case {
	return []Case{
		{Name: "seed_create", Doc: "channels-api test_create: 201 and the serialized object, request_id echoed.", Steps: []Step{
			send(anon, `{"stream":"questions","payload":{"action":"create","data":{"question_text":"Why?"},"request_id":"client-side-request-id"}}`),
		}},
		{Name: "seed_create_failure", Doc: "channels-api test_create_failure: {} misses a required field: 400, one object of field errors.", Steps: []Step{
			send(anon, `{"stream":"questions","payload":{"action":"create","data":{},"request_id":"client-side-request-id"}}`),
		}},
		{Name: "seed_retrieve", Doc: "channels-api test_retrieve: 200 and the object.", Steps: join(createQuestions(1), []Step{
			send(anon, q("retrieve", `"id0001"`, "")),
		})},
		{Name: "seed_retrieve_404", Doc: "channels-api test_retrieve_404: a pk that does not exist.", Steps: []Step{
			send(anon, `{"stream":"questions","payload":{"action":"retrieve","pk":1,"request_id":"r"}}`),
		}},
		{Name: "seed_retrieve_invalid_pk_404", Doc: "channels-api test_retrieve_invalid_pk_404: a pk that is not valid at all.", Steps: []Step{
			send(anon, q("retrieve", `"invalid-pk-value"`, "")),
			send(anon, q("retrieve", `-1`, "")),
		}},
		{Name: "seed_update", Doc: "channels-api test_update: 200 and the updated object.", Steps: join(createQuestions(1), []Step{
			send(anon, q("update", `"id0001"`, `{"question_text":"Updated?"}`)),
			send(anon, q("retrieve", `"id0001"`, "")),
		})},
		{Name: "seed_update_404", Doc: "channels-api test_update_404.", Steps: []Step{
			send(anon, q("update", `"id0001"`, `{"question_text":"Updated?"}`)),
		}},
		{Name: "seed_patch", Doc: "channels-api's patch: only the fields sent are validated and changed.", Steps: join(createQuestions(1), []Step{
			send(anon, q("patch", `"id0001"`, `{"question_text":"Patched?"}`)),
			send(anon, q("patch", `"id0001"`, `{}`)),
		})},
		{Name: "seed_delete", Doc: "channels-api test_delete: 200 and {}; the object is gone.", Steps: join(createQuestions(1), []Step{
			send(anon, q("delete", `"id0001"`, "")),
			send(anon, q("retrieve", `"id0001"`, "")),
		})},
		{Name: "seed_delete_404", Doc: "channels-api test_delete_404.", Steps: []Step{
			send(anon, q("delete", `"id0001"`, "")),
		}},
		{Name: "seed_list", Doc: "channels-api test_list: 26 objects, page 1 holds the 25 oldest, page 2 the last one.", Steps: join(createQuestions(26), []Step{
			send(anon, q("list", "", "")),
			send(anon, q("list", "", `{"page":2}`)),
		})},
		{Name: "seed_subscribe", Doc: "channels-api test_subscribe: subscribe to updates, then an update by another connection is pushed.", Steps: join(createQuestions(1), []Step{
			send(alice, q("subscribe", "", `{"action":"update"}`)),
			send(anon, q("update", `"id0001"`, `{"question_text":"Pushed?"}`)),
		})},
		{Name: "seed_subscribe_failure", Doc: "channels-api test_subscribe_failure: no action to subscribe to.", Steps: []Step{
			send(alice, q("subscribe", "", `{}`)),
		}},
		{Name: "seed_list_action", Doc: "channels-api test_list_action: a custom list action.", Steps: join(createQuestions(2), []Step{
			send(anon, q("publish", `"id0002"`, "")),
			send(anon, q("report", "", "")),
		})},
		{Name: "seed_detail_action", Doc: "channels-api test_detail_action: a custom detail action; pk in data as the README sends it.", Steps: join(createQuestions(1), []Step{
			send(anon, `{"stream":"questions","payload":{"action":"publish","data":{"pk":"id0001"}}}`),
		})},
		{Name: "seed_named_actions", Doc: "channels-api's name= on actions: wire names differ from the Go functions (shoutName, listNames).", Steps: []Step{
			send(anon, msg("widgets", "create", "", `{"name":"bolt"}`)),
			send(anon, msg("widgets", "shout", `"id0001"`, "")),
			send(anon, msg("widgets", "names", "", "")),
			send(anon, msg("widgets", "shoutName", `"id0001"`, "")),
		}},
		{Name: "seed_permission_denied", Doc: "channels-api test_permissions: a denied user gets 401, checked before the action exists.", Steps: []Step{
			send(anon, msg("notes", "create", "", `{"text":"hi"}`)),
			send(anon, msg("notes", "no_such_action", "", "")),
		}},
		{Name: "seed_invalid_action", Doc: "channels-api test_invalid_action.", Steps: []Step{
			send(anon, q("frobnicate", "", "")),
		}},
		{Name: "seed_is_authenticated", Doc: "channels-api's IsAuthenticated: anonymous 401, a verified user 201 with owner = the token's sub.", Steps: []Step{
			send(anon, msg("notes", "list", "", "")),
			send(alice, msg("notes", "create", "", `{"text":"mine","owner":"mallory"}`)),
			send(alice, msg("notes", "retrieve", `"id0001"`, "")),
			send(bob, msg("notes", "list", "", "")),
		}},
	}
}

// protocolCases cover the rest of the protocol (docs/protocol.md).
func protocolCases() []Case {
	bigText := strings.Repeat("b", 131_000)
	return []Case{
		{Name: "create_read_only_ignored", Doc: "Read-only fields (id among them) that a client sends are ignored.", Steps: []Step{
			send(anon, q("create", "", `{"id":"mine","question_text":"Why?","pub_date":"1999-01-01T00:00:00Z","published":true,"extra":1}`)),
		}},
		{Name: "create_text_input", Doc: `Text fields: a number is its decimal text, as Python's str() writes what json.loads read; boolean, object, array are "Not a valid string."; null "may not be null"; blank and white space "may not be blank"; 200 characters at most.`, Steps: []Step{
			send(anon, q("create", "", `{"question_text":42}`)),
			send(anon, q("create", "", `{"question_text":-1.50e3}`)),
			send(anon, q("create", "", `{"question_text":1e5}`)),
			send(anon, q("create", "", `{"question_text":1.50}`)),
			send(anon, q("create", "", `{"question_text":1e16}`)),
			send(anon, q("create", "", `{"question_text":0.000015}`)),
			send(anon, q("create", "", `{"question_text":-0}`)),
			send(anon, q("create", "", `{"question_text":123456789012345678901234567890}`)),
			send(anon, q("create", "", `{"question_text":1e400}`)),
			send(anon, q("create", "", `{"question_text":-1e400}`)),
			send(anon, q("create", "", `{"question_text":true}`)),
			send(anon, q("create", "", `{"question_text":{"a":1}}`)),
			send(anon, q("create", "", `{"question_text":["a"]}`)),
			send(anon, q("create", "", `{"question_text":null}`)),
			send(anon, q("create", "", `{"question_text":""}`)),
			send(anon, q("create", "", `{"question_text":"   "}`)),
			send(anon, q("create", "", `{"question_text":"  trimmed  "}`)),
			send(anon, q("create", "", `{"question_text":"`+strings.Repeat("é", 200)+`"}`)),
			send(anon, q("create", "", `{"question_text":"`+strings.Repeat("x", 201)+`"}`)),
			send(anon, q("create", "", `{"question_text":"tab\tquote\"backslash\\ unicode \u2603 \ud83d\ude00"}`)),
		}},
		{Name: "create_data_shapes", Doc: `Absent or null data counts as {}; data that is not an object: 400 non_field_errors naming its JSON type.`, Steps: []Step{
			put("questions", "q1", `{"id":"q1","question_text":"Kept"}`),
			send(anon, q("create", "", "")),
			send(anon, q("create", "", "null")),
			send(anon, q("create", "", `"text"`)),
			send(anon, q("create", "", `12`)),
			send(anon, q("create", "", `false`)),
			send(anon, q("create", "", `[{"question_text":"x"}]`)),
			send(anon, q("update", `"q1"`, `"text"`)),
			send(anon, q("patch", `"q1"`, `[]`)),
			send(anon, q("update", `"q1"`, "")),
		}},
		{Name: "not_found", Doc: "retrieve, update, patch, delete of a pk that does not exist or is not valid: 404 Not found.", Steps: join(createQuestions(1), []Step{
			send(anon, q("retrieve", `"id9999"`, "")),
			send(anon, q("update", `"invalid-pk-value"`, `{"question_text":"x"}`)),
			send(anon, q("patch", `-1`, `{"question_text":"x"}`)),
			send(anon, q("delete", `""`, "")),
			send(anon, q("retrieve", "", "")),
			send(anon, q("retrieve", "null", "")),
			send(anon, q("update", "", `{"question_text":"x"}`)),
			send(anon, q("delete", `"id0001"`, "")),
			send(anon, q("delete", `"id0001"`, "")),
		})},
		{Name: "pk_forms", Doc: "payload.pk may be a string or an integer (its decimal text); when absent, data.pk is used; payload.pk wins over data.pk.", Steps: []Step{
			put("questions", "7", `{"id":"7","question_text":"Seven"}`),
			send(anon, q("retrieve", `7`, "")),
			send(anon, q("retrieve", `"7"`, "")),
			send(anon, q("retrieve", "", `{"pk":7}`)),
			send(anon, q("retrieve", `"7"`, `{"pk":"8"}`)),
			send(anon, q("retrieve", `"8"`, `{"pk":"7"}`)),
			send(anon, q("retrieve", "", `{"pk":[7]}`)),
			send(anon, q("create", "", `{"question_text":"pk ignored","pk":{"a":1}}`)),
			send(anon, q("list", "", `{"pk":true}`)),
		}},
		{Name: "update_full", Doc: "update is full: every required field must be present; read-only fields keep their values; the object is found before data is validated.", Steps: join(createQuestions(1), []Step{
			send(anon, q("update", `"id0001"`, `{}`)),
			send(anon, q("update", `"id0001"`, `{"question_text":"","published":true}`)),
			send(anon, q("update", `"id0001"`, `{"question_text":"Full","published":true,"pub_date":"1999-01-01T00:00:00Z"}`)),
			send(anon, q("update", `"id0404"`, `{}`)),
		})},
		{Name: "patch_partial", Doc: "patch validates and changes only what is sent; an invalid field still answers 400.", Steps: join(createQuestions(1), []Step{
			send(anon, q("patch", `"id0001"`, "")),
			send(anon, q("patch", `"id0001"`, `{"question_text":null}`)),
			send(anon, q("patch", `"id0001"`, `{"question_text":"Patched"}`)),
		})},
		{Name: "list_pages", Doc: "list: empty collection page 1 is []; pages are integers from 1, or strings and numbers that denote one; anything else is Invalid page.", Steps: join([]Step{
			send(anon, q("list", "", "")),
			send(anon, q("list", "", `{"page":1}`)),
			send(anon, q("list", "", `{"page":2}`)),
		}, createQuestions(3), []Step{
			send(anon, msg("widgets", "create", "", `{"name":"w1"}`)),
			send(anon, msg("widgets", "create", "", `{"name":"w2"}`)),
			send(anon, msg("widgets", "create", "", `{"name":"w3"}`)),
			send(anon, msg("widgets", "list", "", `{"page":"2"}`)),
			send(anon, msg("widgets", "list", "", `{"page":2.0}`)),
			send(anon, msg("widgets", "list", "", `{"page":" 1 "}`)),
			send(anon, msg("widgets", "list", "", `{"page":3}`)),
			send(anon, msg("widgets", "list", "", `{"page":0}`)),
			send(anon, msg("widgets", "list", "", `{"page":-1}`)),
			send(anon, msg("widgets", "list", "", `{"page":1.5}`)),
			send(anon, msg("widgets", "list", "", `{"page":"2.0"}`)),
			send(anon, msg("widgets", "list", "", `{"page":"abc"}`)),
			send(anon, msg("widgets", "list", "", `{"page":true}`)),
			send(anon, msg("widgets", "list", "", `{"page":null}`)),
			send(anon, msg("widgets", "list", "", `{"page":[1]}`)),
			send(anon, msg("widgets", "list", "", `{"page":99999999999999999999}`)),
			send(anon, msg("widgets", "list", "", `"page"`)),
		})},
		{Name: "list_after", Doc: "list: data.after is a pk, and the page is of the objects whose pks sort after it, whether it names an object or not (deleted, never made): a deletion before it shifts nothing (page 2 skips w3 once w1 is gone; the page after id0002 does not); past the end is an empty page. after must be a string of 1 to 1024 bytes, with no page or page 1; anything else is Invalid cursor.", Steps: []Step{
			send(anon, msg("widgets", "create", "", `{"name":"w1"}`)),
			send(anon, msg("widgets", "create", "", `{"name":"w2"}`)),
			send(anon, msg("widgets", "create", "", `{"name":"w3"}`)),
			send(anon, msg("widgets", "create", "", `{"name":"w4"}`)),
			send(anon, msg("widgets", "create", "", `{"name":"w5"}`)),
			send(anon, msg("widgets", "list", "", "")),
			send(anon, msg("widgets", "delete", `"id0001"`, "")),
			send(anon, msg("widgets", "list", "", `{"after":"id0002"}`)),
			send(anon, msg("widgets", "list", "", `{"after":"id0004"}`)),
			send(anon, msg("widgets", "list", "", `{"after":"id0005"}`)),
			send(anon, msg("widgets", "list", "", `{"page":2}`)),
			send(anon, msg("widgets", "list", "", `{"after":"id0001"}`)),
			send(anon, msg("widgets", "list", "", `{"after":"id0003x"}`)),
			send(anon, msg("widgets", "list", "", `{"after":"a"}`)),
			send(anon, msg("widgets", "list", "", `{"after":"`+strings.Repeat("z", store.MaxPK)+`"}`)),
			send(anon, msg("widgets", "list", "", `{"after":"id0002","page":1}`)),
			send(anon, msg("widgets", "list", "", `{"after":"id0002","page":"1"}`)),
			send(anon, msg("widgets", "list", "", `{"after":"id0002","page":2}`)),
			send(anon, msg("widgets", "list", "", `{"after":"id0002","page":"abc"}`)),
			send(anon, msg("widgets", "list", "", `{"after":"id0002","page":null}`)),
			send(anon, msg("widgets", "list", "", `{"after":""}`)),
			send(anon, msg("widgets", "list", "", `{"after":null}`)),
			send(anon, msg("widgets", "list", "", `{"after":2}`)),
			send(anon, msg("widgets", "list", "", `{"after":["id0002"]}`)),
			send(anon, msg("widgets", "list", "", `{"after":"`+strings.Repeat("z", store.MaxPK+1)+`"}`)),
			send(anon, msg("widgets", "list", "", `{"after":"id0002","page":"x","nope":1}`)),
			send(anon, msg("widgets", "list", "", `"after"`)),
		}},
		{Name: "list_after_scopes", Doc: "list after a pk reaches what a plain list does: a user's own objects, or an admin's every scope.", Steps: []Step{
			send(alice, nt("create", "", `{"text":"a1"}`)),
			send(bob, nt("create", "", `{"text":"b1"}`)),
			send(alice, nt("create", "", `{"text":"a2"}`)),
			send(bob, nt("create", "", `{"text":"b2"}`)),
			send(bob, nt("list", "", `{"after":"id0001"}`)),
			send(alice, nt("list", "", `{"after":"id0001"}`)),
			send(root, nt("list", "", `{"after":"id0001"}`)),
			send(anon, nt("list", "", `{"after":"id0001"}`)),
		}},
		{Name: "subscribe_actions", Doc: "subscribe to create, update and delete of every object, or of one pk; a delete push carries the object as last stored; the reply echoes the action.", Steps: []Step{
			send(alice, `{"stream":"questions","payload":{"action":"subscribe","data":{"action":"create"},"request_id":1}}`),
			send(bob, q("subscribe", "", `{"action":"delete"}`)),
			send(bob, q("subscribe", `"id0001"`, `{"action":"update"}`)),
			send(anon, q("create", "", `{"question_text":"First"}`)),
			send(anon, q("create", "", `{"question_text":"Second"}`)),
			send(anon, q("update", `"id0002"`, `{"question_text":"Second, changed"}`)),
			send(anon, q("patch", `"id0001"`, `{"question_text":"First, changed"}`)),
			send(anon, q("delete", `"id0001"`, "")),
		}},
		{Name: "subscribe_errors", Doc: "subscribe needs data.action, one of create, update, delete.", Steps: []Step{
			send(alice, q("subscribe", "", "")),
			send(alice, q("subscribe", "", `{"action":null}`)),
			send(alice, q("subscribe", "", `"update"`)),
			send(alice, q("subscribe", "", `{"action":"retrieve"}`)),
			send(alice, q("subscribe", "", `{"action":"UPDATE"}`)),
			send(alice, q("subscribe", "", `{"action":3}`)),
		}},
		{Name: "subscribe_one_push", Doc: "One push per change per connection: a connection subscribed to all updates and to this pk gets the change once; a pk that does not exist yet may be subscribed.", Steps: []Step{
			send(alice, q("subscribe", "", `{"action":"update"}`)),
			send(alice, q("subscribe", `"id0001"`, `{"action":"update"}`)),
			send(alice, q("subscribe", `"id0001"`, `{"action":"update"}`)),
			send(bob, q("subscribe", "", `{"action":"update"}`)),
			send(anon, q("subscribe", `"id0001"`, `{"action":"update"}`)),
			send(anon, q("subscribe", `"id0001"`, `{"action":"create"}`)),
			send(anon, q("create", "", `{"question_text":"Watched"}`)),
			send(anon, q("update", `"id0001"`, `{"question_text":"Watched, changed"}`)),
		}},
		{Name: "push_any_writer", Doc: "Every push comes from the stored change: a write made straight to the store, not through the API, reaches subscribers; write-only fields never leave.", Steps: []Step{
			send(alice, q("subscribe", "", `{"action":"create"}`)),
			send(alice, q("subscribe", "", `{"action":"update"}`)),
			send(alice, msg("widgets", "subscribe", "", `{"action":"create"}`)),
			put("questions", "ext-1", `{"id":"ext-1","question_text":"From a script","published":true,"version":1,"unknown":"dropped"}`),
			put("questions", "ext-1", `{"id":"ext-1","question_text":"Edited in the console","published":false}`),
			put("widgets", "w-ext", `{"id":"w-ext","name":"ext","secret":"never pushed","count":"5"}`),
			put("other_table_stream", "x", `{"id":"x"}`),
		}},
		{Name: "push_permission", Doc: "Fan-out checks each subscriber's permission to retrieve the object: a subscription whose user lost it gets nothing.", Steps: []Step{
			send(anon, msg("vault", "subscribe", "", `{"action":"create"}`)),
			send(admin, msg("vault", "subscribe", "", `{"action":"create"}`)),
			send(admin, msg("vault", "subscribe", "", `{"action":"update"}`)),
			send(anon, msg("vault", "create", "", `{"text":"open"}`)),
			put("vault", "locked", `{"id":"locked","text":"secret"}`),
		}},
		{Name: "push_too_large", Doc: "A push that would exceed 128 KB is not dropped: it is sent without data, marked truncated.", Steps: []Step{
			send(alice, q("subscribe", "", `{"action":"create"}`)),
			put("questions", "big", `{"id":"big","question_text":"`+bigText+`"}`),
		}},
		{Name: "custom_actions", Doc: "Custom actions answer what they return: any JSON and status; not-found, validation and permission errors map to 404, 400 and 401.", Steps: join(createQuestions(1), []Step{
			send(anon, q("publish", `"id0001"`, "")),
			send(anon, q("publish", `"id0404"`, "")),
			send(anon, q("publish", "", "")),
			send(anon, q("report", "", "")),
			send(anon, msg("widgets", "echo", `"w1"`, `{"x":[1,2]}`)),
			send(anon, msg("widgets", "raw", "", "")),
			send(anon, msg("widgets", "fail_invalid", "", "")),
			send(anon, msg("widgets", "fail_field", "", "")),
			send(anon, msg("widgets", "fail_notfound", `"w1"`, "")),
			send(anon, msg("widgets", "fail_denied", "", "")),
		})},
		{Name: "permission_order", Doc: "Order of checks: frame, stream, permission (before the action exists), action, object, validation. All listed permissions must allow; a custom one sees user, action and pk.", Steps: []Step{
			send(anon, msg("nope", "nope", "", "")),
			send(anon, msg("notes", "nope", "", "")),
			send(alice, msg("notes", "nope", "", "")),
			send(anon, msg("vault", "create", "", `{"text":"v"}`)),
			send(anon, msg("vault", "update", `"id0001"`, `{"text":"w"}`)),
			send(admin, msg("vault", "update", `"id0001"`, `{"text":"w"}`)),
			send(admin, msg("vault", "update", `"id0404"`, `{"text":5}`)),
			send(admin, msg("vault", "update", `"id0001"`, `{"text":true}`)),
			send(admin, msg("vault", "retrieve", `"locked"`, "")),
			send(admin, msg("vault", "nope", "", "")),
		}},
		{Name: "read_only_binding", Doc: "A read-only binding offers retrieve and list only (channels-api's ReadOnlyResourceBinding).", Steps: []Step{
			put("labels", "l1", `{"id":"l1","text":"Label"}`),
			send(anon, msg("labels", "list", "", "")),
			send(anon, msg("labels", "retrieve", `"l1"`, "")),
			send(anon, msg("labels", "create", "", `{"text":"x"}`)),
			send(anon, msg("labels", "update", `"l1"`, `{"text":"x"}`)),
			send(anon, msg("labels", "patch", `"l1"`, `{"text":"x"}`)),
			send(anon, msg("labels", "delete", `"l1"`, "")),
			send(anon, msg("labels", "subscribe", "", `{"action":"create"}`)),
		}},
		{Name: "field_kinds", Doc: "Every field kind with Django REST framework's messages; write-only fields are stored, never sent; errors of several fields come in declaration order.", Steps: []Step{
			send(anon, msg("widgets", "create", "", `{"name":"full","code":"a","count":"12","ratio":"0.25","active":"yes","when":"2026-03-04T05:06:07+02:00","secret":"s3cret","meta":{"k":[1, 2]},"note":"  spaced  "}`)),
			send(anon, msg("widgets", "create", "", `{"name":"x","code":"c","count":101,"ratio":2,"active":"maybe","when":"tomorrow","meta":null,"note":""}`)),
			send(anon, msg("widgets", "create", "", `{"name":"01234567890","count":-1,"ratio":"x","active":null,"when":5}`)),
			send(anon, msg("widgets", "create", "", `{"name":"ints","count":12.0,"active":1,"when":"2026-03-04 05:06"}`)),
			send(anon, msg("widgets", "create", "", `{"name":"bad","count":1.5}`)),
			send(anon, msg("widgets", "create", "", `{"name":"bad","count":true}`)),
			send(anon, msg("widgets", "create", "", `{"name":"bad","count":"abc"}`)),
			send(anon, msg("widgets", "create", "", `{"name":"bad","count":99999999999999999999}`)),
			send(anon, msg("widgets", "create", "", `{"name":"bad","active":2}`)),
			send(anon, msg("widgets", "create", "", `{"name":"bad","ratio":1e400}`)),
			send(anon, msg("widgets", "create", "", `{"name":"bad","meta":{"a":null},"count":"0"}`)),
			send(anon, msg("widgets", "retrieve", `"id0001"`, "")),
		}},
		{Name: "malformed_frames", Doc: "Malformed frames: 400 Invalid Message with a short reason, echoing what could be read; the connection goes on.", Steps: []Step{
			send(anon, ``),
			send(anon, `{`),
			send(anon, `not json`),
			send(anon, `[]`),
			send(anon, `"questions"`),
			send(anon, `null`),
			send(anon, `42`),
			send(anon, `{}`),
			send(anon, `{"payload":{"action":"list","request_id":"r1"}}`),
			send(anon, `{"stream":5,"payload":{"action":"list","request_id":{"a":1}}}`),
			send(anon, `{"stream":"questions"}`),
			send(anon, `{"stream":"questions","payload":"list"}`),
			send(anon, `{"stream":"questions","payload":{"request_id":"r2"}}`),
			send(anon, `{"stream":"questions","payload":{"action":7,"request_id":"r3"}}`),
			send(anon, `{"stream":"questions","payload":{"action":"retrieve","pk":true,"request_id":"r4"}}`),
			send(anon, `{"stream":"questions","payload":{"action":"retrieve","pk":1.5}}`),
			send(anon, `{"stream":"questions","payload":{"action":"retrieve","pk":{"id":1}}}`),
			send(anon, `{"stream":"questions","payload":{"action":"list"}} trailing`),
			send(anon, "{\"stream\":\"questions\",\"payload\":{\"action\":\"list\",\"request_id\":\"\xff\"}}"),
			send(anon, `{"stream":"questions","payload":{"action":"create","data":`+nested(998)+`,"request_id":"deep-ok"}}`),
			send(anon, `{"stream":"questions","payload":{"action":"create","data":`+nested(999)+`,"request_id":"too-deep"}}`),
			send(anon, `{"stream":"questions","payload":{"action":"create","data":`+nested(999)+`,"request_id":"too-deep-and-broken"`),
			send(anon, `{"stream":"questions","payload":{"action":"list","request_id":"ok"}}`),
		}},
		{Name: "unknown_stream", Doc: "Unknown stream: 400 Invalid Stream, echoing stream and action.", Steps: []Step{
			send(anon, `{"stream":"polls","payload":{"action":"list","request_id":7}}`),
			send(anon, `{"stream":"","payload":{"action":"list"}}`),
		}},
		{Name: "request_id_echo", Doc: "request_id is any JSON value, echoed verbatim; null when absent.", Steps: []Step{
			send(anon, `{"stream":"questions","payload":{"action":"list","request_id":"abc-1"}}`),
			send(anon, `{"stream":"questions","payload":{"action":"list","request_id":1.50}}`),
			send(anon, `{"stream":"questions","payload":{"action":"list","request_id":{"k": [1, true]}}}`),
			send(anon, `{"stream":"questions","payload":{"action":"list","request_id":null}}`),
			send(anon, `{"stream":"questions","payload":{"action":"list"}}`),
		}},
		{Name: "internal_error", Doc: "An unexpected failure or a panic in a binding: 500 Internal Server Error, request_id kept, no internal text; the next message is served.", Steps: []Step{
			send(anon, `{"stream":"widgets","payload":{"action":"fail_internal","request_id":"e1"}}`),
			send(anon, `{"stream":"widgets","payload":{"action":"fail_panic","request_id":"e2"}}`),
			send(anon, `{"stream":"widgets","payload":{"action":"list","request_id":"e3"}}`),
		}},
		{Name: "message_size", Doc: "A request over 128 KB is refused; a read's reply that would exceed 128 KB is replaced by 413, never dropped, and a list page truncates its largest entries to {id, truncated} until it fits; echoed stream, action and request_id are at most 1024 bytes, so every reply fits.", Steps: []Step{
			send(anon, msg("widgets", "huge", "", "")),
			send(anon, msg("widgets", "create", "", `{"name":"big1","meta":"`+strings.Repeat("m", 66_000)+`"}`)),
			send(anon, msg("widgets", "create", "", `{"name":"big2","meta":"`+strings.Repeat("m", 66_000)+`"}`)),
			send(anon, msg("widgets", "list", "", "")),
			send(anon, msg("widgets", "create", "", `{"name":"big3","meta":"`+strings.Repeat("m", 131_100)+`"}`)),
			send(anon, msg("widgets", "names", "", "")),
			send(anon, `{"stream":"widgets","payload":{"action":"huge","request_id":"`+strings.Repeat("r", 1000)+`"}}`),
			send(anon, `{"stream":"widgets","payload":{"action":"list","request_id":"`+strings.Repeat("r", 1100)+`"}}`),
			send(anon, `{"stream":"`+strings.Repeat("s", 1100)+`","payload":{"action":"list","request_id":1}}`),
			send(anon, `{"stream":"widgets","payload":{"action":"`+strings.Repeat("a", 1100)+`","request_id":2}}`),
		}},
		{Name: "write_reply_truncated", Doc: "A committed write is never answered with an error: a reply too large for a message carries data null, truncated, the pk and the version; the push is truncated as ever.", Steps: []Step{
			send(bob, msg("widgets", "subscribe", "", `{"action":"create"}`)),
			send(bob, msg("widgets", "subscribe", "", `{"action":"update"}`)),
			send(anon, `{"stream":"widgets","payload":{"action":"create","data":{"name":"big","meta":"`+strings.Repeat("m", 130_900)+`"},"request_id":"big"}}`),
			send(anon, `{"stream":"widgets","payload":{"action":"patch","pk":"id0001","data":{"name":"bigger"},"request_id":"p"}}`),
			send(anon, `{"stream":"widgets","payload":{"action":"retrieve","pk":"id0001","request_id":"r"}}`),
			send(anon, `{"stream":"widgets","payload":{"action":"list","request_id":"l"}}`),
		}},
		{Name: "idempotent_writes", Doc: "A write with an idempotency_key runs once per user (anonymous: per connection) and key: a repeat answers the first reply with its own request_id and pushes nothing; a key used for another action is refused; reads ignore keys; bad keys are 400.", Steps: []Step{
			send(bob, q("subscribe", "", `{"action":"create"}`)),
			send(alice, `{"stream":"questions","payload":{"action":"create","data":{"question_text":"once"},"idempotency_key":"k1","request_id":1}}`),
			send(alice, `{"stream":"questions","payload":{"action":"create","data":{"question_text":"once"},"idempotency_key":"k1","request_id":2}}`),
			send(alice, `{"stream":"questions","payload":{"action":"create","data":{"question_text":"changed"},"idempotency_key":"k1"}}`),
			send(alice, `{"stream":"questions","payload":{"action":"patch","pk":"id0001","data":{"question_text":"other"},"idempotency_key":"k1","request_id":3}}`),
			send(bob, `{"stream":"questions","payload":{"action":"create","data":{"question_text":"bob's"},"idempotency_key":"k1","request_id":4}}`),
			send(anon, `{"stream":"questions","payload":{"action":"create","data":{},"idempotency_key":"bad","request_id":5}}`),
			send(anon, `{"stream":"questions","payload":{"action":"create","data":{"question_text":"fixed"},"idempotency_key":"bad","request_id":6}}`),
			send(alice, `{"stream":"questions","payload":{"action":"publish","pk":"id0001","idempotency_key":"p1","request_id":7}}`),
			send(alice, `{"stream":"questions","payload":{"action":"publish","pk":"id0001","idempotency_key":"p1","request_id":8}}`),
			send(alice, `{"stream":"questions","payload":{"action":"retrieve","pk":"id0001","idempotency_key":"k1","request_id":9}}`),
			send(alice, `{"stream":"questions","payload":{"action":"create","data":{"question_text":"x"},"idempotency_key":"","request_id":10}}`),
			send(alice, `{"stream":"questions","payload":{"action":"create","data":{"question_text":"x"},"idempotency_key":"`+strings.Repeat("é", 129)+`","request_id":11}}`),
			send(alice, `{"stream":"questions","payload":{"action":"create","data":{"question_text":"x"},"idempotency_key":7,"request_id":12}}`),
			send(alice, `{"stream":"questions","payload":{"action":"create","data":{"question_text":"x"},"idempotency_key":"`+strings.Repeat("é", 128)+`","request_id":13}}`),
		}},
		{Name: "versions", Doc: "Every object has a version: 1 at create, +1 per write, in create and detail replies and every push (a delete's push carries the next one). if_version on update, patch and delete answers 409 on a mismatch and changes nothing.", Steps: []Step{
			send(bob, q("subscribe", "", `{"action":"update"}`)),
			send(bob, q("subscribe", "", `{"action":"delete"}`)),
			send(anon, q("create", "", `{"question_text":"Q1"}`)),
			send(anon, `{"stream":"questions","payload":{"action":"patch","pk":"id0001","data":{"question_text":"Q1b"},"if_version":1}}`),
			send(anon, `{"stream":"questions","payload":{"action":"update","pk":"id0001","data":{"question_text":"stale"},"if_version":1,"request_id":"stale"}}`),
			send(anon, q("retrieve", `"id0001"`, "")),
			send(anon, q("publish", `"id0001"`, "")),
			send(anon, `{"stream":"questions","payload":{"action":"delete","pk":"id0001","if_version":2,"request_id":"stale-delete"}}`),
			send(anon, `{"stream":"questions","payload":{"action":"patch","pk":"id0404","data":{},"if_version":1,"request_id":"missing"}}`),
			send(anon, `{"stream":"questions","payload":{"action":"patch","pk":"id0001","data":{},"if_version":"3","request_id":"string"}}`),
			send(anon, `{"stream":"questions","payload":{"action":"patch","pk":"id0001","data":{},"if_version":-1,"request_id":"negative"}}`),
			send(anon, `{"stream":"questions","payload":{"action":"patch","pk":"id0001","data":{},"if_version":1.5,"request_id":"fraction"}}`),
			send(anon, `{"stream":"questions","payload":{"action":"delete","pk":"id0001","if_version":3,"request_id":"delete"}}`),
			send(anon, q("retrieve", `"id0001"`, "")),
		}},
	}
}
