package auth

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// newTestVerifier serves rsaA as "rsa-a" (alg RS256), ecA as "ec-a" (no
// alg: pinned by its curve) and rsaC as "rsa-ps" (alg PS256: unusable), and
// accepts HS256 with testSecret too.
func newTestVerifier(t *testing.T) (*Verifier, *keyServer, *fakeClock) {
	t.Helper()
	srv := newKeyServer(t,
		jwkOf(t, &rsaA().PublicKey, "rsa-a", jwkset.AlgRS256),
		jwkOf(t, &ecA().PublicKey, "ec-a", ""),
		jwkOf(t, &rsaC().PublicKey, "rsa-ps", jwkset.AlgPS256),
	)
	clock := newClock()
	v, err := NewVerifier(Config{
		HS256Secret: []byte(testSecret),
		JWKSURL:     srv.URL,
		Issuer:      testIssuer,
		Audience:    testAudience,
		Now:         clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return v, srv, clock
}

func TestVerifier_Verify(t *testing.T) {
	v, _, _ := newTestVerifier(t)
	now := t0
	hs := []byte(testSecret)
	rsaPub := &rsaA().PublicKey
	pemPub := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: must(x509.MarshalPKIXPublicKey(rsaPub))})
	derPub := x509.MarshalPKCS1PublicKey(rsaPub)

	valid := func(changes jwt.MapClaims) jwt.MapClaims { return claimsAt(now, changes) }
	tests := []struct {
		name    string
		token   string
		wantErr error // nil: must verify; errAny: must fail, reason unchecked
	}{
		{"HS256", sign(t, jwt.SigningMethodHS256, hs, "", valid(nil)), nil},
		{"RS256", sign(t, jwt.SigningMethodRS256, rsaA(), "rsa-a", valid(nil)), nil},
		{"ES256", sign(t, jwt.SigningMethodES256, ecA(), "ec-a", valid(nil)), nil},
		{"aud list", sign(t, jwt.SigningMethodHS256, hs, "", valid(jwt.MapClaims{"aud": []string{"other", testAudience}})), nil},
		{"Cognito access token: client_id", sign(t, jwt.SigningMethodRS256, rsaA(), "rsa-a", valid(jwt.MapClaims{"aud": nil, "client_id": testAudience, "token_use": "access"})), nil},
		{"expired within leeway", sign(t, jwt.SigningMethodHS256, hs, "", valid(jwt.MapClaims{"exp": now.Add(-10 * time.Second).Unix()})), nil},
		{"nbf within leeway", sign(t, jwt.SigningMethodHS256, hs, "", valid(jwt.MapClaims{"nbf": now.Add(10 * time.Second).Unix()})), nil},

		{"expired", sign(t, jwt.SigningMethodHS256, hs, "", valid(jwt.MapClaims{"exp": now.Add(-time.Minute).Unix()})), jwt.ErrTokenExpired},
		{"expired RS256", sign(t, jwt.SigningMethodRS256, rsaA(), "rsa-a", valid(jwt.MapClaims{"exp": now.Add(-time.Hour).Unix()})), jwt.ErrTokenExpired},
		{"not yet valid", sign(t, jwt.SigningMethodHS256, hs, "", valid(jwt.MapClaims{"nbf": now.Add(5 * time.Minute).Unix()})), jwt.ErrTokenNotValidYet},
		{"no exp", sign(t, jwt.SigningMethodHS256, hs, "", valid(jwt.MapClaims{"exp": nil})), jwt.ErrTokenRequiredClaimMissing},
		{"wrong issuer", sign(t, jwt.SigningMethodHS256, hs, "", valid(jwt.MapClaims{"iss": "https://evil.example"})), jwt.ErrTokenInvalidIssuer},
		{"no issuer", sign(t, jwt.SigningMethodHS256, hs, "", valid(jwt.MapClaims{"iss": nil})), jwt.ErrTokenRequiredClaimMissing},
		{"wrong audience", sign(t, jwt.SigningMethodHS256, hs, "", valid(jwt.MapClaims{"aud": "client-2"})), jwt.ErrTokenInvalidAudience},
		{"wrong audience, right client_id", sign(t, jwt.SigningMethodHS256, hs, "", valid(jwt.MapClaims{"aud": "client-2", "client_id": testAudience})), jwt.ErrTokenInvalidAudience},
		{"no audience", sign(t, jwt.SigningMethodHS256, hs, "", valid(jwt.MapClaims{"aud": nil})), jwt.ErrTokenInvalidAudience},
		{"wrong client_id", sign(t, jwt.SigningMethodRS256, rsaA(), "rsa-a", valid(jwt.MapClaims{"aud": nil, "client_id": "client-2"})), jwt.ErrTokenInvalidAudience},
		{"no sub", sign(t, jwt.SigningMethodHS256, hs, "", valid(jwt.MapClaims{"sub": nil})), errAny},
		{"empty sub", sign(t, jwt.SigningMethodHS256, hs, "", valid(jwt.MapClaims{"sub": ""})), errAny},
		{"numeric sub", sign(t, jwt.SigningMethodHS256, hs, "", valid(jwt.MapClaims{"sub": 42})), errAny},

		{"wrong HS256 secret", sign(t, jwt.SigningMethodHS256, []byte(strings.Repeat("x", 40)), "", valid(nil)), jwt.ErrTokenSignatureInvalid},
		{"wrong RSA key", sign(t, jwt.SigningMethodRS256, rsaB(), "rsa-a", valid(nil)), jwt.ErrTokenSignatureInvalid},
		{"wrong EC key", sign(t, jwt.SigningMethodES256, ecB(), "ec-a", valid(nil)), jwt.ErrTokenSignatureInvalid},
		{"RS256 with no kid", sign(t, jwt.SigningMethodRS256, rsaA(), "", valid(nil)), jwt.ErrTokenUnverifiable},
		{"unknown kid", sign(t, jwt.SigningMethodRS256, rsaA(), "nope", valid(nil)), jwt.ErrTokenUnverifiable},

		{"alg none", noneToken(t, "", valid(nil)), jwt.ErrTokenSignatureInvalid},
		{"alg none with kid", noneToken(t, "rsa-a", valid(nil)), jwt.ErrTokenSignatureInvalid},
		{"HS256 keyed with RSA PEM", sign(t, jwt.SigningMethodHS256, pemPub, "rsa-a", valid(nil)), jwt.ErrTokenSignatureInvalid},
		{"HS256 keyed with RSA DER", sign(t, jwt.SigningMethodHS256, derPub, "rsa-a", valid(nil)), jwt.ErrTokenSignatureInvalid},
		{"RS256 token on an EC kid", sign(t, jwt.SigningMethodRS256, rsaA(), "ec-a", valid(nil)), jwt.ErrTokenUnverifiable},
		{"ES256 token on an RSA kid", sign(t, jwt.SigningMethodES256, ecA(), "rsa-a", valid(nil)), jwt.ErrTokenUnverifiable},
		// golang-jwt alone would verify PS256 and RS512 with the very same RSA key.
		{"PS256 by the right RSA key", sign(t, jwt.SigningMethodPS256, rsaA(), "rsa-a", valid(nil)), jwt.ErrTokenSignatureInvalid},
		{"RS512 by the right RSA key", sign(t, jwt.SigningMethodRS512, rsaA(), "rsa-a", valid(nil)), jwt.ErrTokenSignatureInvalid},
		{"HS512 with the secret", sign(t, jwt.SigningMethodHS512, hs, "", valid(nil)), jwt.ErrTokenSignatureInvalid},
		{"key published for PS256", sign(t, jwt.SigningMethodRS256, rsaC(), "rsa-ps", valid(nil)), jwt.ErrTokenUnverifiable},

		{"empty", "", jwt.ErrTokenMalformed},
		{"garbage", "garbage", jwt.ErrTokenMalformed},
		{"two segments", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0", jwt.ErrTokenMalformed},
		{"four segments", sign(t, jwt.SigningMethodHS256, hs, "", valid(nil)) + ".x", jwt.ErrTokenMalformed},
		{"bad base64", "e$$$.e###.e!!!", jwt.ErrTokenMalformed},
		{"header not JSON", b64("not json") + "." + b64(`{"sub":"x"}`) + ".c2ln", jwt.ErrTokenMalformed},
		{"padded base64", padded(sign(t, jwt.SigningMethodHS256, hs, "", valid(nil))), jwt.ErrTokenMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			claims, err := v.Verify(context.Background(), tc.token)
			switch {
			case tc.wantErr == nil:
				if err != nil {
					t.Fatalf("got error %v, want a valid token", err)
				}
				if got := claims["sub"]; got != "user-1" {
					t.Errorf("got sub %v, want user-1", got)
				}
			case err == nil:
				t.Fatalf("got claims %v, want an error", claims)
			case tc.wantErr != errAny && !errors.Is(err, tc.wantErr):
				t.Errorf("got error %v, want %v", err, tc.wantErr)
			}
		})
	}
}

