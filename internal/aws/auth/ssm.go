package auth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// SSM is Parameter Store's GetParameter, the one call the authorizer
// makes, as a SigV4-signed AWS JSON 1.1 request. It is not the SDK's SSM
// client on purpose: that package's init (its operation schemas) runs in
// every process of the shared bootstrap, connect, route and fan-out
// included, at 1.4 MB allocated and several milliseconds of CPU per cold
// start (RATIONALE), for a call only the authorizer makes, once.
type SSM struct {
	// Endpoint is the service's base URL: https://ssm.<region>.amazonaws.com,
	// or AWS_ENDPOINT_URL_SSM's (SSMEndpoint).
	Endpoint string
	// Region signs the request.
	Region string
	// Credentials sign the request (the function's role on Lambda).
	Credentials aws.CredentialsProvider
	// HTTPClient sends it. Nil means http.DefaultClient.
	HTTPClient *http.Client
	// Attempts is how many times a throttled or failed (5xx, network)
	// request is made in all. Zero means 3, the SDK's default.
	Attempts int
	// MaxBackoff bounds the jittered wait before a retry. Zero means 1 s.
	MaxBackoff time.Duration
}

// SSMEndpoint is Parameter Store's endpoint in region, as the SDK
// resolves it: AWS_ENDPOINT_URL_SSM, else AWS_ENDPOINT_URL, else the
// region's public endpoint (amazonaws.com.cn in China).
func SSMEndpoint(getenv func(string) string, region string) string {
	for _, k := range []string{"AWS_ENDPOINT_URL_SSM", "AWS_ENDPOINT_URL"} {
		if v := getenv(k); v != "" {
			return v
		}
	}
	domain := "amazonaws.com"
	if strings.HasPrefix(region, "cn-") {
		domain = "amazonaws.com.cn"
	}
	return "https://ssm." + region + "." + domain
}

// SSMError is an error answer of Parameter Store: Code is its type
// (ParameterNotFound, AccessDeniedException, ThrottlingException, ...).
type SSMError struct {
	Status        int
	Code, Message string
}

