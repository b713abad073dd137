package lambdainit

import (
	"slices"
	"testing"
)

// Guests see the application's settings and nothing of the host's: not
// its AWS credentials, not where the data lives, not the auth secret.
func TestGuestEnv(t *testing.T) {
	e := Process{Vars: []string{
		"WSBIND_PAGE_SIZE=10",
		"WSBIND_FEATURE=on",
		"WSBIND_BACKEND=dynamodb",
		"WSBIND_TABLE_ITEMS=items",
		"WSBIND_MANAGEMENT_ENDPOINT=https://example.execute-api.us-east-1.amazonaws.com/prod",
		"WSBIND_AUTH_HS256_SECRET=s3cret",
		"WSBIND_AUTH_JWKS_URL=https://example.com/jwks.json",
		"AWS_SECRET_ACCESS_KEY=x",
		"_HANDLER=route",
		"WSBIND_BACKENDS_NOTE=an application setting that merely starts like a host one",
	}}
	got := e.guestEnv()
	want := []string{"WSBIND_PAGE_SIZE=10", "WSBIND_FEATURE=on", "WSBIND_BACKENDS_NOTE=an application setting that merely starts like a host one"}
	if !slices.Equal(got, want) {
		t.Errorf("guest environment:\ngot  %q\nwant %q", got, want)
	}
}
