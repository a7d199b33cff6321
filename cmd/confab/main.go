// Command confab runs the Confab SFU: the web client, the signaling
// WebSocket and the media plane in one process.
//
//	go run ./cmd/confab            # then open the printed URL
package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/confab-sfu/confab/room"
	"github.com/confab-sfu/confab/room/turn"
	"github.com/confab-sfu/confab/room/whip"
	"github.com/confab-sfu/confab/web"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "token" {
		if err := runToken(os.Args[2:], os.Stdout, os.Getenv, time.Now()); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return
			}
			fmt.Fprintln(os.Stderr, "confab token:", err)
			os.Exit(2)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) > 1 && os.Args[1] == "replay" {
		if err := runReplay(ctx, os.Args[2:], os.Stdout); err != nil && !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "confab replay:", err)
			stop()
			os.Exit(2)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "check" {
		if err := runCheck(ctx, os.Args[2:], os.Stdout); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return
			}
			fmt.Fprintln(os.Stderr, "confab check:", err)
			os.Exit(1)
		}
		return
	}
	setGCTarget(os.Getenv)
	if err := run(ctx, os.Args[1:], os.Stdout, nil); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "confab:", err)
		os.Exit(1)
	}
}

// run starts the server and blocks until ctx ends, then shuts down
// gracefully. ready, when set, receives the base URL once it listens.
func run(ctx context.Context, args []string, stdout io.Writer, ready func(url string)) error {
	cfg, err := parseConfig(args, os.Getenv)
	if err != nil {
		return err
	}
	logger := newLogger(cfg, os.Stderr)
	rc := cfg.roomConfig(logger)
	if cfg.turnListen != "" {
		ts, err := startEmbeddedTURN(cfg, &rc, logger)
		if err != nil {
			return err
		}
		defer ts.Close()
	}
	warnExposure(cfg, len(rc.AuthSecret) > 0, logger)
	mgr, err := room.NewManager(rc)
	if err != nil {
		return fmt.Errorf("start the rooms: %w", err)
	}
	if node := mgr.Cluster(); node != nil {
		// This process's node: its metrics join the rooms' and media's.
		collector := node.Collector()
		if err := prometheus.Register(collector); err != nil {
			_ = mgr.Close(context.Background())
			return fmt.Errorf("register the cluster metrics: %w", err)
		}
		defer prometheus.Unregister(collector)
		logger.Info("cluster node", "node", node.ID(), "nodes", len(node.Nodes())+1, "nats", node.ClientURL())
	}
	media := whip.New(mgr, cfg.whipConfig(rc))
	servers, err := listen(cfg, mgr, media, logger)
	if err != nil {
		_ = mgr.Close(context.Background())
		return err
	}
	url := baseURL(servers[0].ln.Addr(), cfg.listen, cfg.tlsCert != "")
	fmt.Fprintf(stdout, "Confab is running. Open %s in a browser to start a meeting.\n", url)
	if ready != nil {
		ready(url)
	}
	errc := make(chan error, len(servers))
	for _, s := range servers {
		go func() { errc <- s.serve() }()
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		_ = mgr.Close(context.Background())
		for _, s := range servers {
			_ = s.Close()
		}
		return fmt.Errorf("serve: %w", err)
	}
	logger.Info("shutting down", "timeout", cfg.shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
	defer cancel()
	// Participants are told first (their WebSockets are hijacked, so the
	// HTTP server's Shutdown does not wait for them), then the listeners stop.
	merr := mgr.Close(sctx)
	for _, s := range servers {
		if err := s.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("shutdown: %w", err)
		}
	}
	return merr
}

// warnExposure says at start what is open to anyone who can reach the
// server.
func warnExposure(cfg *config, auth bool, logger *slog.Logger) {
	public := !loopbackOnly(cfg.listen)
	if !auth && public {
		logger.Warn("ROOMS ARE OPEN: anyone who can reach " + cfg.listen + " can join any room, publish and chat. " +
			"Set -auth-secret (CONFAB_AUTH_SECRET) and hand out tokens from 'confab token' to control who gets in.")
	}
	if cfg.pprof && cfg.metricsListen == "" && public {
		logger.Warn("-pprof serves /debug/pprof to anyone who can reach " + cfg.listen + ": set -metrics-listen to a private address")
	}
}

// server is one HTTP server and its listener.
type server struct {
	*http.Server
	ln  net.Listener
	tls bool
}

func (s *server) serve() error {
	if s.tls {
		return s.ServeTLS(s.ln, "", "")
	}
	return s.Serve(s.ln)
}

