package turn

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/confab-sfu/confab/sfu/pionlog"
	pionturn "github.com/pion/turn/v5"
)

// ServerConfig configures the TURN server Confab can run itself, for
// clients whose networks block direct UDP to the SFU. It accepts the
// credentials of Credentials with the same secret.
type ServerConfig struct {
	// Listen is the UDP and TCP address clients reach it at, e.g. ":3478".
	Listen string
	// RelayIP is the address relayed traffic leaves from and that clients
	// are told: the host's public IP.
	RelayIP string
	// Realm is the TURN realm (default "confab").
	Realm string
	// Secret checks credentials; the same as Credentials.Secret.
	Secret string
	// AllowedPeers limits where traffic may be relayed to. The relay exists
	// to reach this SFU, so by default only the relay IP itself may be a
	// peer (plus loopback when that is the relay IP): it must never become
	// an open proxy into the server's networks.
	AllowedPeers []netip.Prefix
	Logger       *slog.Logger
}

// Server is a running embedded TURN server.
type Server struct {
	srv  *pionturn.Server
	udp  net.PacketConn
	tcp  net.Listener
	addr string
}

// Start starts the embedded TURN server.
func Start(c ServerConfig) (*Server, error) {
	if c.Secret == "" {
		return nil, errors.New("start TURN server: no secret")
	}
	relay := net.ParseIP(c.RelayIP)
	if relay == nil {
		return nil, fmt.Errorf("start TURN server: relay IP %q is not an IP address", c.RelayIP)
	}
	if c.Realm == "" {
		c.Realm = "confab"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	permit := permitPeers(c.AllowedPeers, relay, c.Logger)
	udp, tcp, err := listenBoth(c.Listen)
	if err != nil {
		return nil, err
	}
	bind := "0.0.0.0"
	if relay.IsLoopback() {
		bind = relay.String()
	}
	gen := func() pionturn.RelayAddressGenerator {
		return &pionturn.RelayAddressGeneratorStatic{RelayAddress: relay, Address: bind}
	}
	srv, err := pionturn.NewServer(pionturn.ServerConfig{
		Realm:             c.Realm,
		AuthHandler:       pionturn.LongTermTURNRESTAuthHandler(c.Secret, nil),
		LoggerFactory:     pionlog.Factory(c.Logger),
		PacketConnConfigs: []pionturn.PacketConnConfig{{PacketConn: udp, RelayAddressGenerator: gen(), PermissionHandler: permit}},
		ListenerConfigs:   []pionturn.ListenerConfig{{Listener: tcp, RelayAddressGenerator: gen(), PermissionHandler: permit}},
	})
	if err != nil {
		_ = udp.Close()
		_ = tcp.Close()
		return nil, fmt.Errorf("start TURN server: %w", err)
	}
	return &Server{srv: srv, udp: udp, tcp: tcp, addr: udp.LocalAddr().String()}, nil
}

// permitPeers is the permission check of relayed traffic: only to the
// allowed networks, by default the relay IP alone.
func permitPeers(allowed []netip.Prefix, relay net.IP, log *slog.Logger) func(net.Addr, net.IP) bool {
	if len(allowed) == 0 {
		a, _ := netip.AddrFromSlice(relay)
		allowed = []netip.Prefix{netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())}
	}
	return func(_ net.Addr, peer net.IP) bool {
		a, ok := netip.AddrFromSlice(peer)
		if !ok {
			return false
		}
		a = a.Unmap()
		for _, p := range allowed {
			if p.Contains(a) {
				return true
			}
		}
		log.Debug("turn: relay to a peer outside the allowed networks refused", "peer", a)
		return false
	}
}

// Addr is the UDP address the server listens on (TCP uses the same port).
func (t *Server) Addr() string { return t.addr }

// URLs are the TURN URLs clients should be given for host (a name or IP
// they can reach the server at): UDP and TCP.
func (t *Server) URLs(host string) []string {
	_, port, _ := net.SplitHostPort(t.addr)
	hp := net.JoinHostPort(host, port)
	return []string{"turn:" + hp + "?transport=udp", "turn:" + hp + "?transport=tcp"}
}

// Close stops the server and its allocations.
func (t *Server) Close() error { return t.srv.Close() }

// portAttempts bounds the tries for a port free for both UDP and TCP when
// the port is left to the system.
const portAttempts = 8

// listenBoth listens on UDP and, for networks that only let TCP out, TCP
// on the same port number. With port 0 the system picks the UDP port,
// and its number may be taken for TCP (by any outgoing connection's
// local port): then another is tried.
func listenBoth(addr string) (net.PacketConn, net.Listener, error) {
	host, wantPort, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("start TURN server: %w", err)
	}
	for attempt := 1; ; attempt++ {
		udp, err := net.ListenPacket("udp4", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("start TURN server: %w", err)
		}
		_, port, _ := net.SplitHostPort(udp.LocalAddr().String())
		tcp, err := net.Listen("tcp4", net.JoinHostPort(host, port))
		if err == nil {
			return udp, tcp, nil
		}
		_ = udp.Close()
		if wantPort != "0" || attempt == portAttempts {
			return nil, nil, fmt.Errorf("start TURN server on tcp: %w", err)
		}
	}
}
