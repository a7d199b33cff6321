package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// embedded is a nats-server running inside this process.
type embedded struct {
	srv       *server.Server
	clientURL string // where this node's own connection goes
	routeURL  string // what other nodes put in their Routes ("" if no cluster)
}

// startEmbedded starts the server and waits until it accepts clients.
func startEmbedded(ctx context.Context, cfg Config) (*embedded, error) {
	opts, err := serverOptions(cfg)
	if err != nil {
		return nil, err
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("cluster: embedded NATS server: %w", err)
	}
	logger := natsLogger{l: cfg.Logger.With("nats_server", cfg.NodeID), fatal: new(atomic.Pointer[string])}
	srv.SetLoggerV2(logger, false, false, false)
	srv.Start()
	if err := waitReady(ctx, srv, logger.fatal); err != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("cluster: embedded NATS server: %w", err)
	}
	e := &embedded{srv: srv, clientURL: localURL("nats", srv.Addr())}
	if ca := srv.ClusterAddr(); ca != nil {
		e.routeURL = localURL("nats-route", ca)
	}
	return e, nil
}

// waitReady polls the server until it listens, ctx ends, or it reports a
// fatal error (it cannot listen: it then logs and never becomes ready).
func waitReady(ctx context.Context, srv *server.Server, fatal *atomic.Pointer[string]) error {
	for {
		if srv.ReadyForConnections(50 * time.Millisecond) {
			return nil
		}
		if msg := fatal.Load(); msg != nil {
			return errors.New(*msg)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("not ready: %w", ctx.Err())
		}
	}
}

func (e *embedded) shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

func serverOptions(cfg Config) (*server.Options, error) {
	ec := cfg.Embed
	host, port, _ := splitHostPort(ec.Listen) // checked in withDefaults
	opts := &server.Options{
		ServerName: cfg.NodeID,
		Host:       host,
		Port:       freePort(port),
		NoSigs:     true,
		// The node's slog logger gets everything through natsLogger.
		Logtime:       false,
		Username:      cfg.User,
		Password:      cfg.Password,
		Authorization: cfg.Token,
	}
	if ec.ClusterListen == "" {
		return opts, nil
	}
	chost, cport, _ := splitHostPort(ec.ClusterListen)
	user, pass := routeCredentials(cfg)
	opts.Cluster = server.ClusterOpts{
		Name:      ec.ClusterName,
		Host:      chost,
		Port:      freePort(cport),
		Username:  user,
		Password:  pass,
		Advertise: ec.ClusterAdvertise,
		// Routes retry forever so a node that starts before its peers,
		// or outlives a peer's restart, joins once they are back.
		ConnectRetries: -1,
		ConnectBackoff: true,
	}
	for _, r := range ec.Routes {
		u, err := routeURL(r, user, pass)
		if err != nil {
			return nil, fmt.Errorf("%w: route %q: %w", ErrConfig, r, err)
		}
		opts.Routes = append(opts.Routes, u)
	}
	return opts, nil
}

// routeCredentials are what routes present and require: user/password,
// or the token as the password of a fixed user.
func routeCredentials(cfg Config) (user, pass string) {
	if cfg.Token != "" {
		return tokenRouteUser, cfg.Token
	}
	return cfg.User, cfg.Password
}

// routeURL turns "host:port" or "nats-route://host:port" into a route URL
// carrying the route credentials.
func routeURL(s, user, pass string) (*url.URL, error) {
	if !strings.Contains(s, "://") {
		s = "nats-route://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "nats-route" && u.Scheme != "nats" {
		return nil, fmt.Errorf("scheme %q, want nats-route", u.Scheme)
	}
	if u.Hostname() == "" || u.Port() == "" {
		return nil, fmt.Errorf("want host:port")
	}
	if user != "" && u.User == nil {
		u.User = url.UserPassword(user, pass)
	}
	return u, nil
}

// freePort maps port 0 to the server's "pick a free port".
func freePort(p int) int {
	if p == 0 {
		return server.RANDOM_PORT
	}
	return p
}

// localURL names a listener: an unspecified host (0.0.0.0, ::) is
// reached on loopback.
func localURL(scheme string, addr net.Addr) string {
	ta, ok := addr.(*net.TCPAddr)
	if !ok {
		return scheme + "://" + addr.String()
	}
	ip := ta.IP
	if ip == nil || ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
	}
	return scheme + "://" + net.JoinHostPort(ip.String(), strconv.Itoa(ta.Port))
}

// natsLogger hands the embedded server's logs to slog. Notices (listening,
// routes made and lost) are worth an operator's eye; debug and trace are
// off. A fatal error is also kept for startEmbedded to report.
type natsLogger struct {
	l     *slog.Logger
	fatal *atomic.Pointer[string]
}

func (n natsLogger) Noticef(format string, v ...any) { n.l.Info(fmt.Sprintf(format, v...)) }
func (n natsLogger) Warnf(format string, v ...any)   { n.l.Warn(fmt.Sprintf(format, v...)) }
func (n natsLogger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	n.fatal.Store(&msg)
	n.l.Error(msg)
}
func (n natsLogger) Errorf(format string, v ...any) { n.l.Error(fmt.Sprintf(format, v...)) }
func (n natsLogger) Debugf(format string, v ...any) { n.l.Debug(fmt.Sprintf(format, v...)) }
func (n natsLogger) Tracef(format string, v ...any) { n.l.Debug(fmt.Sprintf(format, v...)) }
