package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/confab-sfu/confab/room"
	"github.com/confab-sfu/confab/room/addrlimit"
	"github.com/confab-sfu/confab/room/turn"
	"github.com/confab-sfu/confab/room/whip"
	"github.com/confab-sfu/confab/sfu"
	"github.com/confab-sfu/confab/signal"
	"go.yaml.in/yaml/v3"
)

// flagOutput receives -h output.
var flagOutput io.Writer = os.Stderr

// config is everything the server binary can be told. Every flag has an
// environment equivalent: -ice-udp-port is CONFAB_ICE_UDP_PORT. Flags win.
type config struct {
	listen          string
	iceInterfaces   string
	iceLoopback     bool
	iceAllowedCIDRs string
	iceMDNS         bool
	iceUDPPort      int
	icePortMin      int
	icePortMax      int
	publicIPs       string
	stun            string
	maxParticipants int
	maxRooms        int
	maxTracks       int
	keyframeEvery   time.Duration
	logLevel        string
	logFormat       string
	pprof           bool
	shutdownTimeout time.Duration
	allowedOrigins  string
	signalRate      float64
	signalBurst     int
	maxConnsPerIP   int
	tlsCert         string
	tlsKey          string
	turnURLs        string
	turnSecret      string
	turnTTL         time.Duration
	turnListen      string
	turnRelayIP     string
	turnRealm       string
	authSecret      string
	joinTimeout     time.Duration
	signalMaxBytes  int
	signalQueue     int
	iceTCPPort      int
	iceUDPBatch     bool
	connectTimeout  time.Duration
	configFile      string
	maxTCPPerIP     int
	httpRead        time.Duration
	httpWrite       time.Duration
	httpIdle        time.Duration
	trustedProxies  string
	metricsListen   string
	cluster         clusterFlags

	allowed []netip.Prefix
	trusted []netip.Prefix
}

// minTCPPerIP is the least -max-tcp-conns-per-ip that lets one browser
// in: it loads a page over up to 6 connections, then opens its WebSocket.
const minTCPPerIP = 8

