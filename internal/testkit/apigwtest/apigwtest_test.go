package apigwtest_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"

	"github.com/wsbind/wsbind/internal/testkit/apigwtest"
)

// client is the real SDK client, configured explicitly, without retries
// so that each call is one request.
func client(srv *apigwtest.Server) *apigatewaymanagementapi.Client {
	return apigatewaymanagementapi.New(apigatewaymanagementapi.Options{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
		BaseEndpoint:     aws.String(srv.Endpoint()),
		RetryMaxAttempts: 1,
	})
}

func TestServer_SDK(t *testing.T) {
	srv := apigwtest.New(apigwtest.Options{Stage: "prod"})
	defer srv.Close()
	if !strings.HasSuffix(srv.Endpoint(), "/prod") || !strings.HasPrefix(srv.Endpoint(), "http://127.0.0.1:") {
		t.Errorf("endpoint %s", srv.Endpoint())
	}
	c := client(srv)
	ctx := context.Background()
	const id = "L0SM9cOFvHcCIhw=/+ ?" // escaped by the SDK, unescaped by the server
	srv.Connect(id)

	for _, data := range [][]byte{[]byte(`{"a":1}`), {0, 1, 0xff}} {
		if _, err := c.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	if got := srv.Received(id); len(got) != 2 || string(got[0]) != `{"a":1}` || !bytes.Equal(got[1], []byte{0, 1, 0xff}) {
		t.Errorf("received %q", got)
	}

	out, err := c.GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{ConnectionId: aws.String(id)})
	if err != nil {
		t.Fatal(err)
	}
	if out.ConnectedAt == nil || time.Since(*out.ConnectedAt) > time.Minute || out.LastActiveAt.Before(*out.ConnectedAt) ||
		out.Identity == nil || aws.ToString(out.Identity.SourceIp) != "127.0.0.1" {
		t.Errorf("GetConnection: %+v", out)
	}

	if _, err := c.DeleteConnection(ctx, &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	var gone *types.GoneException
	_, err = c.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: []byte("x")})
	if !errors.As(err, &gone) {
		t.Errorf("post after delete: got %v, want GoneException", err)
	}
	if _, err := c.GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{ConnectionId: aws.String(id)}); !errors.As(err, &gone) {
		t.Errorf("get after delete: got %v, want GoneException", err)
	}
	if _, err := c.DeleteConnection(ctx, &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: aws.String("never")}); !errors.As(err, &gone) {
		t.Errorf("delete of an unknown connection: got %v, want GoneException", err)
	}
	if got := srv.Deleted(); len(got) != 1 || got[0] != id {
		t.Errorf("deleted: got %q, want [%q]", got, id)
	}
}

func TestServer_Faults(t *testing.T) {
	srv := apigwtest.New(apigwtest.Options{})
	defer srv.Close()
	c := client(srv)
	ctx := context.Background()
	srv.Connect("c1", "c2")
	post := func(id string) error {
		_, err := c.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: []byte("x")})
		return err
	}
	var le *types.LimitExceededException
	var fe *types.ForbiddenException
	var tl *types.PayloadTooLargeException
	srv.Inject("c1", apigwtest.Fault{Status: 429, Type: apigwtest.LimitExceeded, Times: 2})
	for i := range 2 {
		if err := post("c1"); !errors.As(err, &le) {
			t.Errorf("post %d: got %v, want LimitExceededException", i, err)
		}
	}
	if err := post("c1"); err != nil {
		t.Errorf("after the fault: %v", err)
	}
	srv.Inject(apigwtest.AnyConn, apigwtest.Fault{Status: 403, Type: apigwtest.Forbidden})
	srv.Inject("c2", apigwtest.Fault{Status: 500})
	if err := post("c1"); !errors.As(err, &fe) {
		t.Errorf("any connection: got %v, want ForbiddenException", err)
	}
	if err := post("c2"); err == nil || !strings.Contains(err.Error(), "500") {
		t.Errorf("c2's own fault first: got %v, want a 500", err)
	}
	srv.Clear(apigwtest.AnyConn)
	srv.Clear("c2")
	_, err := c.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String("c2"), Data: make([]byte, apigwtest.MaxPayload+1)})
	if !errors.As(err, &tl) {
		t.Errorf("a message over 128 KB: got %v, want PayloadTooLargeException", err)
	}
	if got := srv.Received("c1"); len(got) != 1 {
		t.Errorf("c1 received %d frames, want 1", len(got))
	}
	if got := srv.Received("c2"); len(got) != 0 {
		t.Errorf("c2 received %d frames, want 0", len(got))
	}
	if st := srv.Stats(); st.Requests != 6 {
		t.Errorf("requests: got %d, want 6", st.Requests)
	}

	// A fault for POST only: a client that does not read can still be
	// closed.
	srv.Inject("c1", apigwtest.Fault{Status: 429, Type: apigwtest.LimitExceeded, Method: http.MethodPost})
	if err := post("c1"); !errors.As(err, &le) {
		t.Errorf("POST-only fault: got %v, want LimitExceededException", err)
	}
	if _, err := c.DeleteConnection(ctx, &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: aws.String("c1")}); err != nil {
		t.Errorf("DELETE past a POST-only fault: %v", err)
	}
}

