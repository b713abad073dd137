package auth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Verifier checks signed tokens (JWS compact serialization) against the keys
// of a Config. It is safe for concurrent use.
type Verifier struct {
	secret   []byte
	keys     *jwks // nil without a JWKS URL
	issuer   string
	audience string
	leeway   time.Duration
	now      func() time.Time
	methods  []string
	parser   *jwt.Parser // safe for concurrent use once built
}

// ErrNoKeys is returned by Verify when the Config names no key at all, so no
// token can be valid.
var ErrNoKeys = errors.New("no key configured to verify tokens")

// NewVerifier checks the config and returns a Verifier for it. It does no
// I/O: the JWKS is fetched by the first verification that needs it, so a key
// server outage at cold start neither fails the function nor blocks
// anonymous connections.
func NewVerifier(c Config) (*Verifier, error) {
	v := &Verifier{
		issuer:   c.Issuer,
		audience: c.Audience,
		leeway:   defaultDuration(c.Leeway, DefaultLeeway),
		now:      c.Now,
	}
	if c.Leeway < 0 {
		v.leeway = 0
	}
	if v.now == nil {
		v.now = time.Now
	}
	if len(c.HS256Secret) > 0 {
		if len(c.HS256Secret) < MinHS256SecretBytes {
			return nil, fmt.Errorf("auth: HS256 secret of %d bytes, want at least %d", len(c.HS256Secret), MinHS256SecretBytes)
		}
		v.secret = slices.Clone(c.HS256Secret)
		v.methods = append(v.methods, jwt.SigningMethodHS256.Alg())
	}
	if c.JWKSURL != "" {
		if err := checkJWKSURL(c.JWKSURL); err != nil {
			return nil, err
		}
		client := c.HTTPClient
		if client == nil {
			client = &http.Client{}
		}
		v.keys = &jwks{
			url:          c.JWKSURL,
			client:       client,
			timeout:      defaultDuration(c.HTTPTimeout, DefaultHTTPTimeout),
			now:          v.now,
			refreshEvery: defaultDuration(c.RefreshInterval, DefaultRefreshInterval),
			minGap:       defaultDuration(c.MinRefreshInterval, DefaultMinRefreshInterval),
		}
		v.methods = append(v.methods, jwt.SigningMethodRS256.Alg(), jwt.SigningMethodES256.Alg())
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(v.methods),
		jwt.WithJSONNumber(),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(v.leeway),
		jwt.WithTimeFunc(v.now),
	}
	if v.issuer != "" {
		opts = append(opts, jwt.WithIssuer(v.issuer))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

func defaultDuration(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// checkJWKSURL refuses plain http except on a loopback host: keys fetched
// over an unauthenticated channel could be anyone's.
func checkJWKSURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("auth: JWKS URL: %w", err)
	}
	switch u.Scheme {
	case "https":
		if u.Host == "" {
			return fmt.Errorf("auth: JWKS URL %q has no host", raw)
		}
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
			return nil
		}
	}
	return fmt.Errorf("auth: JWKS URL %q must be https (http only on a loopback host)", raw)
}

// Verify checks the token's signature with the key its algorithm and kid
// name, then exp (required), nbf, iss and aud as configured, and that sub is
// a non-empty string. It returns the token's claims; numbers are
// json.Number, so they keep their digits.
func (v *Verifier) Verify(ctx context.Context, token string) (map[string]any, error) {
	if len(v.methods) == 0 {
		return nil, ErrNoKeys
	}
	claims := jwt.MapClaims{}
	if _, err := v.parser.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		return v.keyFor(ctx, t)
	}); err != nil {
		return nil, err
	}
	if err := v.checkAudience(claims); err != nil {
		return nil, err
	}
	sub, err := claims.GetSubject()
	if err != nil {
		return nil, err
	}
	if sub == "" {
		return nil, errors.New("token has no sub")
	}
	return claims, nil
}

// keyFor is the only place a key meets an algorithm: the HS256 secret is
// handed out only for HS256, a JWKS key only for the algorithm it was
// pinned to. So an HS256 token can never be checked with an RSA public key
// as its HMAC secret, whatever its header says.
func (v *Verifier) keyFor(ctx context.Context, t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	switch alg {
	case jwt.SigningMethodHS256.Alg():
		if v.secret == nil {
			return nil, errors.New("HS256 not configured")
		}
		return v.secret, nil
	case jwt.SigningMethodRS256.Alg(), jwt.SigningMethodES256.Alg():
		if v.keys == nil {
			return nil, fmt.Errorf("%s not configured", alg)
		}
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("token has no kid")
		}
		k, err := v.keys.key(ctx, kid)
		if err != nil {
			return nil, err
		}
		if k.alg != alg {
			return nil, fmt.Errorf("key is pinned to %s, token says %s", k.alg, alg)
		}
		return k.key, nil
	}
	return nil, fmt.Errorf("algorithm %q not accepted", alg)
}

// checkAudience requires the configured audience among aud; a token
// without aud may name it in client_id, which is where Amazon Cognito
// access tokens carry the app client they were issued to.
func (v *Verifier) checkAudience(claims jwt.MapClaims) error {
	if v.audience == "" {
		return nil
	}
	aud, err := claims.GetAudience()
	if err != nil {
		return err
	}
	if len(aud) > 0 {
		if slices.Contains(aud, v.audience) {
			return nil
		}
		return jwt.ErrTokenInvalidAudience
	}
	if id, ok := claims["client_id"].(string); ok && id == v.audience {
		return nil
	}
	return jwt.ErrTokenInvalidAudience
}
