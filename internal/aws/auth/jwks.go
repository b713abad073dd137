package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// maxJWKSBytes bounds the JWKS response: a key server answering with an
// endless body must not exhaust the function's memory. A Cognito JWKS is
// about 1 KB.
const maxJWKSBytes = 1 << 20

// minRSABits is the smallest RSA modulus accepted (NIST SP 800-131A).
const minRSABits = 2048

// errUnknownKey is returned for a kid the key set does not hold, even after
// a refresh was allowed.
var errUnknownKey = errors.New("unknown key id")

// publicKey is one verification key from the JWKS with the only algorithm
// it may verify.
type publicKey struct {
	alg string // "RS256" or "ES256"
	key crypto.PublicKey
}

// jwks is a cached key set fetched from a URL. Verification reads it; a
// stale set or an unknown kid makes the reading verification fetch it again,
// at most once per minGap. The fetch happens on the caller's goroutine:
// Lambda freezes the environment between invocations, so a background
// refresher would run late or in bursts, and on a frozen clock in tests.
type jwks struct {
	url          string
	client       *http.Client
	timeout      time.Duration
	now          func() time.Time
	refreshEvery time.Duration
	minGap       time.Duration

	// mu serializes fetches as well as guarding the fields below, so that
	// callers arriving during a fetch wait for its result instead of
	// starting their own.
	mu        sync.Mutex
	keys      map[string]publicKey
	fetched   bool      // keys came from at least one successful fetch
	fetchedAt time.Time // last successful fetch
	triedAt   time.Time // last fetch attempt, successful or not
	tried     bool
}

// key returns the verification key named kid, fetching the set when it is
// stale or does not hold kid, within the rate limit.
func (s *jwks) key(ctx context.Context, kid string) (publicKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var fetchErr error
	if !s.fetched || now.Sub(s.fetchedAt) >= s.refreshEvery {
		fetchErr = s.refreshLocked(ctx, now)
	}
	if k, ok := s.keys[kid]; ok {
		return k, nil
	}
	if fetchErr == nil {
		fetchErr = s.refreshLocked(ctx, now)
		if k, ok := s.keys[kid]; ok {
			return k, nil
		}
	}
	if fetchErr != nil && !errors.Is(fetchErr, errRateLimited) {
		return publicKey{}, fmt.Errorf("%w (key set fetch failed: %w)", errUnknownKey, fetchErr)
	}
	return publicKey{}, errUnknownKey
}

// errRateLimited means a fetch was due but the previous attempt was too
// recent.
var errRateLimited = errors.New("key set fetch rate limited")

// refreshLocked fetches the set unless the last attempt was less than minGap
// ago. A failed fetch keeps the previous keys: a key server outage must not
// log everyone out, and rotated-out keys still expire with the next
// successful fetch.
func (s *jwks) refreshLocked(ctx context.Context, now time.Time) error {
	if s.tried && now.Sub(s.triedAt) < s.minGap {
		return errRateLimited
	}
	s.tried, s.triedAt = true, now
	// The fetch outlives a caller that gives up: its result serves every
	// later caller, and an aborted attempt would still use up the rate limit.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
	defer cancel()
	keys, err := s.fetch(ctx)
	if err != nil {
		return err
	}
	s.keys, s.fetched, s.fetchedAt = keys, true, now
	return nil
}

func (s *jwks) fetch(ctx context.Context) (map[string]publicKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("key set larger than %d bytes", maxJWKSBytes)
	}
	return parseJWKS(body)
}

// jwk holds the members of a JSON Web Key (RFC 7517, 7518) that matter for
// verification.
type jwk struct {
	Kty    string   `json:"kty"`
	Kid    string   `json:"kid"`
	Use    string   `json:"use"`
	KeyOps []string `json:"key_ops"`
	Alg    string   `json:"alg"`
	N      string   `json:"n"`
	E      string   `json:"e"`
	Crv    string   `json:"crv"`
	X      string   `json:"x"`
	Y      string   `json:"y"`
}

// parseJWKS reads a JWK Set. A key that cannot be used (another type or
// curve, another use, an algorithm other than RS256/ES256, no kid, a weak or
// malformed key) is skipped rather than failing the set, so that one odd key
// published next to the real ones does not lock every user out. Symmetric
// ("oct") keys are always skipped: a secret published at a URL is no secret.
// When two keys share a kid the first one wins.
func parseJWKS(data []byte) (map[string]publicKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("key set: %w", err)
	}
	if set.Keys == nil {
		return nil, errors.New(`key set: no "keys" member`)
	}
	keys := make(map[string]publicKey, len(set.Keys))
	for _, raw := range set.Keys {
		var k jwk
		if json.Unmarshal(raw, &k) != nil || k.Kid == "" {
			continue
		}
		if _, dup := keys[k.Kid]; dup {
			continue
		}
		if pk, ok := k.publicKey(); ok {
			keys[k.Kid] = pk
		}
	}
	return keys, nil
}

// publicKey pins the key to one algorithm: the key's own alg when the JWKS
// names one, else RS256 for RSA and ES256 for P-256. Nothing else is
// accepted, so a token cannot pick a weaker or different algorithm for a
// key than the issuer uses.
func (k *jwk) publicKey() (publicKey, bool) {
	if k.Use != "" && k.Use != "sig" {
		return publicKey{}, false
	}
	if k.KeyOps != nil && !slices.Contains(k.KeyOps, "verify") {
		return publicKey{}, false
	}
	switch k.Kty {
	case "RSA":
		if k.Alg != "" && k.Alg != "RS256" {
			return publicKey{}, false
		}
		n, err := decodeB64(k.N)
		if err != nil || len(n) == 0 || n[0] == 0 {
			return publicKey{}, false
		}
		e, err := decodeB64(k.E)
		if err != nil || len(e) == 0 || len(e) > 4 || e[0] == 0 {
			return publicKey{}, false
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n)}
		for _, b := range e {
			pub.E = pub.E<<8 | int(b)
		}
		if pub.N.BitLen() < minRSABits || pub.E < 3 || pub.E%2 == 0 {
			return publicKey{}, false
		}
		return publicKey{alg: "RS256", key: pub}, true
	case "EC":
		if k.Crv != "P-256" || (k.Alg != "" && k.Alg != "ES256") {
			return publicKey{}, false
		}
		x, errX := decodeB64(k.X)
		y, errY := decodeB64(k.Y)
		if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			return publicKey{}, false
		}
		// ParseUncompressedPublicKey rejects points off the curve, which
		// invalid-curve attacks rely on.
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), slices.Concat([]byte{4}, x, y))
		if err != nil {
			return publicKey{}, false
		}
		return publicKey{alg: "ES256", key: pub}, true
	}
	return publicKey{}, false
}

// decodeB64 decodes base64url without padding, as RFC 7515 section 2
// requires; trailing "=" that some servers add anyway are tolerated.
func decodeB64(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}
