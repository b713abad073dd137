package emulator_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/wsbind/wsbind/local/emulator"
	"github.com/wsbind/wsbind/local/emulatortest"
)

// freeAddr returns an address on 127.0.0.1 that nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestStart_Errors: every bad setting is one clear error, never a panic,
// and what had started is stopped again (its ports are free after).
func TestStart_Errors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tc := range []struct {
		name string
		tune func(*emulator.Config)
		want []string // the message holds each
	}{
		{"short secret", func(c *emulator.Config) { c.JWTSecret = []byte("short") }, []string{"WSBIND_JWT_SECRET", "32"}},
		{"address in use", func(c *emulator.Config) { c.Addr = busy.Addr().String() }, []string{"WSBIND_ADDR=" + busy.Addr().String(), "address already in use"}},
		{"missing guests", func(c *emulator.Config) { c.GuestDir = t.TempDir() }, []string{".wasm", "make run and wsbind run build the guests"}},
		{"bad replay limit", func(c *emulator.Config) { c.GuestEnv = append(c.GuestEnv, "WSBIND_REPLAY_LIMIT=lots") }, []string{`WSBIND_REPLAY_LIMIT="lots"`, "positive number"}},
		{"bad history retention", func(c *emulator.Config) { c.GuestEnv = append(c.GuestEnv, "WSBIND_HISTORY_RETENTION=-1h") }, []string{`WSBIND_HISTORY_RETENTION="-1h"`, "positive duration"}},
		{"bad template", func(c *emulator.Config) { c.Template = []byte("Resources: [not, a, map") }, []string{"template:"}},
		{"template without tables", func(c *emulator.Config) { c.Template = []byte("Resources: {}\n") }, []string{"template:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := emulatortest.Config(t)
			cfg.DynamoDBAddr = freeAddr(t)
			gw := freeAddr(t)
			cfg.Addr = gw
			tc.tune(&cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			em, err := emulator.Start(ctx, cfg)
			if err == nil {
				em.Close(ctx)
				t.Fatal("started; want an error")
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("message spans lines: %q", msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q lacks %q", msg, w)
				}
			}
			// Nothing is left listening.
			for _, addr := range []string{cfg.DynamoDBAddr, gw} {
				if addr == busy.Addr().String() {
					continue
				}
				ln, err := net.Listen("tcp", addr)
				if err != nil {
					t.Errorf("after the failed start, %s is still taken: %v", addr, err)
					continue
				}
				ln.Close()
			}
		})
	}
}
