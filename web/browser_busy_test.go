package web_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/testserver"
	"github.com/confab-sfu/confab/room"
	"github.com/confab-sfu/confab/room/load"
)

// TestBrowserBusyServerSaysSoInPlainWords: a server over its CPU limit
// refuses the page's join with server_busy, and the page says so in plain
// words with the wait the server gave.
func TestBrowserBusyServerSaysSoInPlainWords(t *testing.T) {
	path := needBrowser(t)
	mgr, base := testserver.Start(t, room.Config{Load: load.Config{Limits: load.Limits{CPU: 0.5},
		Every: 50 * time.Millisecond, RetryAfter: 7 * time.Second, CPU: func() float64 { return 0.9 }}})
	if !mgr.Busy() {
		t.Fatal("the server is not busy at 90 % CPU of a 50 % limit")
	}
	b := newBrowser(t, path, base)
	tab := b.join(base, "crowded", "ann")
	b.waitSnapshot(tab, "the busy message", 15*time.Second, func(s snapshot) (bool, string) {
		var msg string
		_ = tab.eval(`return document.getElementById('prejoin-message').textContent`, &msg)
		busy := msg == "The server is full right now; try again in 7 s."
		return busy && s.Me == "" && s.Status["state"] == "error", fmt.Sprintf("message %q, status %v", msg, s.Status)
	})
}
