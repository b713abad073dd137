package emulator

import (
	"errors"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// DevSecret is the HS256 secret of a development emulator, used when
// WSBIND_JWT_SECRET is unset. It is public: tokens made with it prove
// nothing outside this machine.
const DevSecret = "wsbind-local-development-secret-do-not-deploy"

// SecretFromEnv returns WSBIND_JWT_SECRET, or DevSecret and true when it
// is unset.
func SecretFromEnv(getenv func(string) string) (secret []byte, dev bool) {
	if s := getenv("WSBIND_JWT_SECRET"); s != "" {
		return []byte(s), false
	}
	return []byte(DevSecret), true
}

// Token returns an HS256 token for user (its sub), valid for ttl, whose
// "groups" claim holds the roles, if any: what a client presents as
// ?token= to the emulator.
func Token(secret []byte, user string, ttl time.Duration, roles ...string) (string, error) {
	if user == "" {
		return "", errors.New("token: empty user")
	}
	now := time.Now()
	claims := jwt.MapClaims{
		"sub": user,
		"iat": now.Unix(),
		"exp": now.Add(ttl).Unix(),
	}
	if len(roles) > 0 {
		claims["groups"] = roles
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
}
