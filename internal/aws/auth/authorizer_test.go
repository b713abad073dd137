package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/golang-jwt/jwt/v5"
)

// sampleRequest is AWS's sample REQUEST authorizer event, shipped with
// aws-lambda-go (events/testdata).
func sampleRequest(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/apigw-custom-auth-request-type-request.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const sampleARN = "arn:aws:execute-api:us-east-1:123456789012:s4x3opwd6i/test/GET/request"

func newTestAuthorizer(t *testing.T) (*Authorizer, *bytes.Buffer) {
	t.Helper()
	v, _, _ := newTestVerifier(t)
	var log bytes.Buffer
	return NewAuthorizer(v, slog.New(slog.NewJSONHandler(&log, nil))), &log
}

// decoded is the authorizer's answer as API Gateway reads it: JSON.
type decoded struct {
	PrincipalID    string `json:"principalId"`
	PolicyDocument struct {
		Version   string
		Statement []struct {
			Action   []string
			Effect   string
			Resource []string
		}
	} `json:"policyDocument"`
	Context map[string]json.RawMessage `json:"context"`
}

func decode(t *testing.T, b []byte) decoded {
	t.Helper()
	var d decoded
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return d
}

func checkAllow(t *testing.T, d decoded) {
	t.Helper()
	p := d.PolicyDocument
	if p.Version != "2012-10-17" || len(p.Statement) != 1 {
		t.Fatalf("got policy %+v, want version 2012-10-17 with one statement", p)
	}
	s := p.Statement[0]
	if s.Effect != "Allow" || !slices.Equal(s.Action, []string{"execute-api:Invoke"}) || !slices.Equal(s.Resource, []string{sampleARN}) {
		t.Errorf("got statement %+v, want Allow execute-api:Invoke on %s", s, sampleARN)
	}
}

func TestAuthorizer_Invoke_sampleAnonymous(t *testing.T) {
	a, _ := newTestAuthorizer(t)
	out, err := a.Invoke(context.Background(), sampleRequest(t))
	if err != nil {
		t.Fatal(err)
	}
	d := decode(t, out)
	checkAllow(t, d)
	if d.PrincipalID != AnonymousPrincipalID {
		t.Errorf("got principalId %q, want %q", d.PrincipalID, AnonymousPrincipalID)
	}
	if _, ok := d.Context["sub"]; ok {
		t.Errorf("got context %s, want no sub for an anonymous connection", out)
	}
}

func TestAuthorizer_Invoke_sampleWithToken(t *testing.T) {
	a, _ := newTestAuthorizer(t)
	var req map[string]any
	if err := json.Unmarshal(sampleRequest(t), &req); err != nil {
		t.Fatal(err)
	}
	tok := sign(t, jwt.SigningMethodRS256, rsaA(), "rsa-a", claimsAt(t0, jwt.MapClaims{
		"sub":            "d6a2b3c4-cognito-user",
		"email":          "ada@example.com",
		"email_verified": true,
		"cognito:groups": []string{"admins"}, // an array: only as wsbind_roles
		"address":        map[string]any{"country": "UK"},
		"auth_time":      t0.Unix(),
		"jti":            "j-1",
		"nbf":            t0.Unix(),
		"principalId":    "someone-else",
		"nothing":        nil,
	}))
	req["queryStringParameters"].(map[string]any)["token"] = tok
	req["multiValueQueryStringParameters"].(map[string]any)["token"] = []string{tok}
	payload, _ := json.Marshal(req)

	out, err := a.Invoke(context.Background(), payload)
	if err != nil {
		t.Fatal(err)
	}
	d := decode(t, out)
	checkAllow(t, d)
	if d.PrincipalID != "d6a2b3c4-cognito-user" {
		t.Errorf("got principalId %q, want the token's sub", d.PrincipalID)
	}
	want := map[string]string{
		"sub":            `"d6a2b3c4-cognito-user"`,
		"iss":            `"` + testIssuer + `"`,
		"aud":            `"` + testAudience + `"`,
		"email":          `"ada@example.com"`,
		"email_verified": `true`,
		"auth_time":      jsonNumber(t0.Unix()),
		"exp":            jsonNumber(t0.Add(time.Hour).Unix()),
		"wsbind_roles":   `"[\"admins\"]"`,
	}
	got := map[string]string{}
	for k, v := range d.Context {
		got[k] = string(v)
	}
	if !maps.Equal(got, want) {
		t.Errorf("got context %v, want %v", got, want)
	}
}

func jsonNumber(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestAuthorizer_Authorize_tokenSources(t *testing.T) {
	a, _ := newTestAuthorizer(t)
	good := sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", claimsAt(t0, nil))
	bad := sign(t, jwt.SigningMethodHS256, []byte(strings.Repeat("z", 32)), "", claimsAt(t0, nil))
	tests := []struct {
		name    string
		query   map[string]string
		multi   map[string][]string
		headers map[string]string
		want    string // principalId; "" means Unauthorized
	}{
		{"none", nil, nil, nil, AnonymousPrincipalID},
		{"empty query token", map[string]string{"token": ""}, nil, nil, AnonymousPrincipalID},
		{"other headers only", nil, nil, map[string]string{"Accept": "*/*"}, AnonymousPrincipalID},
		{"query", map[string]string{"token": good}, nil, nil, "user-1"},
		{"header", nil, nil, map[string]string{"Authorization": "Bearer " + good}, "user-1"},
		{"header any case", nil, nil, map[string]string{"authorization": "bearer  " + good}, "user-1"},
		{"query wins over header", map[string]string{"token": good}, nil, map[string]string{"Authorization": "Bearer " + bad}, "user-1"},
		{"bad query token", map[string]string{"token": bad}, nil, nil, ""},
		{"bad header token", nil, nil, map[string]string{"Authorization": "Bearer " + bad}, ""},
		{"bad query token, good header", map[string]string{"token": bad}, nil, map[string]string{"Authorization": "Bearer " + good}, ""},
		{"basic auth", nil, nil, map[string]string{"Authorization": "Basic dXNlcjpwYXNz"}, ""},
		{"bearer without token", nil, nil, map[string]string{"Authorization": "Bearer "}, ""},
		{"repeated query token", map[string]string{"token": good}, map[string][]string{"token": {bad, good}}, nil, ""},
		{"garbage", map[string]string{"token": "garbage"}, nil, nil, ""},
		{"two segments", map[string]string{"token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0"}, nil, nil, ""},
		{"bad base64", map[string]string{"token": "e$$$.e###.e!!!"}, nil, nil, ""},
		{"expired", map[string]string{"token": sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", claimsAt(t0.Add(-2*time.Hour), nil))}, nil, nil, ""},
		{"alg none", map[string]string{"token": noneToken(t, "", claimsAt(t0, nil))}, nil, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := a.Authorize(context.Background(), events.APIGatewayCustomAuthorizerRequestTypeRequest{
				Type:                            "REQUEST",
				MethodArn:                       sampleARN,
				QueryStringParameters:           tc.query,
				MultiValueQueryStringParameters: tc.multi,
				Headers:                         tc.headers,
			})
			if tc.want == "" {
				if err != ErrUnauthorized || err.Error() != "Unauthorized" {
					t.Fatalf("got %v, %+v; want exactly the error Unauthorized", err, resp)
				}
				if !reflect.DeepEqual(resp, events.APIGatewayCustomAuthorizerResponse{}) {
					t.Errorf("got response %+v with the error, want none", resp)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want principal %q", err, tc.want)
			}
			if resp.PrincipalID != tc.want {
				t.Errorf("got principalId %q, want %q", resp.PrincipalID, tc.want)
			}
			if sub, _ := resp.Context["sub"].(string); (sub != "") != (tc.want != AnonymousPrincipalID) || (sub != "" && sub != tc.want) {
				t.Errorf("got context sub %q for principal %q", sub, tc.want)
			}
		})
	}
}

// With no key configured, anonymous connections still work and every
// presented token is refused.
func TestAuthorizer_Authorize_noKeys(t *testing.T) {
	v := must(NewVerifier(ConfigFromEnv(func(string) string { return "" })))
	a := NewAuthorizer(v, slog.New(slog.DiscardHandler))
	req := events.APIGatewayCustomAuthorizerRequestTypeRequest{MethodArn: sampleARN}
	resp, err := a.Authorize(context.Background(), req)
	if err != nil || resp.PrincipalID != AnonymousPrincipalID {
		t.Fatalf("anonymous: got %+v, %v; want an anonymous Allow", resp, err)
	}
	req.QueryStringParameters = map[string]string{"token": sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", claimsAt(time.Now(), nil))}
	if _, err := a.Authorize(context.Background(), req); err != ErrUnauthorized {
		t.Fatalf("token: got %v, want Unauthorized", err)
	}
}

func TestAuthorizer_Authorize_resultSizeLimit(t *testing.T) {
	a, _ := newTestAuthorizer(t)
	changes := jwt.MapClaims{}
	for i := range 20 {
		changes["big"+string(rune('a'+i))] = strings.Repeat("x", 700+i) // 14 KB together
		changes["small"+string(rune('a'+i))] = i
	}
	changes["escaped"] = strings.Repeat("<", 100) // 600 bytes once JSON escapes it
	tok := sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", claimsAt(t0, changes))
	resp, err := a.Authorize(context.Background(), events.APIGatewayCustomAuthorizerRequestTypeRequest{
		MethodArn:             sampleARN,
		QueryStringParameters: map[string]string{"token": tok},
	})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(resp)
	if len(out) > MaxResultBytes {
		t.Fatalf("got a %d-byte result, want at most %d", len(out), MaxResultBytes)
	}
	for i := range 20 {
		if _, ok := resp.Context["small"+string(rune('a'+i))]; !ok {
			t.Errorf("small claim %d dropped while big ones were kept", i)
		}
	}
	// Every dropped claim must really not have fit.
	room := MaxResultBytes - len(out)
	dropped := 0
	for k, v := range changes {
		if _, ok := resp.Context[k]; ok {
			continue
		}
		dropped++
		kb, _ := json.Marshal(k)
		vb, _ := json.Marshal(v)
		if cost := len(kb) + len(vb) + 2; cost <= room {
			t.Errorf("claim %q (%d bytes) dropped with %d bytes to spare", k, cost, room)
		}
	}
	if dropped == 0 {
		t.Error("no claim dropped from a 14 KB claim set")
	}
}

func TestAuthorizer_Authorize_subTooLarge(t *testing.T) {
	a, _ := newTestAuthorizer(t)
	tok := sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", claimsAt(t0, jwt.MapClaims{"sub": strings.Repeat("s", 5000)}))
	_, err := a.Authorize(context.Background(), events.APIGatewayCustomAuthorizerRequestTypeRequest{
		MethodArn:             sampleARN,
		QueryStringParameters: map[string]string{"token": tok},
	})
	if err != ErrUnauthorized {
		t.Fatalf("got %v, want Unauthorized for a sub that cannot fit twice in 8 KB", err)
	}
}

// A refusal is logged with its reason, and the token appears nowhere in
// the log.
func TestAuthorizer_Authorize_logsNoToken(t *testing.T) {
	a, log := newTestAuthorizer(t)
	tok := sign(t, jwt.SigningMethodHS256, []byte(strings.Repeat("w", 32)), "", claimsAt(t0, jwt.MapClaims{"email": "secret-claim@example.com"}))
	req := events.APIGatewayCustomAuthorizerRequestTypeRequest{
		MethodArn:             sampleARN,
		QueryStringParameters: map[string]string{"token": tok},
		RequestContext:        events.APIGatewayCustomAuthorizerRequestTypeRequestContext{RequestID: "req-42"},
	}
	if _, err := a.Authorize(context.Background(), req); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("got %v, want Unauthorized", err)
	}
	got := log.String()
	if !strings.Contains(got, "connection refused") || !strings.Contains(got, "req-42") || !strings.Contains(got, "signature") {
		t.Errorf("got log %q, want the refusal with its request id and reason", got)
	}
	for i, part := range strings.Split(tok, ".") {
		if strings.Contains(got, part) {
			t.Errorf("log holds token segment %d", i)
		}
	}
	if strings.Contains(got, "secret-claim") || strings.Contains(got, testSecret) {
		t.Error("log holds a claim or the secret")
	}
}

// authorizeClaims runs the authorizer on an HS256 token minted at t0 with
// changes to the default claims.
func authorizeClaims(t *testing.T, a *Authorizer, changes jwt.MapClaims) (events.APIGatewayCustomAuthorizerResponse, error) {
	t.Helper()
	return a.Authorize(context.Background(), events.APIGatewayCustomAuthorizerRequestTypeRequest{
		MethodArn:             sampleARN,
		QueryStringParameters: map[string]string{"token": sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", claimsAt(t0, changes))},
	})
}

// rolesIn decodes the context's wsbind_roles; nil when it is absent.
func rolesIn(t *testing.T, ctx map[string]any) []string {
	t.Helper()
	v, ok := ctx[RolesContextKey]
	if !ok {
		return nil
	}
	text, ok := v.(string)
	if !ok {
		t.Fatalf("got %s %#v, want a string", RolesContextKey, v)
	}
	var roles []string
	if err := json.Unmarshal([]byte(text), &roles); err != nil {
		t.Fatalf("got %s %q, want a JSON array of strings: %v", RolesContextKey, text, err)
	}
	if len(roles) == 0 {
		t.Fatalf("got %s %q, want the key omitted when there are no roles", RolesContextKey, text)
	}
	return roles
}

func TestAuthorizer_Authorize_roles(t *testing.T) {
	a, _ := newTestAuthorizer(t)
	tests := []struct {
		name   string
		claims jwt.MapClaims
		want   []string // nil: no wsbind_roles in the context
	}{
		{"none", nil, nil},
		{"cognito groups array", jwt.MapClaims{"cognito:groups": []string{"admin", "editor"}}, []string{"admin", "editor"}},
		{"groups string is one role", jwt.MapClaims{"groups": "team blue"}, []string{"team blue"}},
		{"roles array", jwt.MapClaims{"roles": []string{"Task.Write"}}, []string{"Task.Write"}},
		{"permissions string", jwt.MapClaims{"permissions": "read:notes"}, []string{"read:notes"}},
		{"scope space-separated", jwt.MapClaims{"scope": "openid  profile\temail"}, []string{"openid", "profile", "email"}},
		{"scp array", jwt.MapClaims{"scp": []string{"notes.read", "notes.write"}}, []string{"notes.read", "notes.write"}},
		{"scp string", jwt.MapClaims{"scp": "User.Read"}, []string{"User.Read"}},
		{"mixed types", jwt.MapClaims{"roles": []any{"a", 1, true, nil, map[string]any{"x": "y"}, []any{"n"}, "", "b"}}, []string{"a", "b"}},
		{"not strings or arrays", jwt.MapClaims{"groups": 42, "roles": map[string]any{"admin": true}, "permissions": false, "scope": 7}, nil},
		{"empty", jwt.MapClaims{"groups": "", "roles": []string{}, "scope": "   "}, nil},
		{"claim order", jwt.MapClaims{
			"scp": "s2", "scope": "s1", "permissions": "p", "roles": []string{"r"}, "groups": []string{"g"}, "cognito:groups": []string{"c"},
		}, []string{"c", "g", "r", "p", "s1", "s2"}},
		{"duplicates keep the first", jwt.MapClaims{
			"cognito:groups": []string{"admin", "editor", "admin"}, "groups": "editor", "scope": "read admin read",
		}, []string{"admin", "editor", "read"}},
		{"reserved key alone", jwt.MapClaims{RolesContextKey: `["root"]`}, nil},
		{"reserved key beside roles", jwt.MapClaims{RolesContextKey: `["root"]`, "groups": []string{"user"}}, []string{"user"}},
		{"reserved key as an array", jwt.MapClaims{RolesContextKey: []string{"root"}}, nil},
		{"text left unescaped", jwt.MapClaims{"groups": []string{`a<b&"c"`, "é"}}, []string{`a<b&"c"`, "é"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := authorizeClaims(t, a, tc.claims)
			if err != nil {
				t.Fatalf("got %v, want an Allow", err)
			}
			if got := rolesIn(t, resp.Context); !slices.Equal(got, tc.want) {
				t.Errorf("got roles %q, want %q", got, tc.want)
			}
			out, _ := json.Marshal(resp)
			if strings.Contains(string(out), "root") {
				t.Errorf("got %s, want the token's %s claim nowhere", out, RolesContextKey)
			}
		})
	}
}

// The roles are one string: the compact JSON array text.
func TestAuthorizer_Authorize_rolesText(t *testing.T) {
	a, _ := newTestAuthorizer(t)
	tests := []struct {
		claims jwt.MapClaims
		want   string
	}{
		{jwt.MapClaims{"cognito:groups": []string{"admin", "editor"}}, `["admin","editor"]`},
		{jwt.MapClaims{"scope": "a b"}, `["a","b"]`},
		{jwt.MapClaims{"groups": []string{`x<y&"z"`}}, `["x<y&\"z\""]`},
	}
	for _, tc := range tests {
		resp, err := authorizeClaims(t, a, tc.claims)
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.Context[RolesContextKey]; got != tc.want {
			t.Errorf("claims %v: got %s %#v, want %#v", tc.claims, RolesContextKey, got, tc.want)
		}
	}
}

// sub, exp and the roles stay whatever the other claims cost: exp is how
// an open connection learns its token expired.
func TestAuthorizer_Authorize_trimmingKeepsSubExpRoles(t *testing.T) {
	a, _ := newTestAuthorizer(t)
	manyRoles := make([]string, 80)
	for i := range manyRoles {
		manyRoles[i] = fmt.Sprintf("role-%02d-%s", i, strings.Repeat("r", 50)) // ~5 KB together
	}
	tests := []struct {
		name  string
		roles []string
	}{
		{"no roles", nil},
		{"one role", []string{"admin"}},
		{"many roles", manyRoles},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			changes := jwt.MapClaims{}
			for i := range 40 {
				changes[fmt.Sprintf("big%02d", i)] = strings.Repeat("x", 500+i) // 20 KB together
			}
			if tc.roles != nil {
				changes["groups"] = tc.roles
			}
			resp, err := authorizeClaims(t, a, changes)
			if err != nil {
				t.Fatalf("got %v, want an Allow", err)
			}
			out, _ := json.Marshal(resp)
			if len(out) > MaxResultBytes {
				t.Fatalf("got a %d-byte result, want at most %d", len(out), MaxResultBytes)
			}
			if got, want := fmt.Sprint(resp.Context["exp"]), fmt.Sprint(t0.Add(time.Hour).Unix()); got != want {
				t.Errorf("got exp %q, want %q", got, want)
			}
			if got := resp.Context["sub"]; got != "user-1" {
				t.Errorf("got sub %v, want user-1", got)
			}
			if got := rolesIn(t, resp.Context); !slices.Equal(got, tc.roles) {
				t.Errorf("got roles %q, want %q", got, tc.roles)
			}
			kept := 0
			for k := range changes {
				if _, ok := resp.Context[k]; ok && strings.HasPrefix(k, "big") {
					kept++
				}
			}
			if kept == 40 {
				t.Error("got every big claim kept, want some trimmed")
			}
		})
	}
}

// Roles that cannot fit refuse the connection: a user without the roles
// the token grants would be a different user. The log says why.
func TestAuthorizer_Authorize_rolesTooLarge(t *testing.T) {
	a, log := newTestAuthorizer(t)
	roles := make([]string, 200)
	for i := range roles {
		roles[i] = fmt.Sprintf("group-%03d-%s", i, strings.Repeat("g", 40)) // ~11 KB together
	}
	resp, err := authorizeClaims(t, a, jwt.MapClaims{"cognito:groups": roles})
	if err != ErrUnauthorized {
		t.Fatalf("got %v, %+v; want Unauthorized", err, resp)
	}
	if got := log.String(); !strings.Contains(got, "roles too large") {
		t.Errorf("got log %q, want the reason: roles too large", got)
	}
}

// The limit is the whole result: roles that bring it to exactly
// MaxResultBytes fit, one byte more does not.
func TestAllowUser_rolesAtTheLimit(t *testing.T) {
	claims := func(roleBytes int) map[string]any {
		return map[string]any{
			"sub": "user-1", "exp": json.Number("1772370000"),
			"groups": []any{strings.Repeat("r", roleBytes)},
			"small":  "dropped first, never refusing",
		}
	}
	resp, err := allowUser(sampleARN, claims(1))
	if err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(resp)
	fits := 1 + MaxResultBytes - len(out) + len(`,"small":"dropped first, never refusing"`)
	tests := []struct {
		roleBytes int
		wantErr   string // "" for an Allow of exactly MaxResultBytes
	}{
		{fits, ""},
		{fits + 1, "roles too large: 1 roles make the authorizer result 8193 bytes"},
	}
	for _, tc := range tests {
		resp, err := allowUser(sampleARN, claims(tc.roleBytes))
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%d role bytes: got error %v, want %q", tc.roleBytes, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%d role bytes: got %v, want an Allow", tc.roleBytes, err)
		}
		out, _ := json.Marshal(resp)
		if len(out) != MaxResultBytes || resp.Context["small"] != nil {
			t.Errorf("%d role bytes: got a %d-byte result with small=%v, want %d bytes without it", tc.roleBytes, len(out), resp.Context["small"], MaxResultBytes)
		}
	}
}
