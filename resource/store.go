package resource

import (
	"context"
	"errors"
)

// Item is one stored object: its id, the version that every write
// increments, and its stored form, a JSON object with one member per field
// (write-only fields included, id included).
type Item struct {
	ID      string
	Version int64
	Data    []byte
}

// Subscription asks for the pushes of one topic on one connection. User is
// the connection's user, kept so that fan-out can check permissions without
// looking the connection up.
type Subscription struct {
	Topic  string
	ConnID string
	User   User
}

// Store errors. Implementations return them (possibly wrapped) so bindings
// can tell the expected outcomes from failures.
var (
	ErrNotFound = errors.New("item not found")
	ErrExists   = errors.New("item exists")
	ErrConflict = errors.New("item version changed")
)

// Store is what a binding runs against. In AWS it is DynamoDB behind the
// host; in tests it is memory. Every method is one request to the database.
type Store interface {
	// Get returns the item, or ErrNotFound.
	Get(ctx context.Context, stream, id string) (Item, error)
	// Create stores a new item with version 1, or returns ErrExists.
	Create(ctx context.Context, stream string, item Item) error
	// Replace stores item.Data with version item.Version+1 only when the
	// stored version is item.Version: ErrConflict when it is not, ErrNotFound
	// when the item is gone. It returns the new version.
	Replace(ctx context.Context, stream string, item Item) (int64, error)
	// Delete removes the item and returns what was stored, or ErrNotFound.
	Delete(ctx context.Context, stream, id string) (Item, error)
	// List returns at most limit items in id order, skipping the first offset.
	List(ctx context.Context, stream string, offset, limit int) ([]Item, error)
	// Count returns how many items the stream holds.
	Count(ctx context.Context, stream string) (int, error)
	// Subscribe records a subscription. Subscribing twice is not an error.
	Subscribe(ctx context.Context, sub Subscription) error
}