func (e *SSMError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("%s (HTTP %d)", e.Code, e.Status)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// retryable is what the SDK's standard retryer retries: throttling and
// the service's own failures.
func (e *SSMError) retryable() bool {
	switch e.Code {
	case "ThrottlingException", "Throttling", "ThrottledException", "RequestLimitExceeded", "TooManyRequestsException":
		return true
	}
	return e.Status >= 500
}

// Parameter is a parameter as GetParameter returns it.
type Parameter struct{ Name, Type, Value string }

// GetParameter reads parameter name, decrypted, retrying throttling and
// server failures with jittered backoff.
func (c *SSM) GetParameter(ctx context.Context, name string) (Parameter, error) {
	body, err := json.Marshal(struct {
		Name           string
		WithDecryption bool
	}{name, true})
	if err != nil {
		return Parameter{}, err
	}
	attempts := c.Attempts
	if attempts <= 0 {
		attempts = 3
	}
	maxBackoff := c.MaxBackoff
	if maxBackoff <= 0 {
		maxBackoff = time.Second
	}
	for attempt := 1; ; attempt++ {
		p, err := c.getParameter(ctx, body)
		var apiErr *SSMError
		retry := ctx.Err() == nil && (!errors.As(err, &apiErr) || apiErr.retryable())
		if err == nil || !retry || attempt == attempts {
			return p, err
		}
		// Full jitter over an exponential ceiling, as the SDK waits.
		wait := time.Duration(rand.Int64N(int64(min(maxBackoff, 100*time.Millisecond<<attempt)) + 1))
		select {
		case <-ctx.Done():
			return p, err
		case <-time.After(wait):
		}
	}
}

func (c *SSM) getParameter(ctx context.Context, body []byte) (Parameter, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.Endpoint, "/")+"/", bytes.NewReader(body))
	if err != nil {
		return Parameter{}, err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AmazonSSM.GetParameter")
	creds, err := c.Credentials.Retrieve(ctx)
	if err != nil {
		return Parameter{}, fmt.Errorf("AWS credentials: %w", err)
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "ssm", c.Region, time.Now()); err != nil {
		return Parameter{}, err
	}
	client := c.HTTPClient
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return Parameter{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Parameter{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return Parameter{}, ssmErrorOf(resp, data)
	}
	var out struct{ Parameter *Parameter }
	if err := json.Unmarshal(data, &out); err != nil || out.Parameter == nil {
		return Parameter{}, fmt.Errorf("GetParameter: unreadable answer (HTTP %d, %d bytes)", resp.StatusCode, len(data))
	}
	return *out.Parameter, nil
}

// ssmErrorOf reads an AWS JSON 1.1 error: its type from X-Amzn-ErrorType
// or the body's __type, either of which may carry a namespace
// ("...#Code") or a suffix ("Code:http://..."), as the SDK reads it.
func ssmErrorOf(resp *http.Response, data []byte) *SSMError {
	var body struct {
		Type     string `json:"__type"`
		Message  string `json:"message"`
		Message2 string `json:"Message"`
	}
	_ = json.Unmarshal(data, &body) // a body that is not JSON leaves the status alone
	code := resp.Header.Get("X-Amzn-ErrorType")
	if code == "" {
		code = body.Type
	}
	code, _, _ = strings.Cut(code, ":")
	if i := strings.LastIndex(code, "#"); i >= 0 {
		code = code[i+1:]
	}
	if code == "" {
		code = http.StatusText(resp.StatusCode)
	}
	msg := body.Message
	if msg == "" {
		msg = body.Message2
	}
	return &SSMError{Status: resp.StatusCode, Code: code, Message: msg}
}

// HS256SecretFromSSM reads the HS256 secret from the Parameter Store
// SecureString parameter name, once, as the authorizer starts. On Lambda
// the secret lives there rather than in the function's environment,
// which anyone allowed lambda:GetFunctionConfiguration reads in plain
// text.
//
// Every error names the parameter and says what to do; none carries the
// value. A parameter that is not a SecureString is refused (its value is
// stored unencrypted, readable by anyone allowed ssm:GetParameter), and
// so is a value shorter than MinHS256SecretBytes.
func HS256SecretFromSSM(ctx context.Context, c *SSM, name string) ([]byte, error) {
	p, err := c.GetParameter(ctx, name)
	if err != nil {
		return nil, ssmError(name, err)
	}
	if p.Type != "SecureString" {
		return nil, fmt.Errorf("SSM parameter %s is a %s, not a SecureString: its value is stored unencrypted; "+
			"recreate it with aws ssm put-parameter --type SecureString --overwrite", name, p.Type)
	}
	if n := len(p.Value); n < MinHS256SecretBytes {
		return nil, fmt.Errorf("SSM parameter %s holds a secret of %d bytes, want at least %d (RFC 7518)", name, n, MinHS256SecretBytes)
	}
	return []byte(p.Value), nil
}

// ssmError turns a GetParameter failure into one line naming the
// parameter and the likely fix.
func ssmError(name string, err error) error {
	var api *SSMError
	if !errors.As(err, &api) {
		return fmt.Errorf("SSM parameter %s: %w", name, err)
	}
	switch {
	case api.Code == "ParameterNotFound":
		return fmt.Errorf("SSM parameter %s does not exist in this account and region: create it with "+
			"aws ssm put-parameter --type SecureString --name %s --value <secret of %d bytes or more>", name, name, MinHS256SecretBytes)
	case api.Code == "AccessDeniedException":
		return fmt.Errorf("SSM parameter %s: access denied (the function's role needs ssm:GetParameter on the parameter, "+
			"and kms:Decrypt on its key if that is a customer managed key): %s", name, api.Message)
	case api.Code == "InvalidKeyId":
		return fmt.Errorf("SSM parameter %s: its KMS key cannot decrypt it (InvalidKeyId): %s", name, api.Message)
	case api.retryable() && api.Status < 500:
		return fmt.Errorf("SSM parameter %s: GetParameter throttled, retries exhausted (the account's Parameter Store "+
			"throughput is shared; the next cold start tries again): %s", name, api.Message)
	}
	return fmt.Errorf("SSM parameter %s: %w", name, err)
}
