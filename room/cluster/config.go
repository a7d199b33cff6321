package cluster

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"
)

// Config describes how a node joins the cluster. Exactly one of URLs
// (an existing NATS deployment) or Embed (a nats-server inside this
// process) must be set.
type Config struct {
	// URLs of an existing NATS cluster, e.g. "nats://10.0.0.1:4222".
	URLs []string
	// CredsFile is a NATS user credentials file (JWT + nkey seed).
	CredsFile string
	// User and Password authenticate with user/password. With Embed they
	// are also required of clients and of the other nodes' routes.
	User, Password string
	// Token authenticates with a token. With Embed it is required of
	// clients, and of routes as the password of user "confab" (routes
	// know no tokens).
	Token string
	// TLSCA is a PEM file of the CAs that sign the NATS servers'
	// certificates; TLSCert and TLSKey are this node's client certificate
	// for servers that verify clients. External NATS only.
	TLSCA, TLSCert, TLSKey string

	// Embed, when set, runs a NATS server in this process and connects
	// to it.
	Embed *EmbedConfig

	// NodeID names this node in the cluster (letters, digits, '-', '_',
	// at most 64). Default: 16 random hex digits. A restarted node may
	// keep its ID; the others notice the restart by its start time.
	NodeID string
	// AdvertiseURL is the URL clients use to reach this node; it is
	// announced in heartbeats and otherwise opaque.
	AdvertiseURL string
	// Subject is the prefix of every subject (default "confab"). Nodes
	// with different prefixes do not see each other on one NATS.
	Subject string
	// Heartbeat is the announce period (default 1 s).
	Heartbeat time.Duration
	// DeadAfter is how long a silent node stays in the table (default
	// 4 s). It must be more than twice Heartbeat.
	DeadAfter time.Duration
	// RequestTimeout bounds Request when its context has no deadline,
	// and every request handler (default 5 s).
	RequestTimeout time.Duration
	// GatherTimeout bounds each node's reply in RequestAll (default 1 s).
	GatherTimeout time.Duration
	// Logger receives the cluster's logs (default slog.Default()).
	Logger *slog.Logger
	// Load is sampled into every heartbeat (possibly from several
	// goroutines at once); nil announces zero load.
	Load func() Load

	// OnNodeUp is called when another node appears (or reappears after
	// being declared down, or restarted). OnNodeDown is called when it
	// leaves, goes silent for DeadAfter, restarts, or this node has been
	// cut off from NATS for DeadAfter. Both run on one goroutine, in
	// order; they must not block for long.
	OnNodeUp   func(NodeInfo)
	OnNodeDown func(NodeInfo, DownReason)
}

// EmbedConfig runs a nats-server inside the Confab process. Several
// nodes' embedded servers joined by Routes form one NATS cluster.
type EmbedConfig struct {
	// Listen is the client address "host:port" (default
	// "127.0.0.1:4222"); port 0 picks a free port.
	Listen string
	// ClusterListen is the route address "host:port" other nodes' Routes
	// point at; port 0 picks a free port. Empty runs a lone server.
	ClusterListen string
	// ClusterAdvertise is the route address told to other servers when
	// ClusterListen is not reachable as is (NAT, containers).
	ClusterAdvertise string
	// Routes are other nodes' cluster addresses, "host:port" or
	// "nats-route://host:port". Listing this node's own address is
	// harmless, so every node may share one list.
	Routes []string
	// ClusterName must be equal on every node (default "confab").
	ClusterName string
}

// Load is what a node reports about itself in heartbeats.
type Load struct {
	// Participants connected to this node.
	Participants int `json:"participants"`
	// Streams this node forwards (one per subscriber and track).
	Streams int `json:"streams"`
	// CPU is the process's share of the machine's CPUs, 0..1.
	CPU float64 `json:"cpu"`
	// Busy: the node is over its load limits and refuses new joins;
	// a busy node hands its joins to one that is not.
	Busy bool `json:"busy,omitempty"`
}

const (
	defaultSubject        = "confab"
	defaultHeartbeat      = time.Second
	defaultDeadAfter      = 4 * time.Second
	defaultRequestTimeout = 5 * time.Second
	defaultGatherTimeout  = time.Second
	defaultEmbedListen    = "127.0.0.1:4222"
	defaultClusterName    = "confab"
	// tokenRouteUser is the route user when only a token is configured.
	tokenRouteUser = "confab"
	maxNodeID      = 64
)

