package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/wsbind/wsbind/local/emulator"
)

// tokenCmd prints an HS256 token for a user, signed with
// WSBIND_JWT_SECRET or the emulator's development secret.
func tokenCmd(_ context.Context, env Env, args []string) error {
	fs := flags("token")
	roles := fs.String("roles", "", "the token's `groups`, comma-separated (admin,editor): the user's roles")
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the token is valid")
	pos, err := parse(env, fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want one USER, the token's sub (wsbind token alice)")
	}
	secret, _ := emulator.SecretFromEnv(env.Getenv)
	var groups []string
	for _, r := range strings.Split(*roles, ",") {
		if r = strings.TrimSpace(r); r != "" {
			groups = append(groups, r)
		}
	}
	t, err := emulator.Token(secret, pos[0], *ttl, groups...)
	if err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, t)
	return nil
}
