package resource

import "github.com/wsbind/wsbind/internal/core/identity"

// User is who a connection belongs to: ID is the verified token's subject
// ("" for anonymous), Roles its groups, roles and scopes (docs/bindings.md, "The user"),
// Claims its other scalar claims. HasRole and IsAuthenticated read it.
type User = identity.User

// Permission decides whether user may run action (its wire name, e.g.
// "create" or "publish") on pk ("" for list-level actions). It is
// channels-api's has_permission(user, action, pk), checked before any
// object is read.
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

// ObjectPermission decides whether user may run action on obj: Django
// REST framework's has_object_permission. A refusal answers 401
// ["Permission Denied"] to a request, and leaves the object out of the
// user's pushes (checked there with action "retrieve").
type ObjectPermission[T any] func(user User, action string, obj *T) bool

// Scope confines every caller to a part of a binding's objects: what it
// lists, counts, retrieves, changes and is pushed. An object outside the
// caller's scope does not exist for it (404 "Not found."). On DynamoDB a
// scope's objects share a partition, so a scoped list reads nothing else.
type Scope[T any] struct {
	// Key points at the object's scope key (its owner, say). A create
	// fills it with the caller's key when empty; it never changes after.
	Key func(obj *T) *string
	// Of is the caller's scope key; all reports a caller that sees every
	// scope (an administrator), which still creates in its own key. An
	// empty key without all sees nothing and may create nothing.
	Of func(user User) (key string, all bool)
}

// OwnedBy scopes objects to the user who created them: the owner field
// holds the creator's id, and users holding any of seeAll's roles see
// every user's objects. Anonymous users see none.
func OwnedBy[T any](owner func(obj *T) *string, seeAll ...string) Scope[T] {
	seeAll = append([]string(nil), seeAll...)
	return Scope[T]{
		Key: owner,
		Of: func(u User) (string, bool) {
			if u.ID == "" {
				return "", false
			}
			return u.ID, u.HasRole(seeAll...)
		},
	}
}
