package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

func jwksVerifier(t *testing.T, srv *keyServer, clock *fakeClock) *Verifier {
	t.Helper()
	v, err := NewVerifier(Config{
		JWKSURL:            srv.URL,
		Now:                clock.Now,
		RefreshInterval:    time.Hour,
		MinRefreshInterval: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func verifies(t *testing.T, v *Verifier, tok string) error {
	t.Helper()
	_, err := v.Verify(context.Background(), tok)
	return err
}

func TestJWKS_rotation(t *testing.T) {
	clock := newClock()
	keyA := jwkOf(t, &rsaA().PublicKey, "kid-a", jwkset.AlgRS256)
	keyB := jwkOf(t, &rsaB().PublicKey, "kid-b", jwkset.AlgRS256)
	srv := newKeyServer(t, keyA)
	v := jwksVerifier(t, srv, clock)
	tokA := func() string { return sign(t, jwt.SigningMethodRS256, rsaA(), "kid-a", claimsAt(clock.Now(), nil)) }
	tokB := func() string { return sign(t, jwt.SigningMethodRS256, rsaB(), "kid-b", claimsAt(clock.Now(), nil)) }

	if err := verifies(t, v, tokA()); err != nil {
		t.Fatalf("key A before rotation: %v", err)
	}
	if err := verifies(t, v, tokB()); err == nil {
		t.Fatal("key B verified before the server published it")
	}
	if got := srv.fetches.Load(); got != 1 {
		t.Fatalf("got %d fetches, want 1 (the unknown kid right after the first fetch is rate limited)", got)
	}

	// The issuer publishes B next to A, then signs with B.
	srv.setKeys(t, keyA, keyB)
	clock.Advance(time.Minute)
	if err := verifies(t, v, tokB()); err != nil {
		t.Fatalf("key B after it was published: %v", err)
	}
	if err := verifies(t, v, tokA()); err != nil {
		t.Fatalf("key A while still published: %v", err)
	}
	if got := srv.fetches.Load(); got != 2 {
		t.Fatalf("got %d fetches, want 2", got)
	}

	// A is withdrawn; the cache notices at the next periodic refresh.
	srv.setKeys(t, keyB)
	clock.Advance(59 * time.Minute)
	if err := verifies(t, v, tokA()); err != nil {
		t.Fatalf("key A before the cache is stale: %v", err)
	}
	clock.Advance(time.Minute)
	if err := verifies(t, v, tokA()); err == nil {
		t.Fatal("key A verified after it was withdrawn and the set refreshed")
	}
	if err := verifies(t, v, tokB()); err != nil {
		t.Fatalf("key B after the refresh: %v", err)
	}
	if got := srv.fetches.Load(); got != 3 {
		t.Fatalf("got %d fetches, want 3", got)
	}
}

// A rotation done in one step (A replaced by B) works through the
// unknown-kid refresh alone, and A fails from then on.
func TestJWKS_rotationInOneStep(t *testing.T) {
	clock := newClock()
	srv := newKeyServer(t, jwkOf(t, &ecA().PublicKey, "ec-1", jwkset.AlgES256))
	v := jwksVerifier(t, srv, clock)
	if err := verifies(t, v, sign(t, jwt.SigningMethodES256, ecA(), "ec-1", claimsAt(t0, nil))); err != nil {
		t.Fatal(err)
	}
	srv.setKeys(t, jwkOf(t, &ecB().PublicKey, "ec-2", jwkset.AlgES256))
	clock.Advance(2 * time.Minute)
	now := clock.Now()
	if err := verifies(t, v, sign(t, jwt.SigningMethodES256, ecB(), "ec-2", claimsAt(now, nil))); err != nil {
		t.Fatalf("new key after rotation: %v", err)
	}
	if err := verifies(t, v, sign(t, jwt.SigningMethodES256, ecA(), "ec-1", claimsAt(now, nil))); err == nil {
		t.Fatal("removed key still verifies")
	}
}

func TestJWKS_unknownKidsAreRateLimited(t *testing.T) {
	clock := newClock()
	srv := newKeyServer(t, jwkOf(t, &ecA().PublicKey, "ec-1", jwkset.AlgES256))
	v := jwksVerifier(t, srv, clock)
	good := sign(t, jwt.SigningMethodES256, ecA(), "ec-1", claimsAt(t0, nil))

	hammer := func(round int) {
		var wg sync.WaitGroup
		for i := range 50 {
			wg.Go(func() {
				tok := sign(t, jwt.SigningMethodES256, ecB(), fmt.Sprintf("garbage-%d-%d", round, i), claimsAt(t0, nil))
				if err := verifies(t, v, tok); err == nil {
					t.Errorf("token with unknown kid %d verified", i)
				}
			})
			wg.Go(func() {
				if err := verifies(t, v, good); err != nil {
					t.Errorf("good token during the hammering: %v", err)
				}
			})
		}
		wg.Wait()
	}
	hammer(1)
	if got := srv.fetches.Load(); got != 1 {
		t.Fatalf("got %d fetches after 50 unknown kids, want 1", got)
	}
	clock.Advance(30 * time.Second)
	hammer(2)
	if got := srv.fetches.Load(); got != 1 {
		t.Fatalf("got %d fetches within the minimum interval, want 1", got)
	}
	clock.Advance(30 * time.Second)
	hammer(3)
	if got := srv.fetches.Load(); got != 2 {
		t.Fatalf("got %d fetches once the interval passed, want 2", got)
	}
}

// A refresh that fails keeps the keys already known, and is retried no more
// often than the minimum interval.
func TestJWKS_failedRefreshKeepsKeys(t *testing.T) {
	clock := newClock()
	srv := newKeyServer(t, jwkOf(t, &rsaA().PublicKey, "kid-a", ""))
	v := jwksVerifier(t, srv, clock)
	tok := func() string { return sign(t, jwt.SigningMethodRS256, rsaA(), "kid-a", claimsAt(clock.Now(), nil)) }
	if err := verifies(t, v, tok()); err != nil {
		t.Fatal(err)
	}
	for _, body := range []struct {
		status int
		body   string
	}{
		{http.StatusInternalServerError, `{"keys":[]}`},
		{http.StatusOK, `<html>`},
		{http.StatusOK, `{"no_keys":1}`},
	} {
		srv.setBody(body.status, []byte(body.body))
		clock.Advance(time.Hour) // stale: the next verification refreshes
		before := srv.fetches.Load()
		for range 5 {
			if err := verifies(t, v, tok()); err != nil {
				t.Fatalf("after a failed refresh (%d %s): %v", body.status, body.body, err)
			}
		}
		if got := srv.fetches.Load() - before; got != 1 {
			t.Fatalf("got %d fetches for 5 verifications, want 1", got)
		}
	}
	// A good answer with an empty set is the truth: the key is gone.
	srv.setBody(http.StatusOK, []byte(`{"keys":[]}`))
	clock.Advance(time.Hour)
	if err := verifies(t, v, tok()); err == nil {
		t.Fatal("key verified after the server published an empty set")
	}
}

func TestJWKS_fetchTimesOut(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	v, err := NewVerifier(Config{JWKSURL: srv.URL, HTTPTimeout: 50 * time.Millisecond, Now: newClock().Now})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = verifies(t, v, sign(t, jwt.SigningMethodRS256, rsaA(), "kid-a", claimsAt(t0, nil)))
	if err == nil {
		t.Fatal("verified with an unreachable key set")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("verification took %v, want about the 50ms timeout", d)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v, want a deadline error in the chain", err)
	}
}

func TestJWKS_responseTooLarge(t *testing.T) {
	srv := newKeyServer(t)
	key, _ := json.Marshal(jwkOf(t, &rsaA().PublicKey, "kid-a", jwkset.AlgRS256))
	srv.setBody(http.StatusOK, []byte(`{"keys":[`+string(key)+`],"pad":"`+strings.Repeat("x", maxJWKSBytes)+`"}`))
	v := jwksVerifier(t, srv, newClock())
	if err := verifies(t, v, sign(t, jwt.SigningMethodRS256, rsaA(), "kid-a", claimsAt(t0, nil))); err == nil {
		t.Fatal("verified with a key from an oversize key set")
	}
	// The same set without the padding is fine: the size is the reason.
	srv.setBody(http.StatusOK, []byte(`{"keys":[`+string(key)+`]}`))
	v = jwksVerifier(t, srv, newClock())
	if err := verifies(t, v, sign(t, jwt.SigningMethodRS256, rsaA(), "kid-a", claimsAt(t0, nil))); err != nil {
		t.Fatal(err)
	}
}

func TestParseJWKS(t *testing.T) {
	rsaPub, ecPub := &rsaA().PublicKey, &ecA().PublicKey
	rsaJWK := jwkOf(t, rsaPub, "rsa", jwkset.AlgRS256)
	ecJWK := jwkOf(t, ecPub, "ec", "")
	with := func(j jwkset.JWKMarshal, f func(*jwkset.JWKMarshal)) jwkset.JWKMarshal { f(&j); return j }
	weak := mustRSA(1024)

	set := []jwkset.JWKMarshal{
		rsaJWK,
		ecJWK,
		jwkOf(t, &rsaB().PublicKey, "rsa", jwkset.AlgRS256), // duplicate kid: the first wins
		with(rsaJWK, func(j *jwkset.JWKMarshal) { j.KID = "" }),
		with(rsaJWK, func(j *jwkset.JWKMarshal) { j.KID, j.USE = "enc", jwkset.UseEnc }),
		with(rsaJWK, func(j *jwkset.JWKMarshal) { j.KID, j.ALG = "rs512", jwkset.AlgRS512 }),
		with(rsaJWK, func(j *jwkset.JWKMarshal) { j.KID, j.KEYOPS = "sign-only", []jwkset.KEYOPS{jwkset.KeyOpsSign} }),
		with(rsaJWK, func(j *jwkset.JWKMarshal) { j.KID, j.KEYOPS = "verify", []jwkset.KEYOPS{jwkset.KeyOpsVerify} }),
		with(rsaJWK, func(j *jwkset.JWKMarshal) { j.KID, j.N = "bad-n", "!!" }),
		with(rsaJWK, func(j *jwkset.JWKMarshal) { j.KID, j.E = "even-e", "AQAC" }),
		jwkOf(t, &weak.PublicKey, "weak", jwkset.AlgRS256),
		jwkOf(t, &ec384().PublicKey, "p384", ""),
		with(ecJWK, func(j *jwkset.JWKMarshal) { j.KID, j.ALG = "es384", jwkset.AlgES384 }),
		with(ecJWK, func(j *jwkset.JWKMarshal) { j.KID, j.Y = "off-curve", j.X }),
		{KTY: jwkset.KtyOct, KID: "oct", K: b64(testSecret), ALG: jwkset.AlgHS256},
		{KTY: "OKP", KID: "ed", CRV: "Ed25519", X: b64(strings.Repeat("k", 32))},
	}
	data, _ := json.Marshal(map[string]any{"keys": set})
	keys, err := parseJWKS(data)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"rsa": "RS256", "ec": "ES256", "verify": "RS256"}
	if len(keys) != len(want) {
		names := make([]string, 0, len(keys))
		for k := range keys {
			names = append(names, k)
		}
		t.Fatalf("got keys %v, want %v", names, want)
	}
	for kid, alg := range want {
		if keys[kid].alg != alg {
			t.Errorf("key %q: got alg %q, want %q", kid, keys[kid].alg, alg)
		}
	}
	if got, ok := keys["rsa"].key.(*rsa.PublicKey); !ok || !got.Equal(rsaPub) {
		t.Errorf("key rsa: got %v, want rsaA's public key", keys["rsa"].key)
	}
	if got, ok := keys["ec"].key.(*ecdsa.PublicKey); !ok || !got.Equal(ecPub) {
		t.Errorf("key ec: got %v, want ecA's public key", keys["ec"].key)
	}

	for _, bad := range []string{``, `[]`, `{"keys":{}}`, `{}`, `{"keys":null}`} {
		if _, err := parseJWKS([]byte(bad)); err == nil {
			t.Errorf("parseJWKS(%q): got no error, want one", bad)
		}
	}
}

func FuzzParseJWKS(f *testing.F) {
	key, _ := json.Marshal(jwkOf(f, &ecA().PublicKey, "ec", jwkset.AlgES256))
	f.Add([]byte(`{"keys":[` + string(key) + `]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","kid":"k","n":"AQAB","e":"AQAB"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","kid":"k","crv":"P-256","x":"","y":""}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := parseJWKS(data)
		if err != nil {
			return
		}
		for kid, k := range keys {
			switch pub := k.key.(type) {
			case *rsa.PublicKey:
				if k.alg != "RS256" || pub.N.BitLen() < minRSABits {
					t.Errorf("key %q: RSA key of %d bits pinned to %s", kid, pub.N.BitLen(), k.alg)
				}
			case *ecdsa.PublicKey:
				if k.alg != "ES256" || pub.Curve.Params().Name != "P-256" {
					t.Errorf("key %q: EC key on %s pinned to %s", kid, pub.Curve.Params().Name, k.alg)
				}
			default:
				t.Errorf("key %q: unexpected type %T", kid, pub)
			}
		}
	})
}
