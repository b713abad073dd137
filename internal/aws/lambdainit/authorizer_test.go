package lambdainit_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/golang-jwt/jwt/v5"

	"github.com/wsbind/wsbind/internal/aws/auth"
	"github.com/wsbind/wsbind/internal/aws/lambdahost"
	"github.com/wsbind/wsbind/internal/aws/lambdainit"
	"github.com/wsbind/wsbind/internal/core/identity"
	"github.com/wsbind/wsbind/internal/testkit/ssmtest"
)

const testSecret = "a shared secret of at least thirty-two bytes"

// authorize runs the authorizer function, as the bootstrap builds it from
// its environment, on a $connect REQUEST event carrying token.
func authorize(t *testing.T, h *lambdahost.Handler, token string) (events.APIGatewayCustomAuthorizerResponse, error) {
	t.Helper()
	req := events.APIGatewayCustomAuthorizerRequestTypeRequest{
		Type:      "REQUEST",
		MethodArn: "arn:aws:execute-api:us-east-1:123456789012:abcdef1234/prod/$connect",
		RequestContext: events.APIGatewayCustomAuthorizerRequestTypeRequestContext{
			RequestID: "req-1", Stage: "prod", APIID: "abcdef1234",
		},
	}
	if token != "" {
		req.QueryStringParameters = map[string]string{"token": token}
	}
	payload, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	out, err := h.Invoke(context.Background(), payload)
	var resp events.APIGatewayCustomAuthorizerResponse
	if err == nil {
		if err := json.Unmarshal(out, &resp); err != nil {
			t.Fatalf("authorizer response %s: %v", out, err)
		}
	}
	return resp, err
}

// TestAuthorizer_ThroughConnect: the token a client presents on the
// handshake becomes the user of the connection, through the context API
// Gateway hands from the authorizer to $connect; no token is an anonymous
// connection; a bad token fails with exactly "Unauthorized" (API
// Gateway's 401).
func TestAuthorizer_ThroughConnect(t *testing.T) {
	ctx := context.Background()
	authz, err := lambdainit.FromEnv(ctx, lambdainit.Process{Vars: []string{
		"_HANDLER=authorizer", "WSBIND_AUTH_HS256_SECRET=" + testSecret, "WSBIND_AUTH_AUDIENCE=wsbind-test",
	}})
	if err != nil {
		t.Fatal(err)
	}
	sign := func(key string, claims jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(key))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	exp := time.Now().Add(time.Hour).Unix()
	good := sign(testSecret, jwt.MapClaims{"sub": "alice", "aud": "wsbind-test", "exp": exp, "role": "editor", "cognito:groups": []string{"admin", "editor"}})

	f := newFixture()
	connect := f.handler(t, lambdahost.NameConnect, nil)
	connectWith := func(conn string, authorizer map[string]any) identity.User {
		t.Helper()
		ev, err := json.Marshal(map[string]any{"requestContext": map[string]any{
			"eventType": "CONNECT", "connectionId": conn, "connectedAt": 1, "authorizer": authorizer,
		}})
		if err != nil {
			t.Fatal(err)
		}
		if resp := proxyResponse(t, invoke(t, connect, ev)); resp.StatusCode != 200 {
			t.Fatalf("connect %s: status %d", conn, resp.StatusCode)
		}
		e, ok := f.store.Conn(conn)
		if !ok {
			t.Fatalf("connection %s not recorded", conn)
		}
		return e.User
	}
	// API Gateway passes the context on, with the principalId beside it.
	withPrincipal := func(r events.APIGatewayCustomAuthorizerResponse) map[string]any {
		m := map[string]any{"principalId": r.PrincipalID}
		for k, v := range r.Context {
			m[k] = v
		}
		return m
	}

	resp, err := authorize(t, authz.Handler, good)
	if err != nil || resp.PolicyDocument.Statement[0].Effect != "Allow" {
		t.Fatalf("valid token: %+v, %v", resp, err)
	}
	if u := connectWith("c-alice", withPrincipal(resp)); u.ID != "alice" || u.Claims["role"] != "editor" {
		t.Errorf("user of a valid token: got %+v, want alice with role editor", u)
	} else if got, want := u.Roles, []string{"admin", "editor"}; !slices.Equal(got, want) || u.Claims[auth.RolesContextKey] != "" {
		t.Errorf("roles of a valid token: got %q (claims %v), want %q", got, u.Claims, want)
	} else if e, ok := u.Expires(); !ok || e != exp {
		t.Errorf("expiry of a valid token: got %d, %v; want %d, true", e, ok, exp)
	}

	resp, err = authorize(t, authz.Handler, "")
	if err != nil || resp.PolicyDocument.Statement[0].Effect != "Allow" {
		t.Fatalf("no token: %+v, %v", resp, err)
	}
	if u := connectWith("c-anon", withPrincipal(resp)); u.IsAuthenticated() {
		t.Errorf("user without a token: got %+v, want anonymous", u)
	}

	for name, token := range map[string]string{
		"wrong key":      sign("another secret, also thirty-two bytes long", jwt.MapClaims{"sub": "mallory", "aud": "wsbind-test", "exp": exp}),
		"wrong audience": sign(testSecret, jwt.MapClaims{"sub": "alice", "aud": "elsewhere", "exp": exp}),
		"garbage":        "not.a.token",
	} {
		_, err := authorize(t, authz.Handler, token)
		if err == nil || err.Error() != "Unauthorized" || !errors.Is(err, auth.ErrUnauthorized) {
			t.Errorf("%s: got error %v, want exactly Unauthorized", name, err)
		}
	}
}

