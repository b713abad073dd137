package apierr

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

func TestCodeOf(t *testing.T) {
	tests := []struct {
		err  error
		want Code
	}{
		{NotFound(), CodeNotFound},
		{fmt.Errorf("wrapped: %w", PermissionDenied()), CodePermissionDenied},
		{errors.New("plain"), CodeInternal},
		{Internal(errors.New("x")), CodeInternal},
	}
	for _, tt := range tests {
		if got := CodeOf(tt.err); got != tt.want {
			t.Errorf("CodeOf(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
	if got := Internal(errors.New("secret")).Messages(); !slices.Equal(got, []string{"Internal Server Error"}) {
		t.Errorf("internal messages = %q, want only the public text", got)
	}
	if got := Invalid().Messages(); len(got) == 0 {
		t.Error("Invalid() has no message; a failed reply must carry one")
	}
}
