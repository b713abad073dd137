package lambdahost

import (
	"encoding/json"
	"strconv"

	"github.com/wsbind/wsbind/resource"
)

// userOf reads the connection's user from requestContext.authorizer: the
// context a REQUEST authorizer returned on $connect, which API Gateway
// delivers with every later event of the connection. The user's id is
// "sub", which the authorizer (internal/auth) sets only for a verified
// token; every other member whose value is a string, a number (its text,
// as sent) or a boolean is a claim, except API Gateway's own principalId
// and integrationLatency. principalId is never the id: API Gateway
// requires one on every Allow, anonymous connections included. Without
// an authorizer or a sub the user is anonymous: the zero User.
func userOf(authorizer any) resource.User {
	m, ok := authorizer.(map[string]any)
	if !ok {
		return resource.User{}
	}
	id, ok := scalar(m["sub"])
	if !ok || id == "" {
		return resource.User{}
	}
	u := resource.User{ID: id}
	for k, v := range m {
		switch k {
		case "sub", "principalId", "integrationLatency":
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
