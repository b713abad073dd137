package auth

import (
	"bytes"
	"encoding/json"
	"strings"
)

// RolesContextKey is the authorizer context key of the user's roles: one
// string, the JSON array text of the roles (["admin","editor"]), since
// API Gateway accepts only strings, numbers and booleans as context
// values. It is absent when the token carries no role. The key is
// reserved: a token claim of that name is never copied into the context.
const RolesContextKey = "wsbind_roles"

// roleClaims hold roles as a JSON array of strings or as one string,
// which is one role: Cognito's groups, then the usual names of other
// identity providers.
var roleClaims = []string{"cognito:groups", "groups", "roles", "permissions"}

// scopeClaims hold OAuth scopes: space-separated text (RFC 8693's scope,
// Azure's scp) or an array of strings (Okta's scp).
var scopeClaims = []string{"scope", "scp"}

// rolesOf are the roles a token's claims grant, in this order: the
// members of cognito:groups, groups, roles and permissions, then of
// scope and scp; each listed once, where it first appears. Values that
// are not strings, and empty strings, are ignored.
func rolesOf(claims map[string]any) []string {
	var roles []string
	seen := map[string]bool{}
	add := func(r string) {
		if r != "" && !seen[r] {
			seen[r] = true
			roles = append(roles, r)
		}
	}
	each := func(v any, split bool) {
		switch v := v.(type) {
		case string:
			if !split {
				add(v)
				return
			}
			for _, r := range strings.Fields(v) {
				add(r)
			}
		case []any: // as encoding/json decodes an array
			for _, e := range v {
				if s, ok := e.(string); ok {
					add(s)
				}
			}
		case []string:
			for _, s := range v {
				add(s)
			}
		}
	}
	for _, k := range roleClaims {
		each(claims[k], false)
	}
	for _, k := range scopeClaims {
		each(claims[k], true)
	}
	return roles
}

// rolesText is the context value of roles: their JSON array text, with
// <, > and & left as they are (the value is data, never HTML).
func rolesText(roles []string) (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(roles); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}