func newFlagSet(c *config) *flag.FlagSet {
	fs := flag.NewFlagSet("confab", flag.ContinueOnError)
	fs.StringVar(&c.listen, "listen", "localhost:8080", "HTTP listen address host:port (port 0 picks a free port)")
	fs.StringVar(&c.iceInterfaces, "ice-interfaces", "", "comma-separated network interfaces ICE may use (default: all but container/VM bridges)")
	fs.BoolVar(&c.iceLoopback, "ice-loopback", false, "offer loopback (127.0.0.1) ICE candidates")
	fs.StringVar(&c.iceAllowedCIDRs, "ice-allowed-cidrs", "", "comma-separated networks remote ICE candidates must be in; others are dropped (default: any)")
	fs.BoolVar(&c.iceMDNS, "ice-mdns", false, "gather and resolve mDNS (.local) candidates")
	fs.IntVar(&c.iceUDPPort, "ice-udp-port", 0, "carry all ICE/media traffic on this single UDP port (0: one port per peer)")
	fs.IntVar(&c.icePortMin, "ice-port-min", 0, "lowest UDP port for media when -ice-udp-port is 0")
	fs.IntVar(&c.icePortMax, "ice-port-max", 0, "highest UDP port for media when -ice-udp-port is 0")
	fs.StringVar(&c.publicIPs, "public-ip", "", "comma-separated public IPs to advertise (1:1 NAT)")
	fs.StringVar(&c.stun, "stun", "", "comma-separated STUN URLs handed to clients, e.g. stun:stun.example.org:3478")
	fs.IntVar(&c.maxParticipants, "max-participants", 100, "most participants in one room")
	fs.IntVar(&c.maxRooms, "max-rooms", 1000, "most rooms on this server")
	fs.IntVar(&c.maxTracks, "max-tracks", 8, "most tracks one participant may publish")
	fs.DurationVar(&c.keyframeEvery, "keyframe-interval", 500*time.Millisecond, "least time between keyframe requests to a publisher, per layer")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log-format", "text", "text or json")
	fs.BoolVar(&c.pprof, "pprof", false, "serve /debug/pprof")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long shutdown waits for participants to leave")
	fs.StringVar(&c.allowedOrigins, "allowed-origins", "", "comma-separated Origin host patterns allowed to open the WebSocket (default: same host)")
	fs.Float64Var(&c.signalRate, "signal-rate", 50, "signaling messages per second one connection may send (excess is refused; more than a burst refused within a second disconnects)")
	fs.IntVar(&c.signalBurst, "signal-burst", 100, "signaling messages one connection may send in a burst")
	fs.IntVar(&c.maxConnsPerIP, "max-conns-per-ip", 50, "signaling connections from one client IP (0: no limit)")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "TLS certificate (PEM) to serve HTTPS and WSS")
	fs.StringVar(&c.tlsKey, "tls-key", "", "TLS private key (PEM) for -tls-cert")
	fs.StringVar(&c.turnURLs, "turn-urls", "", "comma-separated TURN URLs handed to clients with time-limited credentials, e.g. turn:turn.example.org:3478,turns:turn.example.org:443?transport=tcp")
	fs.StringVar(&c.turnSecret, "turn-secret", "", "shared secret of the TURN server (coturn static-auth-secret with use-auth-secret)")
	fs.DurationVar(&c.turnTTL, "turn-ttl", 12*time.Hour, "how long TURN credentials stay valid")
	fs.StringVar(&c.turnListen, "turn-listen", "", "run the embedded TURN server on this address (UDP and TCP), e.g. :3478; it accepts the credentials of -turn-secret")
	fs.StringVar(&c.turnRelayIP, "turn-relay-ip", "", "public IP the embedded TURN server relays from (default: the first -public-ip)")
	fs.StringVar(&c.turnRealm, "turn-realm", "confab", "realm of the embedded TURN server")
	fs.StringVar(&c.authSecret, "auth-secret", "", "require access tokens signed with this secret (HS256) to join; mint them with 'confab token'")
	fs.IntVar(&c.signalMaxBytes, "signal-max-message", 64<<10, "largest signaling message in bytes (larger: close 1009)")
	fs.IntVar(&c.signalQueue, "signal-queue", 512, "signaling messages queued to a client that is not reading before it is disconnected (1008)")
	fs.DurationVar(&c.joinTimeout, "join-timeout", 10*time.Second, "close WebSockets that have not joined a room in this time")
	fs.BoolVar(&c.iceUDPBatch, "ice-udp-batch", true, "with -ice-udp-port, send packets in batches (sendmmsg) instead of one system call each")
	fs.IntVar(&c.iceTCPPort, "ice-tcp-port", 0, "also accept ICE over TCP on this single port, for UDP-blocked clients (0: off)")
	fs.DurationVar(&c.connectTimeout, "ice-connect-timeout", 30*time.Second, "drop a participant whose media has not connected this long after negotiating")
	fs.IntVar(&c.maxTCPPerIP, "max-tcp-conns-per-ip", -1, fmt.Sprintf("TCP connections one client address may hold open at once, idle keep-alives included; more are closed as they arrive (0: no limit, else at least %d; -1: 2 x -max-conns-per-ip + %d, no limit when that is 0)", minTCPPerIP, minTCPPerIP))
	fs.DurationVar(&c.httpRead, "http-read-timeout", 20*time.Second, "longest a client may take to send a request's headers and body (a WHIP/WHEP offer)")
	fs.DurationVar(&c.httpWrite, "http-write-timeout", 60*time.Second, "longest a response may take to be written, from the end of the request's headers")
	fs.DurationVar(&c.httpIdle, "http-idle-timeout", 60*time.Second, "close a keep-alive connection idle this long")
	fs.StringVar(&c.trustedProxies, "trusted-proxies", "", "comma-separated networks of reverse proxies whose X-Forwarded-For / Forwarded headers name the client (for per-address limits and logs); from anyone else the headers are ignored")
	fs.StringVar(&c.metricsListen, "metrics-listen", "", "serve /metrics (and /debug/pprof with -pprof) on this separate address only, e.g. 127.0.0.1:9090")
	addClusterFlags(fs, &c.cluster)
	fs.StringVar(&c.configFile, "config", "", "YAML file of settings named like the flags (flags and environment win)")
	return fs
}

