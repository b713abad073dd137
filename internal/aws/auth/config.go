// Package auth verifies the bearer token a client presents on $connect and
// turns it into the REQUEST authorizer's answer: API Gateway authorizes a
// WebSocket connection only once, and the context returned here travels with
// every later event of the connection as requestContext.authorizer.
//
// It runs natively in the host (the bootstrap binary with
// _HANDLER=authorizer), never in a wasm guest, so it may use a JWT library.
package auth

import (
	"net/http"
	"time"
)

// Environment variables read by ConfigFromEnv.
const (
	EnvHS256Secret = "WSBIND_AUTH_HS256_SECRET"
	// EnvHS256SecretParam names the SSM Parameter Store SecureString
	// holding the HS256 secret, which the authorizer reads at start
	// (HS256SecretFromSSM): the deployed stack's way. EnvHS256Secret,
	// the secret itself, is for local runs; setting both is an error.
	EnvHS256SecretParam = "WSBIND_AUTH_HS256_SECRET_PARAM"
	EnvJWKSURL          = "WSBIND_AUTH_JWKS_URL"
	EnvIssuer           = "WSBIND_AUTH_ISSUER"
	EnvAudience         = "WSBIND_AUTH_AUDIENCE"
)

// Defaults of the Config fields left zero.
const (
	DefaultLeeway             = 30 * time.Second
	DefaultHTTPTimeout        = 3 * time.Second
	DefaultRefreshInterval    = time.Hour
	DefaultMinRefreshInterval = time.Minute
)

// MinHS256SecretBytes is the shortest HS256 secret NewVerifier accepts:
// RFC 7518 section 3.2 requires a key at least as long as the hash output.
const MinHS256SecretBytes = 32

// Config says which tokens a Verifier accepts. The zero value verifies
// nothing: every presented token is rejected, and an Authorizer built on it
// still lets anonymous connections in.
type Config struct {
	// HS256Secret is the shared secret of HS256 tokens, at least
	// MinHS256SecretBytes long. Empty: HS256 tokens are rejected.
	HS256Secret []byte

	// JWKSURL is where the public keys of RS256 and ES256 tokens are
	// published (for Amazon Cognito:
	// https://cognito-idp.{region}.amazonaws.com/{userPoolId}/.well-known/jwks.json).
	// It must be https, or http on a loopback host (tests, the emulator).
	// Empty: RS256 and ES256 tokens are rejected.
	JWKSURL string

	// Issuer, when set, must equal the token's iss.
	Issuer string

	// Audience, when set, must be one of the token's aud values; a token
	// without aud may match with client_id instead (Cognito access tokens
	// carry the app client id there).
	Audience string

	// Leeway absorbs clock skew when checking exp and nbf. Zero means
	// DefaultLeeway; a negative value means none.
	Leeway time.Duration

	// Now is the clock for exp, nbf and the key cache. Nil means time.Now.
	Now func() time.Time

	// HTTPClient fetches the JWKS. Nil means a client with no settings of
	// its own; every fetch is bounded by HTTPTimeout either way.
	HTTPClient *http.Client

	// HTTPTimeout bounds one JWKS fetch. Zero means DefaultHTTPTimeout.
	HTTPTimeout time.Duration

	// RefreshInterval is how old the cached JWKS may grow before the next
	// verification fetches it again. Zero means DefaultRefreshInterval.
	RefreshInterval time.Duration

	// MinRefreshInterval is the least time between two fetch attempts, so
	// that tokens naming unknown key ids, or an unreachable JWKS URL,
	// cannot turn every connection attempt into a request to the key
	// server. Zero means DefaultMinRefreshInterval.
	MinRefreshInterval time.Duration
}

// ConfigFromEnv reads the WSBIND_AUTH_* variables through getenv
// (os.Getenv in production). The secret is taken as raw bytes. With neither
// a secret nor a JWKS URL no token can be verified: an Authorizer then
// rejects every presented token and allows only anonymous connections.
func ConfigFromEnv(getenv func(string) string) Config {
	var c Config
	if s := getenv(EnvHS256Secret); s != "" {
		c.HS256Secret = []byte(s)
	}
	c.JWKSURL = getenv(EnvJWKSURL)
	c.Issuer = getenv(EnvIssuer)
	c.Audience = getenv(EnvAudience)
	return c
}
