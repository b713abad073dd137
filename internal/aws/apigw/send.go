package apigw

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/schemas"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/encoding/httpbinding"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/aws/smithy-go/transport/http/protocol/restjson1"
)

// push is one frame to post, with its payload's SHA-256, which SigV4
// signs: computed once per frame, not once per connection.
type push struct {
	frame []byte
	hash  string // hex
}

func newPush(frame []byte) *push {
	sum := sha256.Sum256(frame)
	return &push{frame: frame, hash: hex.EncodeToString(sum[:])}
}

// sender makes PostToConnection requests itself: the request built by
// hand, signed with the SDK's SigV4 signer, sent with the SDK's HTTP
// client, and an error response decoded by the SDK's own restJson1
// protocol into the same error values (types.GoneException wrapped in
// *smithy.OperationError and so on) as the client returns. It skips the
// SDK's per-call middleware stack (endpoint rules, auth scheme and
// identity resolution, retry bookkeeping, the payload hashed again for
// every connection), which cost more CPU per post than the signing and
// the HTTP exchange together (RATIONALE: "Why does the Poster sign its
// posts itself?").
type sender struct {
	hc     aws.HTTPClient
	creds  aws.CredentialsProvider // cached; nil sends unsigned, as the SDK does without credentials
	signer *v4.Signer
	region string
	base   url.URL // the endpoint, path without its trailing slash
	ua     string

	proto *restjson1.Protocol
	op    *smithy.OperationSchema
}

func newSender(base *url.URL, region string, awsCfg aws.Config, hc aws.HTTPClient) *sender {
	creds := awsCfg.Credentials
	if creds != nil && !aws.IsCredentialsProvider(creds, (*aws.CredentialsCache)(nil)) {
		creds = aws.NewCredentialsCache(creds)
	}
	return &sender{
		hc: hc, creds: creds, region: region, base: *base,
		signer: v4.NewSigner(func(o *v4.SignerOptions) { o.Logger = awsCfg.Logger; o.LogSigning = awsCfg.ClientLogMode.IsSigning() }),
		ua:     "aws-sdk-go-v2/" + aws.SDKVersion + " wsbind-apigw",
		proto:  restjson1.New(schemas.ApiGatewayManagementApi),
		op:     smithy.NewOperationSchema(schemas.PostToConnection, schemas.PostToConnectionRequest, nil),
	}
}

// post makes one PostToConnection request: nil on 2xx, otherwise the
// error the SDK's client would have returned.
func (s *sender) post(ctx context.Context, pu *push, id string) error {
	if err := ctx.Err(); err != nil {
		return opError(err) // as the SDK: no request when ctx has ended
	}
	u := s.base
	u.Path = s.base.Path + "/@connections/" + id
	u.RawPath = s.base.EscapedPath() + "/@connections/" + httpbinding.EscapePath(id, true)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(pu.frame))
	if err != nil {
		return opError(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("User-Agent", s.ua)
	if s.creds != nil {
		cr, err := s.creds.Retrieve(ctx)
		if err != nil {
			return opError(fmt.Errorf("get identity: %w", err))
		}
		if err := s.signer.SignHTTP(ctx, cr, req, pu.hash, "execute-api", s.region, time.Now().UTC()); err != nil {
			return opError(fmt.Errorf("sign request: %w", err))
		}
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		// Wrapped as the SDK wraps it, in a response error without a
		// response: a RequestSendError, which its retryer deems
		// retryable, or a CanceledError when ctx ended.
		err = &smithyhttp.RequestSendError{Err: err}
		if ctx.Err() != nil {
			err = &smithy.CanceledError{Err: ctx.Err()}
		}
		return responseError(&http.Response{Header: http.Header{}, Body: http.NoBody}, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10)) // so that the connection is reused
		return nil
	}
	err = s.proto.DeserializeResponse(ctx, s.op, apigatewaymanagementapi.TypeRegistry, &smithyhttp.Response{Response: resp}, &apigatewaymanagementapi.PostToConnectionOutput{})
	if err == nil { // not an error status after all, to the protocol
		return nil
	}
	return responseError(resp, err)
}

// responseError wraps err, the error of the request that got resp, as
// the SDK's client wraps an operation's errors: in *smithy.OperationError
// and *awshttp.ResponseError, with the request id if any.
func responseError(resp *http.Response, err error) error {
	// The SDK's RequestIDRetriever reads these two headers.
	reqID := resp.Header.Get("X-Amzn-Requestid")
	if reqID == "" {
		reqID = resp.Header.Get("X-Amz-Requestid")
	}
	return opError(&awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: resp}, Err: err}, RequestID: reqID})
}

// opError wraps err as the SDK's client wraps an operation's errors.
func opError(err error) error {
	return &smithy.OperationError{ServiceID: apigatewaymanagementapi.ServiceID, OperationName: "PostToConnection", Err: err}
}