// errAny marks a case that must fail for a reason the test does not pin.
var errAny = errors.New("any error")

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// noneToken is an unsigned token, as an attacker would write it by hand.
func noneToken(t *testing.T, kid string, claims jwt.MapClaims) string {
	tok := jwt.NewWithClaims(jwt.SigningMethodNone, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// padded re-encodes the payload with '=' padding: JWS forbids it.
func padded(tok string) string {
	parts := strings.Split(tok, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	parts[1] = base64.URLEncoding.EncodeToString(append(payload, ' ', ' '))
	return strings.Join(parts, ".")
}

func TestVerifier_Verify_numbersKeepDigits(t *testing.T) {
	v, _, _ := newTestVerifier(t)
	tok := sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", claimsAt(t0, nil))
	// Forge nothing: mint the payload by hand so the big number's digits are
	// exactly what the issuer wrote.
	header, _, _ := strings.Cut(tok, ".")
	payload := fmt.Sprintf(`{"sub":"user-1","iss":%q,"aud":%q,"exp":%d,"n":12345678901234567890}`, testIssuer, testAudience, t0.Add(time.Hour).Unix())
	unsigned := header + "." + b64(payload)
	sig, err := jwt.SigningMethodHS256.Sign(unsigned, []byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	claims, err := v.Verify(context.Background(), unsigned+"."+base64.RawURLEncoding.EncodeToString(sig))
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(claims["n"]); got != "12345678901234567890" {
		t.Errorf("got n %s, want 12345678901234567890", got)
	}
}

func TestVerifier_Verify_noKeys(t *testing.T) {
	v, err := NewVerifier(Config{})
	if err != nil {
		t.Fatal(err)
	}
	tok := sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", claimsAt(time.Now(), nil))
	if _, err := v.Verify(context.Background(), tok); !errors.Is(err, ErrNoKeys) {
		t.Errorf("got %v, want ErrNoKeys", err)
	}
}

// An HS256-only verifier must refuse RS256 even when the token is perfect,
// and a JWKS-only one must refuse HS256 even when keyed with the RSA key.
func TestVerifier_Verify_onlyConfiguredAlgorithms(t *testing.T) {
	srv := newKeyServer(t, jwkOf(t, &rsaA().PublicKey, "rsa-a", jwkset.AlgRS256))
	hsOnly := must(NewVerifier(Config{HS256Secret: []byte(testSecret), Now: newClock().Now}))
	jwksOnly := must(NewVerifier(Config{JWKSURL: srv.URL, Now: newClock().Now}))
	rs := sign(t, jwt.SigningMethodRS256, rsaA(), "rsa-a", claimsAt(t0, nil))
	pemPub := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: must(x509.MarshalPKIXPublicKey(&rsaA().PublicKey))})
	confused := sign(t, jwt.SigningMethodHS256, pemPub, "rsa-a", claimsAt(t0, nil))

	if _, err := jwksOnly.Verify(context.Background(), rs); err != nil {
		t.Fatalf("JWKS verifier: %v (the control case must pass)", err)
	}
	if _, err := hsOnly.Verify(context.Background(), rs); err == nil {
		t.Error("HS256-only verifier accepted an RS256 token")
	}
	if _, err := jwksOnly.Verify(context.Background(), confused); err == nil {
		t.Error("JWKS-only verifier accepted an HS256 token keyed with the RSA public key")
	}
}

func TestNewVerifier_config(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"zero", Config{}, true},
		{"secret", Config{HS256Secret: []byte(testSecret)}, true},
		{"short secret", Config{HS256Secret: []byte("0123456789abcdef0123456789abcde")}, false},
		{"https", Config{JWKSURL: "https://cognito-idp.us-east-1.amazonaws.com/pool/.well-known/jwks.json"}, true},
		{"http loopback", Config{JWKSURL: "http://127.0.0.1:8080/jwks.json"}, true},
		{"http localhost", Config{JWKSURL: "http://localhost/jwks.json"}, true},
		{"http ipv6 loopback", Config{JWKSURL: "http://[::1]:9/jwks.json"}, true},
		{"http remote", Config{JWKSURL: "http://example.com/jwks.json"}, false},
		{"http lookalike", Config{JWKSURL: "http://localhost.example.com/jwks.json"}, false},
		{"no scheme", Config{JWKSURL: "example.com/jwks.json"}, false},
		{"https no host", Config{JWKSURL: "https:///jwks.json"}, false},
		{"bad URL", Config{JWKSURL: "https://%zz"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewVerifier(tc.cfg)
			if (err == nil) != tc.ok {
				t.Errorf("got error %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestConfigFromEnv(t *testing.T) {
	env := map[string]string{
		"WSBIND_AUTH_HS256_SECRET": testSecret,
		"WSBIND_AUTH_JWKS_URL":     "https://example.com/jwks.json",
		"WSBIND_AUTH_ISSUER":       testIssuer,
		"WSBIND_AUTH_AUDIENCE":     testAudience,
	}
	c := ConfigFromEnv(func(k string) string { return env[k] })
	if string(c.HS256Secret) != testSecret || c.JWKSURL != env["WSBIND_AUTH_JWKS_URL"] ||
		c.Issuer != testIssuer || c.Audience != testAudience {
		t.Errorf("got %+v, want every variable read", c)
	}
	empty := ConfigFromEnv(func(string) string { return "" })
	if empty.HS256Secret != nil || empty.JWKSURL != "" {
		t.Errorf("got %+v from an empty environment, want the zero Config", empty)
	}
}
