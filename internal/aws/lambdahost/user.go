package lambdahost

import (
	"encoding/json"
	"slices"
	"strconv"

	"github.com/wsbind/wsbind/internal/aws/auth"
	"github.com/wsbind/wsbind/internal/core/identity"
)

// userOf reads the connection's user from requestContext.authorizer: the
// context a REQUEST authorizer returned on $connect, which API Gateway
// delivers with every later event of the connection. The user's id is
// "sub", which the authorizer (internal/aws/auth) sets only for a verified
// token; its roles are auth.RolesContextKey, a JSON array of strings in
// one string (see rolesOf); every other member whose value is a string, a
// number (its text, as sent) or a boolean is a claim ("exp" among them),
// except API Gateway's own principalId and integrationLatency.
// principalId is never the id: API Gateway requires one on every Allow,
// anonymous connections included. Without an authorizer or a sub the user
// is anonymous: the zero User.
func userOf(authorizer any) identity.User {
	m, ok := authorizer.(map[string]any)
	if !ok {
		return identity.User{}
	}
	id, ok := scalar(m["sub"])
	if !ok || id == "" {
		return identity.User{}
	}
	u := identity.User{ID: id, Roles: rolesOf(m[auth.RolesContextKey])}
	for k, v := range m {
		switch k {
		case "sub", "principalId", "integrationLatency", auth.RolesContextKey:
			continue
		}
		if s, ok := scalar(v); ok {
			if u.Claims == nil {
				u.Claims = make(map[string]string, len(m)-1)
			}
			u.Claims[k] = s
		}
	}
	return u
}

// rolesOf reads the roles the authorizer wrote: the text of a JSON array
// of strings, or that array already decoded. Anything else, or an array
// holding anything but strings, is malformed and gives no roles; so does
// an empty array.
func rolesOf(v any) []string {
	if text, ok := v.(string); ok {
		v = nil
		if json.Unmarshal([]byte(text), &v) != nil {
			return nil
		}
	}
	var roles []string
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil
			}
			roles = append(roles, s)
		}
	case []string:
		roles = slices.Clone(v)
	}
	if len(roles) == 0 {
		return nil
	}
	return roles
}

// scalar is the string form of a string, number or boolean decoded by
// encoding/json (with UseNumber, so numbers keep their digits).
func scalar(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	case float64: // decoded without UseNumber
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(v), true
	}
	return "", false
}