// TestServer_Unsigned: a request without a SigV4 signature for
// execute-api is refused, as API Gateway refuses it.
func TestServer_Unsigned(t *testing.T) {
	srv := apigwtest.New(apigwtest.Options{})
	defer srv.Close()
	srv.Connect("c1")
	resp, err := http.Post(srv.Endpoint()+"/@connections/c1", "application/octet-stream", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 || resp.Header.Get("X-Amzn-ErrorType") != apigwtest.Forbidden {
		t.Errorf("got %d %q, want 403 ForbiddenException", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"))
	}
	if len(srv.Received("c1")) != 0 {
		t.Error("an unsigned post was delivered")
	}
}

func TestServer_Latency(t *testing.T) {
	srv := apigwtest.New(apigwtest.Options{Latency: 50 * time.Millisecond})
	defer srv.Close()
	srv.Connect("c1")
	c := client(srv)
	start := time.Now()
	if _, err := c.PostToConnection(context.Background(), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String("c1"), Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 50*time.Millisecond {
		t.Errorf("answered in %v, want at least the 50 ms latency", took)
	}
}

// TestServer_Signature: with Credentials, the SDK's requests signed with
// them pass, whatever the connection id and payload; a request signed
// with another secret is refused as AWS refuses it.
func TestServer_Signature(t *testing.T) {
	creds := aws.Credentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "secret"}
	srv := apigwtest.New(apigwtest.Options{Credentials: &creds})
	defer srv.Close()
	ctx := context.Background()
	const id = "L0SM9cOFvHcCIhw=/+ ?"
	srv.Connect(id)
	c := client(srv)
	for _, data := range [][]byte{[]byte(`{"a":1}`), {}, bytes.Repeat([]byte{0xff}, 5000)} {
		if _, err := c.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: data}); err != nil {
			t.Fatalf("post of %d bytes: %v", len(data), err)
		}
	}
	if _, err := c.GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{ConnectionId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}

	bad := apigatewaymanagementapi.New(apigatewaymanagementapi.Options{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDTEST", "not the secret", ""),
		BaseEndpoint:     aws.String(srv.Endpoint()),
		RetryMaxAttempts: 1,
	})
	_, err := bad.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: []byte("x")})
	var apiErr interface{ ErrorCode() string }
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != apigwtest.BadSignature {
		t.Errorf("wrong secret: got %v, want %s", err, apigwtest.BadSignature)
	}
	if got := srv.Received(id); len(got) != 3 {
		t.Errorf("received %d frames, want the 3 signed right", len(got))
	}
}

// TestServer_TLS: over TLS the SDK's client, trusting the server's
// certificate, speaks HTTP/2 when offered and HTTP/1.1 otherwise.
func TestServer_TLS(t *testing.T) {
	for _, noH2 := range []bool{false, true} {
		srv := apigwtest.New(apigwtest.Options{TLS: true, NoHTTP2: noH2})
		defer srv.Close()
		if !strings.HasPrefix(srv.Endpoint(), "https://") || srv.Certificate() == nil {
			t.Fatalf("endpoint %s, certificate %v", srv.Endpoint(), srv.Certificate())
		}
		roots := x509.NewCertPool()
		roots.AddCert(srv.Certificate())
		c := apigatewaymanagementapi.New(apigatewaymanagementapi.Options{
			Region:       "us-east-1",
			Credentials:  credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
			BaseEndpoint: aws.String(srv.Endpoint()),
			HTTPClient: awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
				tr.TLSClientConfig = &tls.Config{RootCAs: roots}
			}),
			RetryMaxAttempts: 1,
		})
		srv.Connect("c1")
		for range 3 {
			if _, err := c.PostToConnection(context.Background(), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String("c1"), Data: []byte("x")}); err != nil {
				t.Fatal(err)
			}
		}
		want := 3
		if noH2 {
			want = 0
		}
		if st := srv.Stats(); st.Requests != 3 || st.HTTP2 != want {
			t.Errorf("NoHTTP2 %v: %d requests, %d over HTTP/2; want 3 and %d", noH2, st.Requests, st.HTTP2, want)
		}
	}
}
