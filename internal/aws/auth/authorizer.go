package auth

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// ErrUnauthorized is the error the authorizer returns for a bad token. API
// Gateway matches its text exactly: a Lambda authorizer failing with
// "Unauthorized" answers the handshake with 401, any other error with 500.
var ErrUnauthorized = errors.New("Unauthorized")

// AnonymousPrincipalID is the principalId of a connection that presented no
// token. API Gateway requires a principalId in every Allow, and it delivers
// it with every event of the connection, so readers of requestContext.authorizer
// must take the user from "sub" alone: only a verified token puts "sub" in the
// context.
const AnonymousPrincipalID = "anonymous"

// MaxResultBytes is API Gateway's limit on a Lambda authorizer's result. The
// whole response is kept under it, not only the context, by dropping claims.
const MaxResultBytes = 8192

// QueryTokenParameter is the query string parameter that carries the token:
// browsers cannot set headers on a WebSocket handshake.
const QueryTokenParameter = "token"

// droppedClaims never enter the context as claims. nbf, iat and jti only
// describe the token, which is spent once the connection is open;
// principalId and integrationLatency are names API Gateway itself uses in
// requestContext.authorizer, so a claim must not impersonate them, and
// RolesContextKey is ours. sub and exp are added first, outside the claims'
// size budget: exp is how an open connection learns its token expired.
var droppedClaims = map[string]bool{
	"sub": true, "exp": true, "nbf": true, "iat": true, "jti": true,
	"principalId": true, "integrationLatency": true, RolesContextKey: true,
}

// Authorizer is the logic of the $connect REQUEST authorizer: no token
// allows an anonymous connection, a valid token allows a connection as its
// sub with its claims, anything else is refused with ErrUnauthorized.
type Authorizer struct {
	verifier *Verifier
	log      *slog.Logger
}

// NewAuthorizer returns an Authorizer that verifies tokens with v and logs
// rejections (never a token) to log; a nil log means slog.Default().
func NewAuthorizer(v *Verifier, log *slog.Logger) *Authorizer {
	if log == nil {
		log = slog.Default()
	}
	return &Authorizer{verifier: v, log: log}
}

// Invoke implements lambda.Handler, so the host can serve the Authorizer
// under _HANDLER=authorizer like any other function.
func (a *Authorizer) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	var req events.APIGatewayCustomAuthorizerRequestTypeRequest
	if err := json.Unmarshal(payload, &req); err != nil {
		return nil, fmt.Errorf("auth: decode authorizer request: %w", err)
	}
	resp, err := a.Authorize(ctx, req)
	if err != nil {
		return nil, err
	}
	return json.Marshal(resp)
}

// Authorize answers one $connect authorization request. The token is the
// query parameter "token", else an "Authorization: Bearer" header.
func (a *Authorizer) Authorize(ctx context.Context, req events.APIGatewayCustomAuthorizerRequestTypeRequest) (events.APIGatewayCustomAuthorizerResponse, error) {
	token, source, err := tokenOf(req)
	if err != nil {
		return a.reject(ctx, req, source, err)
	}
	if source == "" {
		return allow(req.MethodArn, AnonymousPrincipalID, nil), nil
	}
	claims, err := a.verifier.Verify(ctx, token)
	if err != nil {
		return a.reject(ctx, req, source, err)
	}
	resp, err := allowUser(req.MethodArn, claims)
	if err != nil {
		return a.reject(ctx, req, source, err)
	}
	return resp, nil
}

// allowUser is the Allow of a verified token: its sub as the principal,
// and a context of sub, exp and the roles (RolesContextKey), which must
// fit, then as many of the other scalar claims as fit (addClaims).
func allowUser(methodARN string, claims map[string]any) (events.APIGatewayCustomAuthorizerResponse, error) {
	sub := claims["sub"].(string) // Verify guarantees a non-empty string
	resp := allow(methodARN, sub, map[string]any{"sub": sub})
	switch exp := claims["exp"].(type) { // Verify requires a number
	case json.Number, float64:
		resp.Context["exp"] = exp
	}
	size, err := resultSize(resp)
	if err != nil {
		return resp, err
	}
	if size > MaxResultBytes {
		return resp, fmt.Errorf("authorizer result of %d bytes with sub and exp alone, limit %d", size, MaxResultBytes)
	}
	if roles := rolesOf(claims); len(roles) > 0 {
		text, err := rolesText(roles)
		if err != nil {
			return resp, err
		}
		resp.Context[RolesContextKey] = text
		withRoles, err := resultSize(resp)
		if err != nil {
			return resp, err
		}
		if withRoles > MaxResultBytes {
			return resp, fmt.Errorf("roles too large: %d roles make the authorizer result %d bytes (%d without them), limit %d",
				len(roles), withRoles, size, MaxResultBytes)
		}
		size = withRoles
	}
	addClaims(&resp, claims, size)
	return resp, nil
}