// listen opens the public listener and, with -metrics-listen, the private
// one. The public server bounds every request in time and every client
// address in sockets; WebSockets, hijacked from it, outlive its timeouts.
func listen(cfg *config, mgr *room.Manager, media *whip.Handler, logger *slog.Logger) ([]*server, error) {
	errLog := slog.NewLogLogger(logger.Handler(), slog.LevelDebug)
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.listen, err)
	}
	if cfg.maxTCPPerIP > 0 {
		ln = newConnLimitListener(ln, cfg.maxTCPPerIP, cfg.trusted, logger)
	}
	public := &server{ln: ln, Server: &http.Server{
		Handler:           trustProxies(publicMux(cfg, mgr, media), cfg.trusted),
		ReadHeaderTimeout: min(10*time.Second, cfg.httpRead),
		ReadTimeout:       cfg.httpRead,
		WriteTimeout:      cfg.httpWrite,
		IdleTimeout:       cfg.httpIdle,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          errLog,
	}}
	if cfg.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.tlsCert, cfg.tlsKey)
		if err != nil {
			_ = ln.Close()
			return nil, fmt.Errorf("load -tls-cert/-tls-key: %w", err)
		}
		public.tls = true
		public.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	servers := []*server{public}
	if cfg.metricsListen != "" {
		mln, err := net.Listen("tcp", cfg.metricsListen)
		if err != nil {
			_ = ln.Close()
			return nil, fmt.Errorf("listen on -metrics-listen %s: %w", cfg.metricsListen, err)
		}
		// Private: profiles may take as long as asked.
		servers = append(servers, &server{ln: mln, Server: &http.Server{Handler: metricsMux(cfg, mgr),
			ReadHeaderTimeout: 10 * time.Second, IdleTimeout: cfg.httpIdle, ErrorLog: errLog}})
		logger.Info("metrics listening", "addr", mln.Addr().String(), "pprof", cfg.pprof)
	}
	return servers, nil
}

// publicMux serves the meeting: signaling, WHIP/WHEP, the web client and
// the health checks; /metrics and pprof too unless -metrics-listen moves
// them.
func publicMux(cfg *config, mgr *room.Manager, media *whip.Handler) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", mgr.ServeWS)
	mux.HandleFunc("/whip/", media.ServeWHIP)
	mux.HandleFunc("/whep/", media.ServeWHEP)
	mux.HandleFunc("/check/config", mgr.ServeCheck)
	mux.HandleFunc("/check/ice", mgr.ServeCheck)
	addHealth(mux, mgr)
	if cfg.metricsListen == "" {
		addMetrics(mux, cfg.pprof)
	}
	mux.Handle("/", web.Handler())
	return mux
}

// metricsMux is the -metrics-listen server's: metrics, health, pprof.
func metricsMux(cfg *config, mgr *room.Manager) *http.ServeMux {
	mux := http.NewServeMux()
	addHealth(mux, mgr)
	addMetrics(mux, cfg.pprof)
	return mux
}

func addHealth(mux *http.ServeMux, mgr *room.Manager) {
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	// 503 while shutting down or over the load limits.
	mux.HandleFunc("/readyz", mgr.ServeReady)
}

func addMetrics(mux *http.ServeMux, withPprof bool) {
	mux.Handle("/metrics", promhttp.Handler())
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
}

// startEmbeddedTURN runs the TURN server and points welcome's TURN
// credentials at it (with a random secret when none is configured: then
// only this process hands out credentials).
func startEmbeddedTURN(cfg *config, rc *room.Config, logger *slog.Logger) (*turn.Server, error) {
	secret := cfg.turnSecret
	if secret == "" {
		b := make([]byte, 24)
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("make a TURN secret: %w", err)
		}
		secret = base64.RawURLEncoding.EncodeToString(b)
	}
	ts, err := turn.Start(turn.ServerConfig{Listen: cfg.turnListen, RelayIP: cfg.turnRelayIP, Realm: cfg.turnRealm,
		Secret: secret, Logger: logger.With("component", "turn")})
	if err != nil {
		return nil, fmt.Errorf("-turn-listen %s: %w", cfg.turnListen, err)
	}
	rc.ICE.TURN.Secret = secret
	if len(rc.ICE.TURN.URLs) == 0 {
		rc.ICE.TURN.URLs = ts.URLs(cfg.turnRelayIP)
	}
	logger.Info("embedded TURN server listening", "addr", ts.Addr(), "relay", cfg.turnRelayIP, "urls", rc.ICE.TURN.URLs)
	return ts, nil
}

// loopbackOnly reports whether a listen address accepts only local
// connections.
func loopbackOnly(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// baseURL is the URL to print: a wildcard or empty host becomes localhost,
// and port 0 becomes the port actually chosen.
func baseURL(addr net.Addr, listen string, tls bool) string {
	host, _, _ := net.SplitHostPort(listen)
	_, port, _ := net.SplitHostPort(addr.String())
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	scheme := "http://"
	if tls {
		scheme = "https://"
	}
	return scheme + net.JoinHostPort(host, port) + "/"
}

// gcTarget is the heap growth between collections (GOGC) the server runs
// with unless GOGC is set. Resident memory follows the target (about twice
// the live heap at Go's default of 100), while forwarding allocates
// nothing, so the collector costs little at any target: in a 100-viewer
// lecture 25 took resident memory per subscriber from 0.73 to 0.49 MiB at
// the same packets per CPU-second (docs/benchmarks.md).
const gcTarget = 25

// setGCTarget applies gcTarget unless the operator chose GOGC.
func setGCTarget(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(gcTarget)
	}
}
