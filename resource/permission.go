package resource

// User is who a connection belongs to. The zero User is anonymous. ID is the
// verified token's subject; Claims carries what the authorizer passed along.
type User struct {
	ID     string
	Claims map[string]string
}

// IsAuthenticated reports whether the connection carried a verified token.
func (u User) IsAuthenticated() bool { return u.ID != "" }

// Permission decides whether user may run action (its wire name, e.g.
// "create" or "publish") on pk ("" for list-level actions). It is channels-api's
// has_permission(user, action, pk).
type Permission interface {
	HasPermission(user User, action, pk string) bool
}

// PermissionFunc adapts a function to Permission.
type PermissionFunc func(user User, action, pk string) bool

// HasPermission calls f.
func (f PermissionFunc) HasPermission(user User, action, pk string) bool {
	return f(user, action, pk)
}

var (
	// AllowAny lets everyone do everything. It is the default.
	AllowAny Permission = PermissionFunc(func(User, string, string) bool { return true })
	// IsAuthenticated lets only connections with a verified user through.
	IsAuthenticated Permission = PermissionFunc(func(u User, _, _ string) bool { return u.IsAuthenticated() })
)

// allowed reports whether every permission allows.
func allowed(perms []Permission, user User, action, pk string) bool {
	for _, p := range perms {
		if !p.HasPermission(user, action, pk) {
			return false
		}
	}
	return true
}
