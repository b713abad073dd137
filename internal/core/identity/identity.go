// Package identity is who a connection belongs to: the verified user, its
// roles and its token's other claims. resource re-exports User for binding
// authors; the backends and the ABI store it. It is guest code: the
// standard library only.
package identity

import (
	"slices"
	"strconv"
)

// User is who a connection belongs to. The zero User is anonymous.
type User struct {
	// ID is the verified token's subject ("sub"); "" for anonymous.
	ID string
	// Roles are the token's groups, roles, permissions and scopes, in the
	// order the token lists them (see docs/bindings.md, "The user").
	Roles []string
	// Claims are the token's other scalar claims, as text.
	Claims map[string]string
}

// IsAuthenticated reports whether the connection carried a verified token.
func (u User) IsAuthenticated() bool { return u.ID != "" }

// HasRole reports whether the user holds any of the roles.
func (u User) HasRole(roles ...string) bool {
	for _, r := range roles {
		if slices.Contains(u.Roles, r) {
			return true
		}
	}
	return false
}

// Expires is when the user's token expires (its "exp" claim, Unix
// seconds), and false when it carries none.
func (u User) Expires() (int64, bool) {
	s, ok := u.Claims["exp"]
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, false
	}
	return int64(f), true
}