// envName maps a flag name to its environment variable.
func envName(flagName string) string {
	return "CONFAB_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseConfig reads flags, falling back to CONFAB_* environment variables
// for flags not given on the command line.
func parseConfig(args []string, getenv func(string) string) (*config, error) {
	c := &config{}
	fs := newFlagSet(c)
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(flagOutput)
			fmt.Fprintln(flagOutput, "Usage: confab [flags]\nEvery flag can also be set as an environment variable: -ice-udp-port is CONFAB_ICE_UDP_PORT.")
			fs.PrintDefaults()
		}
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || envErr != nil {
			return
		}
		if v := getenv(envName(f.Name)); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("%s=%q: %w", envName(f.Name), v, err)
			}
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	if c.configFile != "" {
		if err := applyConfigFile(fs, c.configFile, set, getenv); err != nil {
			return nil, err
		}
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	return c, nil
}

// check validates the settings together and derives what they imply.
func (c *config) check() error {
	if c.turnListen == "" && (c.turnURLs == "") != (c.turnSecret == "") {
		return fmt.Errorf("-turn-urls and -turn-secret go together")
	}
	if c.turnListen != "" {
		if c.turnRelayIP == "" {
			if ips := splitList(c.publicIPs); len(ips) > 0 {
				c.turnRelayIP = ips[0]
			}
		}
		if c.turnRelayIP == "" {
			return fmt.Errorf("-turn-listen needs -turn-relay-ip (or -public-ip): the address clients reach the relay at")
		}
	}
	if c.iceTCPPort < 0 || c.iceTCPPort > 65535 {
		return fmt.Errorf("-ice-tcp-port %d out of range", c.iceTCPPort)
	}
	if c.signalMaxBytes < 1024 || c.signalQueue < 16 {
		return fmt.Errorf("-signal-max-message must be at least 1024 and -signal-queue at least 16")
	}
	if c.joinTimeout <= 0 || c.connectTimeout <= 0 {
		return fmt.Errorf("-join-timeout and -ice-connect-timeout must be positive")
	}
	allowed, err := sfu.ParseCIDRs(c.iceAllowedCIDRs)
	if err != nil {
		return fmt.Errorf("-ice-allowed-cidrs: %w", err)
	}
	c.allowed = allowed
	if c.iceUDPPort < 0 || c.iceUDPPort > 65535 {
		return fmt.Errorf("-ice-udp-port %d out of range", c.iceUDPPort)
	}
	if c.icePortMin < 0 || c.icePortMax > 65535 || c.icePortMin > c.icePortMax {
		return fmt.Errorf("-ice-port-min %d / -ice-port-max %d: not a valid range", c.icePortMin, c.icePortMax)
	}
	if c.logFormat != "text" && c.logFormat != "json" {
		return fmt.Errorf("-log-format %q: want text or json", c.logFormat)
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return fmt.Errorf("-tls-cert and -tls-key go together")
	}
	if c.signalRate <= 0 || c.signalBurst <= 0 || c.maxConnsPerIP < 0 {
		return fmt.Errorf("-signal-rate and -signal-burst must be positive, -max-conns-per-ip not negative")
	}
	if err := c.checkHTTP(); err != nil {
		return err
	}
	if err := c.cluster.check(); err != nil {
		return err
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.logLevel)); err != nil {
		return fmt.Errorf("-log-level %q: %w", c.logLevel, err)
	}
	return nil
}

