// Package testserver runs a whole Confab server in-process on 127.0.0.1
// for tests: rooms and signaling at /ws, WHIP and WHEP, metrics at
// /metrics, the web client at /, with ICE restricted to loopback.
package testserver

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/confab-sfu/confab/room"
	"github.com/confab-sfu/confab/room/whip"
	"github.com/confab-sfu/confab/web"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Start serves cfg (forced to loopback-only ICE) until the test ends and
// returns the manager and the base URL. CONFAB_TEST_DEBUG=1 logs at debug
// level.
func Start(t testing.TB, cfg room.Config) (*room.Manager, string) {
	t.Helper()
	mgr := newManager(t, cfg)
	srv := httptest.NewServer(handler(mgr, cfg))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := mgr.Close(ctx); err != nil {
			t.Errorf("close manager: %v", err)
		}
		srv.Close()
	})
	return mgr, srv.URL
}

// newManager makes a manager of cfg with loopback-only ICE.
func newManager(t testing.TB, cfg room.Config) *room.Manager {
	t.Helper()
	cfg.SFU.Loopback = true
	if os.Getenv("CONFAB_TEST_DEBUG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	mgr, err := room.NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return mgr
}

// handler serves a manager's endpoints as cmd/confab does.
func handler(mgr *room.Manager, cfg room.Config) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", mgr.ServeWS)
	media := Media(mgr, cfg, 0)
	mux.HandleFunc("/whip/", media.ServeWHIP)
	mux.HandleFunc("/whep/", media.ServeWHEP)
	mux.HandleFunc("/check/config", mgr.ServeCheck)
	mux.HandleFunc("/check/ice", mgr.ServeCheck)
	mux.HandleFunc("/readyz", mgr.ServeReady)
	mux.Handle("/metrics", promhttp.Handler())
	mux.Handle("/", web.Handler())
	return mux
}

// Media is the WHIP/WHEP handler of mgr as cmd/confab wires it: the auth
// secret, ICE servers, per-address budget and logger of cfg, and the offer
// read timeout given (0: the default).
func Media(mgr *room.Manager, cfg room.Config, offerRead time.Duration) *whip.Handler {
	return whip.New(mgr, whip.Config{AuthSecret: cfg.AuthSecret, ICE: cfg.ICE, Addrs: cfg.Addrs,
		OfferReadTimeout: offerRead, Logger: cfg.Logger})
}
