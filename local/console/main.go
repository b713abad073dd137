// Command console serves the application's bindings on standard input and
// output, with the in-memory store: type a frame, read its reply and the
// pushes it causes. It is the local entry point until the emulator's
// WebSocket gateway lands.
//
//	{"stream":"questions","payload":{"action":"create","data":{"question_text":"Why?"}}}
//	:conn bob bob        switch to connection "bob", user "bob" (user optional)
package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/wsbind/wsbind/bindings"
	"github.com/wsbind/wsbind/internal/backend/memory"
	"github.com/wsbind/wsbind/internal/router"
	"github.com/wsbind/wsbind/resource"
)

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "console:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer) error {
	store := memory.New()
	reg := bindings.Registry(resource.Settings{})
	r := router.New(router.Config{Registry: reg, Store: store})
	conn := router.Conn{ID: "console"}
	fmt.Fprintf(out, "wsbind console: streams %s. One frame per line; \":conn ID [USER]\" switches connection.\n", strings.Join(reg.Streams(), ", "))
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	ctx := context.Background()
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "":
			continue
		case strings.HasPrefix(line, ":conn"):
			f := strings.Fields(line)
			if len(f) < 2 {
				fmt.Fprintln(out, "usage: :conn ID [USER]")
				continue
			}
			conn = router.Conn{ID: f[1]}
			if len(f) > 2 {
				conn.User = resource.User{ID: f[2]}
			}
			fmt.Fprintf(out, "connection %s, user %q\n", conn.ID, conn.User.ID)
			continue
		}
		fmt.Fprintf(out, "< %s\n", r.Handle(ctx, conn, []byte(line)))
		for _, ch := range store.Changes() {
			posts, err := r.Fanout(ctx, store, router.Change(ch))
			if err != nil {
				fmt.Fprintf(out, "! fan-out: %v\n", err)
				continue
			}
			for _, p := range posts {
				fmt.Fprintf(out, "~ %s %s\n", p.ConnID, p.Frame)
			}
		}
	}
	return sc.Err()
}