// withDefaults returns a validated copy of c with defaults filled in.
func (c Config) withDefaults() (Config, error) {
	if c.Embed == nil && len(c.URLs) == 0 {
		return c, fmt.Errorf("%w: set URLs of a NATS server or Embed", ErrConfig)
	}
	if c.Embed != nil && len(c.URLs) > 0 {
		return c, fmt.Errorf("%w: URLs and Embed exclude each other", ErrConfig)
	}
	if c.Token != "" && (c.User != "" || c.Password != "" || c.CredsFile != "") {
		return c, fmt.Errorf("%w: Token excludes User/Password and CredsFile", ErrConfig)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return c, fmt.Errorf("%w: TLSCert and TLSKey go together", ErrConfig)
	}
	if c.Embed != nil && (c.CredsFile != "" || c.TLSCA != "" || c.TLSCert != "") {
		return c, fmt.Errorf("%w: CredsFile and TLS options apply to an external NATS, not Embed", ErrConfig)
	}
	if c.NodeID == "" {
		c.NodeID = randomID()
	}
	if !validNodeID(c.NodeID) {
		return c, fmt.Errorf("%w: node ID %q: use 1-%d letters, digits, '-' or '_'", ErrConfig, c.NodeID, maxNodeID)
	}
	if c.Subject == "" {
		c.Subject = defaultSubject
	}
	if !validPrefix(c.Subject) {
		return c, fmt.Errorf("%w: subject prefix %q: use dot-separated tokens without spaces, '*' or '>'", ErrConfig, c.Subject)
	}
	setDefault(&c.Heartbeat, defaultHeartbeat)
	setDefault(&c.DeadAfter, defaultDeadAfter)
	setDefault(&c.RequestTimeout, defaultRequestTimeout)
	setDefault(&c.GatherTimeout, defaultGatherTimeout)
	if c.DeadAfter <= 2*c.Heartbeat {
		return c, fmt.Errorf("%w: DeadAfter %v must be more than twice Heartbeat %v", ErrConfig, c.DeadAfter, c.Heartbeat)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Embed != nil {
		e, err := c.Embed.withDefaults()
		if err != nil {
			return c, err
		}
		c.Embed = &e
	}
	return c, nil
}

func (e EmbedConfig) withDefaults() (EmbedConfig, error) {
	if e.Listen == "" {
		e.Listen = defaultEmbedListen
	}
	if e.ClusterName == "" {
		e.ClusterName = defaultClusterName
	}
	if _, _, err := splitHostPort(e.Listen); err != nil {
		return e, fmt.Errorf("%w: embedded NATS listen address: %w", ErrConfig, err)
	}
	if e.ClusterListen == "" {
		if len(e.Routes) > 0 {
			return e, fmt.Errorf("%w: Routes need ClusterListen", ErrConfig)
		}
		return e, nil
	}
	if _, _, err := splitHostPort(e.ClusterListen); err != nil {
		return e, fmt.Errorf("%w: embedded NATS cluster address: %w", ErrConfig, err)
	}
	for _, r := range e.Routes {
		if _, err := routeURL(r, "", ""); err != nil {
			return e, fmt.Errorf("%w: route %q: %w", ErrConfig, r, err)
		}
	}
	return e, nil
}

func setDefault(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}

// splitHostPort parses "host:port"; port 0 means any free port.
func splitHostPort(addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	p, err := net.LookupPort("tcp", port)
	if err != nil {
		return "", 0, err
	}
	return host, p, nil
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}

func validNodeID(id string) bool {
	if len(id) == 0 || len(id) > maxNodeID {
		return false
	}
	for _, r := range id {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_'
		if !ok {
			return false
		}
	}
	return true
}

// validPrefix accepts NATS subject tokens that are literal (no wildcards).
func validPrefix(p string) bool {
	for _, tok := range strings.Split(p, ".") {
		if tok == "" || tok == "*" || tok == ">" || strings.ContainsAny(tok, " \t\r\n*>") {
			return false
		}
	}
	return true
}
