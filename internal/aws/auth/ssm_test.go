package auth

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/wsbind/wsbind/internal/testkit/ssmtest"
)

// ssmClient is the authorizer's Parameter Store client against srv,
// retrying as the SDK does (3 attempts) but without waiting long.
func ssmClient(srv *ssmtest.Server) *SSM {
	return &SSM{Endpoint: srv.URL, Region: "us-east-1", MaxBackoff: time.Millisecond,
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")}
}

// TestHS256SecretFromSSM: the secret comes back decrypted; every way the
// read can fail is one error naming the parameter and the fix, and none
// carries the value.
func TestHS256SecretFromSSM(t *testing.T) {
	const short = "thirty-one bytes, one too few.."
	srv := ssmtest.New(map[string]ssmtest.Param{
		"/wsbind/hs256":   {Type: "SecureString", Value: testSecret},
		"/wsbind/short":   {Type: "SecureString", Value: short},
		"/wsbind/plain":   {Type: "String", Value: testSecret},
		"/wsbind/denied":  {Type: "SecureString", Value: testSecret},
		"/wsbind/throttl": {Type: "SecureString", Value: testSecret},
	})
	defer srv.Close()
	srv.Fail("/wsbind/denied", "AccessDeniedException")
	srv.Fail("/wsbind/throttl", "ThrottlingException")
	client := ssmClient(srv)
	ctx := context.Background()

	// The server answers ciphertext unless asked to decrypt: the secret
	// coming back shows WithDecryption was set.
	got, err := HS256SecretFromSSM(ctx, client, "/wsbind/hs256")
	if err != nil || string(got) != testSecret {
		t.Fatalf("got %q, %v; want the stored secret", got, err)
	}

	for _, tc := range []struct {
		name, param string
		want        []string
		calls       int // GetParameter requests the read makes
	}{
		{"missing", "/wsbind/nope", []string{"/wsbind/nope", "does not exist", "put-parameter --type SecureString"}, 1},
		{"access denied", "/wsbind/denied", []string{"/wsbind/denied", "access denied", "ssm:GetParameter", "not authorized"}, 1},
		{"throttled", "/wsbind/throttl", []string{"/wsbind/throttl", "throttled", "Rate exceeded"}, 3},
		{"short", "/wsbind/short", []string{"/wsbind/short", "31 bytes", "at least 32"}, 1},
		{"not a SecureString", "/wsbind/plain", []string{"/wsbind/plain", "is a String, not a SecureString"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := srv.Calls()
			secret, err := HS256SecretFromSSM(ctx, client, tc.param)
			if err == nil {
				t.Fatalf("got %q, no error", secret)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			for _, v := range []string{testSecret, short} {
				if strings.Contains(err.Error(), v) {
					t.Errorf("error %q carries the secret", err)
				}
			}
			if n := srv.Calls() - before; n != tc.calls {
				t.Errorf("%d GetParameter requests, want %d", n, tc.calls)
			}
		})
	}
}

// TestSSMEndpoint: the endpoint is found as the SDK finds it.
func TestSSMEndpoint(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	for _, tc := range []struct{ region, want string }{
		{"eu-west-1", "https://ssm.eu-west-1.amazonaws.com"},
		{"cn-north-1", "https://ssm.cn-north-1.amazonaws.com.cn"},
	} {
		if got := SSMEndpoint(getenv, tc.region); got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.region, got, tc.want)
		}
	}
	env["AWS_ENDPOINT_URL"] = "http://all"
	if got := SSMEndpoint(getenv, "eu-west-1"); got != "http://all" {
		t.Errorf("AWS_ENDPOINT_URL: got %s", got)
	}
	env["AWS_ENDPOINT_URL_SSM"] = "http://ssm"
	if got := SSMEndpoint(getenv, "eu-west-1"); got != "http://ssm" {
		t.Errorf("AWS_ENDPOINT_URL_SSM: got %s", got)
	}
}

// TestSSMError_Codes: error types are read as the SDK reads them,
// namespaced or not, from the header or the body.
func TestSSMError_Codes(t *testing.T) {
	for _, tc := range []struct {
		header, body, want string
	}{
		{"", `{"__type":"com.amazonaws.ssm#ParameterNotFound"}`, "ParameterNotFound"},
		{"ThrottlingException:http://internal.amazon.com/coral/", `{"message":"Rate exceeded"}`, "ThrottlingException"},
		{"", `{"__type":"AccessDeniedException","Message":"no"}`, "AccessDeniedException"},
		{"", `not json`, "Bad Request"},
	} {
		resp := &http.Response{StatusCode: 400, Header: http.Header{}}
		if tc.header != "" {
			resp.Header.Set("X-Amzn-ErrorType", tc.header)
		}
		if got := ssmErrorOf(resp, []byte(tc.body)); got.Code != tc.want {
			t.Errorf("%q %q: code %q, want %q", tc.header, tc.body, got.Code, tc.want)
		}
	}
}