// resultSize is the length of resp as API Gateway receives it.
func resultSize(resp events.APIGatewayCustomAuthorizerResponse) (int, error) {
	b, err := json.Marshal(resp)
	return len(b), err
}

func (a *Authorizer) reject(ctx context.Context, req events.APIGatewayCustomAuthorizerRequestTypeRequest, source string, err error) (events.APIGatewayCustomAuthorizerResponse, error) {
	a.log.InfoContext(ctx, "auth: connection refused",
		"api_request_id", req.RequestContext.RequestID,
		"token_source", source,
		"reason", err.Error())
	return events.APIGatewayCustomAuthorizerResponse{}, ErrUnauthorized
}

// tokenOf finds the token and says where it came from ("" for nowhere). An
// empty token parameter counts as none, so a client can always append
// ?token=... ; an Authorization header that is not a non-empty Bearer
// credential, or a repeated token parameter, is an error: the client meant
// to authenticate and cannot be served as someone else.
func tokenOf(req events.APIGatewayCustomAuthorizerRequestTypeRequest) (token, source string, err error) {
	if vs := req.MultiValueQueryStringParameters[QueryTokenParameter]; len(vs) > 1 {
		return "", "query", errors.New("token parameter repeated")
	}
	if t := req.QueryStringParameters[QueryTokenParameter]; t != "" {
		return t, "query", nil
	}
	for name, value := range req.Headers {
		if !strings.EqualFold(name, "Authorization") {
			continue
		}
		scheme, cred, _ := strings.Cut(strings.TrimSpace(value), " ")
		cred = strings.TrimSpace(cred)
		if !strings.EqualFold(scheme, "Bearer") || cred == "" {
			return "", "header", errors.New("authorization header is not a bearer token")
		}
		return cred, "header", nil
	}
	return "", "", nil
}

// allow is an Allow of execute-api:Invoke on the $connect route's ARN: the
// only route an authorizer's policy is consulted for on a WebSocket API.
func allow(methodARN, principalID string, context map[string]any) events.APIGatewayCustomAuthorizerResponse {
	return events.APIGatewayCustomAuthorizerResponse{
		PrincipalID: principalID,
		PolicyDocument: events.APIGatewayCustomAuthorizerPolicy{
			Version: "2012-10-17",
			Statement: []events.IAMPolicyStatement{{
				Action:   []string{"execute-api:Invoke"},
				Effect:   "Allow",
				Resource: []string{methodARN},
			}},
		},
		Context: context,
	}
}

// addClaims copies the token's scalar claims (strings, numbers, booleans:
// what an authorizer context can hold) into resp.Context, smallest first,
// while the encoded response, size bytes without them, stays within
// MaxResultBytes. Dropping a claim beats refusing a user whose identity
// provider adds large claims; keeping the small ones keeps the most. What
// resp.Context holds already (sub, exp, the roles) is never dropped.
func addClaims(resp *events.APIGatewayCustomAuthorizerResponse, claims map[string]any, size int) {
	type member struct {
		key  string
		val  any
		cost int
	}
	var members []member
	for k, v := range claims {
		if k == "" || droppedClaims[k] {
			continue
		}
		switch v.(type) {
		case string, bool, json.Number, float64:
		default:
			continue // objects, arrays and null cannot be context values
		}
		kb, err1 := json.Marshal(k)
		vb, err2 := json.Marshal(v)
		if err1 != nil || err2 != nil {
			continue
		}
		members = append(members, member{k, v, len(kb) + len(vb) + 2}) // ',' and ':'
	}
	slices.SortFunc(members, func(a, b member) int {
		return cmp.Or(cmp.Compare(a.cost, b.cost), strings.Compare(a.key, b.key))
	})
	for _, m := range members {
		if size+m.cost > MaxResultBytes {
			break
		}
		resp.Context[m.key] = m.val
		size += m.cost
	}
}
