package lambdahost

import (
	"encoding/json"
	"strconv"

	"github.com/wsbind/wsbind/resource"
)

// userOf reads the connection's user from requestContext.authorizer: the
// context a REQUEST authorizer returned on $connect, which API Gateway
// delivers with every later event of the connection. The user's id is
// "sub", else "principalId"; every other member whose value is a string,
// a number (its text, as sent) or a boolean is a claim. Without an
// authorizer or an id the user is anonymous: the zero User.
func userOf(authorizer any) resource.User {
	m, ok := authorizer.(map[string]any)
	if !ok {
		return resource.User{}
	}
	var u resource.User
	idKey := ""
	for _, k := range [...]string{"sub", "principalId"} {
		if s, ok := scalar(m[k]); ok && s != "" {
			u.ID, idKey = s, k
			break
		}
	}
	if idKey == "" {
		return resource.User{}
	}
	for k, v := range m {
		if k == idKey {
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