// checkHTTP checks the HTTP server's limits and parses -trusted-proxies.
func (c *config) checkHTTP() error {
	if c.maxTCPPerIP == -1 {
		// Above the session budget, so that a client over it gets the
		// rooms' clear 429 rather than a closed socket.
		c.maxTCPPerIP = 0
		if c.maxConnsPerIP > 0 {
			c.maxTCPPerIP = 2*c.maxConnsPerIP + minTCPPerIP
		}
	}
	if c.maxTCPPerIP != 0 && c.maxTCPPerIP < minTCPPerIP {
		return fmt.Errorf("-max-tcp-conns-per-ip %d: want 0 (no limit) or at least %d (a browser loads a page over up to 6 connections, then opens its WebSocket)", c.maxTCPPerIP, minTCPPerIP)
	}
	if c.httpRead <= 0 || c.httpIdle <= 0 {
		return fmt.Errorf("-http-read-timeout and -http-idle-timeout must be positive")
	}
	if c.httpWrite < c.httpRead+answerTime {
		return fmt.Errorf("-http-write-timeout %s must be at least -http-read-timeout plus %s (a WHIP/WHEP answer is written after its offer is read)", c.httpWrite, answerTime)
	}
	trusted, err := sfu.ParseCIDRs(c.trustedProxies)
	if err != nil {
		return fmt.Errorf("-trusted-proxies: %w", err)
	}
	c.trusted = trusted
	if c.metricsListen != "" && c.metricsListen == c.listen {
		return fmt.Errorf("-metrics-listen must differ from -listen")
	}
	return nil
}

// answerTime is what a WHIP/WHEP answer may take after its offer arrived
// (the answer timeout plus a margin).
const answerTime = whip.AnswerTimeout + 5*time.Second

// applyConfigFile sets, from a YAML map of flag names to values, every
// flag that neither the command line nor the environment set.
func applyConfigFile(fs *flag.FlagSet, path string, set map[string]bool, getenv func(string) string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(b, &values); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	for name, v := range values {
		f := fs.Lookup(name)
		if f == nil || name == "config" {
			return fmt.Errorf("config file %s: unknown setting %q", path, name)
		}
		if set[name] || getenv(envName(name)) != "" {
			continue
		}
		val := fmt.Sprint(v)
		if list, ok := v.([]any); ok {
			parts := make([]string, len(list))
			for i, x := range list {
				parts[i] = fmt.Sprint(x)
			}
			val = strings.Join(parts, ",")
		}
		if err := fs.Set(name, val); err != nil {
			return fmt.Errorf("config file %s: %s: %w", path, name, err)
		}
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func (c *config) roomConfig(logger *slog.Logger) room.Config {
	rc := room.Config{
		SFU: sfu.Config{
			Interfaces:       splitList(c.iceInterfaces),
			IncludeLoopback:  c.iceLoopback,
			AllowedCIDRs:     c.allowed,
			MDNS:             c.iceMDNS,
			UDPPort:          c.iceUDPPort,
			PortMin:          uint16(c.icePortMin),
			PortMax:          uint16(c.icePortMax),
			NAT1To1IPs:       splitList(c.publicIPs),
			KeyframeInterval: c.keyframeEvery,
			TCPPort:          c.iceTCPPort,
			NoUDPBatch:       !c.iceUDPBatch,
			ConnectTimeout:   c.connectTimeout,
			Logger:           logger,
		},
		JoinTimeout:             c.joinTimeout,
		MaxParticipants:         c.maxParticipants,
		MaxRooms:                c.maxRooms,
		MaxTracksPerParticipant: c.maxTracks,
		Logger:                  logger,
		Addrs:                   addrlimit.New(c.maxConnsPerIP),
		Conn: signal.ConnOptions{OriginPatterns: splitList(c.allowedOrigins), Logger: logger,
			MessageRate: c.signalRate, MessageBurst: c.signalBurst,
			ReadLimit: int64(c.signalMaxBytes), QueueSize: c.signalQueue},
	}
	rc.Cluster = c.cluster.config(logger)
	rc.ICE.TURN = turn.Credentials{URLs: splitList(c.turnURLs), Secret: c.turnSecret, TTL: c.turnTTL}
	if c.authSecret != "" {
		rc.AuthSecret = []byte(c.authSecret)
	}
	if stun := splitList(c.stun); len(stun) > 0 {
		rc.ICE.Servers = []signal.ICEServer{{URLs: stun}}
	}
	return rc
}

// whipConfig is the WHIP/WHEP handlers': the rooms' auth secret, ICE
// servers and per-address budget (rc after the embedded TURN server set
// its secret), and -http-read-timeout for reading an offer.
func (c *config) whipConfig(rc room.Config) whip.Config {
	return whip.Config{AuthSecret: rc.AuthSecret, ICE: rc.ICE, Addrs: rc.Addrs, OfferReadTimeout: c.httpRead, Logger: rc.Logger}
}

func newLogger(c *config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.logLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
