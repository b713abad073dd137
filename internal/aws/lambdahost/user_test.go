package lambdahost

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/golang-jwt/jwt/v5"

	"github.com/wsbind/wsbind/internal/aws/auth"
	"github.com/wsbind/wsbind/internal/core/identity"
)

// authorizerOf decodes requestContext.authorizer as the handler does
// (decodeWebSocket: numbers keep their text).
func authorizerOf(t *testing.T, authorizer string) any {
	t.Helper()
	req, err := decodeWebSocket([]byte(`{"requestContext":{"eventType":"MESSAGE","authorizer":`+authorizer+`}}`), eventMessage)
	if err != nil {
		t.Fatalf("authorizer %s: %v", authorizer, err)
	}
	return req.RequestContext.Authorizer
}

func TestUserOf_Roles(t *testing.T) {
	tests := []struct {
		name       string
		authorizer string // JSON
		want       []string
	}{
		{"none", `{"sub":"u"}`, nil},
		{"array text", `{"sub":"u","wsbind_roles":"[\"admin\",\"editor\"]"}`, []string{"admin", "editor"}},
		{"decoded array", `{"sub":"u","wsbind_roles":["admin","editor"]}`, []string{"admin", "editor"}},
		{"order kept", `{"sub":"u","wsbind_roles":"[\"z\",\"a\",\"m\"]"}`, []string{"z", "a", "m"}},
		{"empty array", `{"sub":"u","wsbind_roles":"[]"}`, nil},
		{"empty string", `{"sub":"u","wsbind_roles":""}`, nil},
		{"not JSON", `{"sub":"u","wsbind_roles":"admin"}`, nil},
		{"truncated", `{"sub":"u","wsbind_roles":"[\"admin\""}`, nil},
		{"trailing text", `{"sub":"u","wsbind_roles":"[\"admin\"] x"}`, nil},
		{"object", `{"sub":"u","wsbind_roles":"{\"admin\":true}"}`, nil},
		{"null text", `{"sub":"u","wsbind_roles":"null"}`, nil},
		{"numbers", `{"sub":"u","wsbind_roles":"[1,2]"}`, nil},
		{"a null member", `{"sub":"u","wsbind_roles":"[\"admin\",null]"}`, nil},
		{"a number member, decoded", `{"sub":"u","wsbind_roles":["admin",1]}`, nil},
		{"number", `{"sub":"u","wsbind_roles":5}`, nil},
		{"boolean", `{"sub":"u","wsbind_roles":true}`, nil},
		{"object, decoded", `{"sub":"u","wsbind_roles":{"admin":true}}`, nil},
		{"null", `{"sub":"u","wsbind_roles":null}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := userOf(authorizerOf(t, tt.authorizer))
			if u.ID != "u" {
				t.Fatalf("got id %q, want u", u.ID)
			}
			if !slices.Equal(u.Roles, tt.want) {
				t.Errorf("got roles %q, want %q", u.Roles, tt.want)
			}
			if v, ok := u.Claims[auth.RolesContextKey]; ok {
				t.Errorf("got claim %s=%q, want none", auth.RolesContextKey, v)
			}
		})
	}
}

// An anonymous connection has no roles, whatever the context says.
func TestUserOf_RolesWithoutSub(t *testing.T) {
	for _, a := range []string{
		`{"principalId":"anonymous","wsbind_roles":"[\"admin\"]"}`,
		`{"sub":"","wsbind_roles":"[\"admin\"]"}`,
	} {
		if u := userOf(authorizerOf(t, a)); !reflect.DeepEqual(u, identity.User{}) {
			t.Errorf("authorizer %s: got %+v, want the anonymous user", a, u)
		}
	}
}

// A real authorizer response, passed on as API Gateway does (the context
// plus principalId and integrationLatency, in the event's JSON), becomes
// the user with the token's roles and exp.
func TestUserOf_AuthorizerRoundTrip(t *testing.T) {
	const secret = "a shared secret of at least thirty-two bytes"
	v, err := auth.NewVerifier(auth.Config{HS256Secret: []byte(secret)})
	if err != nil {
		t.Fatal(err)
	}
	a := auth.NewAuthorizer(v, slog.New(slog.DiscardHandler))
	exp := time.Now().Add(time.Hour).Unix()
	tests := []struct {
		name       string
		claims     jwt.MapClaims
		wantRoles  []string
		wantClaims map[string]string
	}{
		{"no roles", jwt.MapClaims{"email": "a@example.com"}, nil,
			map[string]string{"email": "a@example.com"}},
		{"groups and scope", jwt.MapClaims{"cognito:groups": []string{"admin", "editor"}, "scope": "read admin"},
			[]string{"admin", "editor", "read"}, map[string]string{"scope": "read admin"}},
		{"reserved claim", jwt.MapClaims{"wsbind_roles": `["root"]`, "roles": "viewer"},
			[]string{"viewer"}, map[string]string{"roles": "viewer"}},
		{"escaped text", jwt.MapClaims{"groups": []string{`a"b\c`, "<é>"}},
			[]string{`a"b\c`, "<é>"}, map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			claims := jwt.MapClaims{"sub": "alice", "exp": exp}
			maps.Copy(claims, tt.claims)
			tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := a.Authorize(context.Background(), events.APIGatewayCustomAuthorizerRequestTypeRequest{
				MethodArn:             "arn:aws:execute-api:us-east-1:123456789012:abcdef1234/prod/$connect",
				QueryStringParameters: map[string]string{"token": tok},
			})
			if err != nil {
				t.Fatal(err)
			}
			out, err := json.Marshal(resp)
			if err != nil {
				t.Fatal(err)
			}
			var got struct {
				PrincipalID string                     `json:"principalId"`
				Context     map[string]json.RawMessage `json:"context"`
			}
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatal(err)
			}
			got.Context["principalId"], _ = json.Marshal(got.PrincipalID)
			got.Context["integrationLatency"] = json.RawMessage("3")
			ctx, _ := json.Marshal(got.Context)

			u := userOf(authorizerOf(t, string(ctx)))
			if u.ID != "alice" {
				t.Errorf("got id %q, want alice", u.ID)
			}
			if !slices.Equal(u.Roles, tt.wantRoles) {
				t.Errorf("got roles %q, want %q", u.Roles, tt.wantRoles)
			}
			for _, r := range tt.wantRoles {
				if !u.HasRole("nobody", r) {
					t.Errorf("got HasRole(%q) false, want true", r)
				}
			}
			if u.HasRole("root") {
				t.Error("got HasRole(root) true, want false")
			}
			if e, ok := u.Expires(); !ok || e != exp {
				t.Errorf("got Expires() %d, %v; want %d, true", e, ok, exp)
			}
			want := map[string]string{"exp": strconv.FormatInt(exp, 10)}
			maps.Copy(want, tt.wantClaims)
			if !maps.Equal(u.Claims, want) {
				t.Errorf("got claims %q, want %q", u.Claims, want)
			}
		})
	}
}