// TestAuthorizer_Settings: settings the authorizer cannot use stop the
// start instead of rejecting every token later.
func TestAuthorizer_Settings(t *testing.T) {
	_, err := lambdainit.FromEnv(context.Background(), lambdainit.Process{Vars: []string{
		"_HANDLER=authorizer", "WSBIND_AUTH_HS256_SECRET=short",
	}})
	if err == nil || !strings.Contains(err.Error(), "authorizer") {
		t.Errorf("short secret: got %v, want a start error", err)
	}
}

// ssmEnv points the SDK the authorizer builds at srv, with test
// credentials, and keeps this machine's AWS configuration out.
func ssmEnv(t *testing.T, srv *ssmtest.Server) {
	t.Setenv("AWS_ENDPOINT_URL_SSM", srv.URL)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
}

// TestAuthorizer_SecretFromSSM: deployed, the authorizer reads its HS256
// secret from the SSM SecureString WSBIND_AUTH_HS256_SECRET_PARAM names,
// through the SDK as configured by the environment, and verifies tokens
// with it.
func TestAuthorizer_SecretFromSSM(t *testing.T) {
	srv := ssmtest.New(map[string]ssmtest.Param{"/wsbind/test/hs256": {Type: "SecureString", Value: testSecret}})
	defer srv.Close()
	ssmEnv(t, srv)
	authz, err := lambdainit.FromEnv(context.Background(), lambdainit.Process{Vars: []string{
		"_HANDLER=authorizer", "WSBIND_AUTH_HS256_SECRET_PARAM=/wsbind/test/hs256",
	}})
	if err != nil {
		t.Fatal(err)
	}
	if n := srv.Calls(); n != 1 {
		t.Errorf("%d GetParameter requests at start, want 1", n)
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := authorize(t, authz.Handler, tok)
	if err != nil || resp.PrincipalID != "alice" || resp.PolicyDocument.Statement[0].Effect != "Allow" {
		t.Errorf("token signed with the parameter's secret: %+v, %v; want alice allowed", resp, err)
	}
	if n := srv.Calls(); n != 1 {
		t.Errorf("%d GetParameter requests after a verification, want still 1 (read once, at start)", n)
	}
}

// TestAuthorizer_SecretFromSSM_Errors: each way the secret cannot be had
// stops the start with one error naming the setting and the parameter,
// and never the secret.
func TestAuthorizer_SecretFromSSM_Errors(t *testing.T) {
	const short = "thirty-one bytes, one too few.."
	srv := ssmtest.New(map[string]ssmtest.Param{
		"/p/ok":        {Type: "SecureString", Value: testSecret},
		"/p/short":     {Type: "SecureString", Value: short},
		"/p/denied":    {Type: "SecureString", Value: testSecret},
		"/p/throttled": {Type: "SecureString", Value: testSecret},
	})
	defer srv.Close()
	srv.Fail("/p/denied", "AccessDeniedException")
	srv.Fail("/p/throttled", "ThrottlingException")
	ssmEnv(t, srv)
	for _, tc := range []struct {
		name string
		vars []string
		want []string
	}{
		{"both set", []string{"WSBIND_AUTH_HS256_SECRET=" + testSecret, "WSBIND_AUTH_HS256_SECRET_PARAM=/p/ok"},
			[]string{"WSBIND_AUTH_HS256_SECRET and WSBIND_AUTH_HS256_SECRET_PARAM are both set"}},
		{"missing", []string{"WSBIND_AUTH_HS256_SECRET_PARAM=/p/none"}, []string{"/p/none", "does not exist"}},
		{"access denied", []string{"WSBIND_AUTH_HS256_SECRET_PARAM=/p/denied"}, []string{"/p/denied", "access denied"}},
		{"throttled", []string{"WSBIND_AUTH_HS256_SECRET_PARAM=/p/throttled"}, []string{"/p/throttled", "throttled"}},
		{"short", []string{"WSBIND_AUTH_HS256_SECRET_PARAM=/p/short"}, []string{"/p/short", "31 bytes"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := lambdainit.FromEnv(context.Background(), lambdainit.Process{Vars: append([]string{"_HANDLER=authorizer"}, tc.vars...)})
			if err == nil {
				t.Fatal("started")
			}
			if testing.Verbose() {
				t.Log(err)
			}
			for _, w := range append([]string{"authorizer: "}, tc.want...) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), testSecret) || strings.Contains(err.Error(), short) {
				t.Errorf("error %q carries the secret", err)
			}
		})
	}
}
