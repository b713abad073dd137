// Package bindings is the application: every binding it serves, in one
// registry that the functions and the emulator share.
package bindings

import (
	"github.com/wsbind/wsbind/bindings/notes"
	"github.com/wsbind/wsbind/bindings/questions"
	"github.com/wsbind/wsbind/resource"
)

// Registry returns the application's bindings under the settings.
func Registry(s resource.Settings) *resource.Registry {
	return resource.NewRegistry(s).MustRegister(questions.Binding, notes.Binding)
}
