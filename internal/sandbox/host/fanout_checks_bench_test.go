package host_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/wsbind/wsbind/internal/core/identity"
	"github.com/wsbind/wsbind/internal/core/store/memory"
	"github.com/wsbind/wsbind/internal/sandbox/abi"
	"github.com/wsbind/wsbind/internal/sandbox/host"
)

// BenchmarkFanoutChecks runs one update change per iteration through
// host.CallFanout to 1,000 subscribers, each of whom receives the push:
//
//   - checks=none: questions (AllowAny, unscoped): nothing to check but
//     the binding's permissions;
//   - checks=object: private notes, with the filter {"pinned": false}:
//     each subscriber is checked against the scope, the object permission
//     and the filter.
//
// In both, every subscriber is a different admin user on all updates.
//
// The difference between the two is what the per-subscriber checks cost.
func BenchmarkFanoutChecks(b *testing.B) {
	const subscribers = 1000
	ctx := context.Background()
	type scene struct {
		name           string
		create, update string
		subscribe      func(pk string) string
		user           func(i int) identity.User
	}
	// The same users subscribe in both scenes, so the records crossing
	// the ABI are the same size and the difference is the checks.
	admin := func(i int) identity.User {
		return identity.User{ID: fmt.Sprintf("admin-%04d", i), Roles: []string{"staff", "admin"}}
	}
	scenes := []scene{{
		name:   "checks=none",
		create: `{"stream":"questions","payload":{"action":"create","data":{"question_text":"Before"}}}`,
		update: `{"stream":"questions","payload":{"action":"update","pk":%q,"data":{"question_text":"After"}}}`,
		subscribe: func(string) string {
			return `{"stream":"questions","payload":{"action":"subscribe","data":{"action":"update"}}}`
		},
		user: admin,
	}, {
		name:   "checks=object",
		create: `{"stream":"notes","payload":{"action":"create","data":{"text":"Before"}}}`,
		update: `{"stream":"notes","payload":{"action":"update","pk":%q,"data":{"text":"After"}}}`,
		subscribe: func(string) string {
			return `{"stream":"notes","payload":{"action":"subscribe","data":{"action":"update","filter":{"pinned":false}}}}`
		},
		user: admin,
	}}
	for _, sc := range scenes {
		b.Run(sc.name, func(b *testing.B) {
			for _, e := range benchEngines() {
				b.Run(e.name, func(b *testing.B) {
					st := memory.New()
					poster := &countingPoster{}
					svc := benchServices(st, poster)

					// The scene, set with the native route function.
					route := host.NewPool(host.NativeModule(nativeApp), 1)
					author := identity.User{ID: "alice"}
					send := func(conn string, u identity.User, frame string) {
						b.Helper()
						r, err := parseReply(host.CallRoute(ctx, route, svc, abi.Message{ConnID: conn, User: u, Frame: []byte(frame)}))
						if err != nil || r.Payload.ResponseStatus >= 300 {
							b.Fatalf("%s: %+v, %v", frame, r, err)
						}
					}
					r, err := parseReply(host.CallRoute(ctx, route, svc, abi.Message{ConnID: "author", User: author, Frame: []byte(sc.create)}))
					if err != nil || r.Payload.ResponseStatus != 201 {
						b.Fatalf("create: %+v, %v", r, err)
					}
					var obj struct {
						ID string `json:"id"`
					}
					if err := json.Unmarshal(r.Payload.Data, &obj); err != nil {
						b.Fatal(err)
					}
					for i := range subscribers {
						send(fmt.Sprintf("conn-%04d", i), sc.user(i), sc.subscribe(obj.ID))
					}
					st.Changes()
					send("author", author, fmt.Sprintf(sc.update, obj.ID))
					changes := st.Changes()
					if len(changes) != 1 || changes[0].Kind != "update" {
						b.Fatalf("changes: %+v", changes)
					}
					ch := abi.Change(changes[0])

					runFanout(b, e.mod(b, fanoutPkg), svc, poster, ch, subscribers)
				})
			}
		})
	}
}
