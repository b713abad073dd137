package resource

import (
	"fmt"
	"sort"
	"time"
)

// DefaultPageSize is channels-api's DEFAULT_PAGE_SIZE.
const DefaultPageSize = 25

// Settings are the application-wide defaults, channels-api's CHANNELS_API
// setting. The zero value gives channels-api's defaults.
type Settings struct {
	// PageSize is DEFAULT_PAGE_SIZE, the objects per list page. 0 means 25.
	PageSize int
	// Permissions is DEFAULT_PERMISSION_CLASSES, used by bindings that list
	// none of their own. nil means AllowAny.
	Permissions []Permission
	// NewID makes object ids for bindings without their own generator.
	// nil means NewID, time-ordered ULID-style ids.
	NewID func(now time.Time) string
}

func (s Settings) withDefaults() Settings {
	if s.PageSize <= 0 {
		s.PageSize = DefaultPageSize
	}
	if s.Permissions == nil {
		s.Permissions = []Permission{AllowAny}
	}
	if s.NewID == nil {
		s.NewID = NewID
	}
	return s
}

// Registry is an application: its settings and its bindings by stream. It is
// a value, not a global; build one in main and hand it to the router.
type Registry struct {
	settings Settings
	handlers map[string]*Handler
}

// NewRegistry returns an empty registry with the settings.
func NewRegistry(s Settings) *Registry {
	return &Registry{settings: s.withDefaults(), handlers: map[string]*Handler{}}
}

// Register adds bindings. A stream registered twice is an error.
func (r *Registry) Register(hs ...*Handler) error {
	for _, h := range hs {
		if h == nil {
			return fmt.Errorf("register: nil handler")
		}
		if _, dup := r.handlers[h.stream]; dup {
			return fmt.Errorf("register: stream %q registered twice", h.stream)
		}
		r.handlers[h.stream] = h
	}
	return nil
}

// MustRegister is Register for main: it panics on error.
func (r *Registry) MustRegister(hs ...*Handler) *Registry {
	if err := r.Register(hs...); err != nil {
		panic("wsbind: " + err.Error())
	}
	return r
}

// Lookup returns the binding of the stream, or nil.
func (r *Registry) Lookup(stream string) *Handler { return r.handlers[stream] }

// Settings returns the settings in force, defaults filled in.
func (r *Registry) Settings() Settings { return r.settings }

// Streams lists the registered streams in order.
func (r *Registry) Streams() []string {
	out := make([]string, 0, len(r.handlers))
	for s := range r.handlers {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}
