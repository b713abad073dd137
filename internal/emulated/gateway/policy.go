package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// maxAuthorizerResult is API Gateway's limit on a Lambda authorizer's
// result (docs/aws-limits.md).
const maxAuthorizerResult = 8 << 10

// authorizerResult is a REQUEST authorizer's response as API Gateway
// reads it: more lenient than events.APIGatewayCustomAuthorizerResponse,
// since IAM accepts a single string where a list is expected, and any
// capitalization of the member names.
type authorizerResult struct {
	PrincipalID    *string                    `json:"principalId"`
	PolicyDocument *policyDocument            `json:"policyDocument"`
	Context        map[string]json.RawMessage `json:"context"`
}

type policyDocument struct {
	Version   string
	Statement oneOrMany[statement]
}

type statement struct {
	Effect   string
	Action   oneOrMany[string]
	Resource oneOrMany[string]
}

// oneOrMany is an IAM policy element that is a value or a list of them.
type oneOrMany[T any] []T

func (o *oneOrMany[T]) UnmarshalJSON(b []byte) error {
	if b = bytes.TrimSpace(b); len(b) > 0 && b[0] == '[' {
		return json.Unmarshal(b, (*[]T)(o))
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*o = oneOrMany[T]{v}
	return nil
}

// errPolicyDenied is a well-formed result that does not allow the
// connection: API Gateway answers 403.
var errPolicyDenied = errors.New("policy does not allow execute-api:Invoke on the route")

// parseAuthorizerResult checks an authorizer's response as API Gateway
// does and returns requestContext.authorizer for the connection's events:
// the context, plus principalId and integrationLatency (milliseconds).
// A response API Gateway cannot use (not JSON, no principalId or policy,
// a context value that is not a string, number or boolean, over 8 KB) is
// an error (500); one that does not allow methodARN is errPolicyDenied
// (403).
func parseAuthorizerResult(out []byte, methodARN string, latencyMillis int64) (map[string]any, error) {
	if len(out) > maxAuthorizerResult {
		return nil, fmt.Errorf("authorizer result of %d bytes, limit %d", len(out), maxAuthorizerResult)
	}
	var res authorizerResult
	if err := json.Unmarshal(out, &res); err != nil {
		return nil, fmt.Errorf("authorizer result: %w", err)
	}
	if res.PrincipalID == nil || res.PolicyDocument == nil {
		return nil, errors.New("authorizer result without principalId or policyDocument")
	}
	authorizer := make(map[string]any, len(res.Context)+2)
	for k, raw := range res.Context {
		v, err := contextValue(raw)
		if err != nil {
			return nil, fmt.Errorf("authorizer context %q: %w", k, err)
		}
		authorizer[k] = v
	}
	if !res.PolicyDocument.allows(methodARN) {
		return nil, errPolicyDenied
	}
	authorizer["principalId"] = *res.PrincipalID
	authorizer["integrationLatency"] = latencyMillis
	return authorizer, nil
}

// contextValue decodes an authorizer context value, which must be a
// string, a number (kept as written) or a boolean.
func contextValue(raw json.RawMessage) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	switch v.(type) {
	case string, json.Number, bool:
		return v, nil
	}
	return nil, errors.New("not a string, number or boolean")
}

// allows evaluates the policy as IAM does for one action on one
// resource: an explicit Deny wins, otherwise an Allow is needed.
func (p *policyDocument) allows(resource string) bool {
	allowed := false
	for _, s := range p.Statement {
		if !matchesAny(s.Action, "execute-api:Invoke", true) || !matchesAny(s.Resource, resource, false) {
			continue
		}
		switch s.Effect {
		case "Deny":
			return false
		case "Allow":
			allowed = true
		}
	}
	return allowed
}

func matchesAny(patterns []string, s string, foldCase bool) bool {
	if foldCase {
		s = strings.ToLower(s)
	}
	for _, p := range patterns {
		if foldCase {
			p = strings.ToLower(p)
		}
		if globMatch(p, s) {
			return true
		}
	}
	return false
}

// globMatch matches s against an IAM pattern, where * stands for any
// run of characters (none included) and ? for exactly one.
func globMatch(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
