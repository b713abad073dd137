// Package bindings is the team board's application: its bindings in the
// one registry the route and fan-out functions share.
package bindings

import (
	"example.com/teamboard/bindings/cards"
	"github.com/wsbind/wsbind/resource"
)

// Registry returns the application's bindings under the settings.
func Registry(s resource.Settings) *resource.Registry {
	return resource.NewRegistry(s).MustRegister(cards.Binding)
}
