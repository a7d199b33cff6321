package sfu

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/confab-sfu/confab/sfu/pionlog"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/transport/v5"
	"github.com/pion/webrtc/v4"
)

// Config holds the media plane's network and feedback settings.
type Config struct {
	// Loopback restricts ICE to the "lo" interface with loopback candidates,
	// no mDNS, UDP4 only, and remote candidates limited to 127.0.0.0/8. Tests
	// and the load tool on one machine use it.
	Loopback bool
	// Interfaces, when set, are the only interface names ICE gathers on.
	// Otherwise virtual interfaces of container runtimes are skipped.
	Interfaces []string
	// IncludeLoopback adds loopback candidates (off by default, as in pion).
	IncludeLoopback bool
	// AllowedCIDRs limits the remote candidates the server accepts and the
	// addresses it answers ICE checks from; empty means all.
	AllowedCIDRs []netip.Prefix
	// MDNS gathers and resolves .local candidates.
	MDNS bool
	// UDPPort, when non-zero, carries all ICE traffic on one UDP port (ICE UDP mux).
	UDPPort int
	// NoUDPBatch sends each packet on the UDP port with its own system call
	// instead of batching them (sendmmsg); for comparison and debugging.
	NoUDPBatch bool
	// Net replaces the network stack of the media sockets (the UDP port,
	// per-peer UDP sockets); nil is the operating system's. Tests give a
	// server whose UDP drops every packet, as behind a firewall.
	Net transport.Net
	// PortMin and PortMax bound the ephemeral UDP ports when UDPPort is zero.
	PortMin, PortMax uint16
	// TCPPort, when non-zero, also accepts ICE over TCP on this one port
	// (ICE-TCP mux), for clients on networks that block UDP.
	TCPPort int
	// ConnectTimeout is how long a peer may take, from its first offer or
	// answer, to connect its media; then it is failed (default 30 s).
	ConnectTimeout time.Duration
	// NAT1To1IPs are public addresses advertised as host candidates (NAT 1:1).
	NAT1To1IPs []string
	// KeyframeInterval is the least time between two keyframe requests the
	// server sends upstream for one layer (default 500 ms).
	KeyframeInterval time.Duration
	// Logger receives the media plane's logs (default slog.Default()).
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Loopback {
		c.Interfaces = []string{"lo"}
		c.IncludeLoopback = true
		c.MDNS = false
		if len(c.AllowedCIDRs) == 0 {
			c.AllowedCIDRs = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
		}
	}
	if c.KeyframeInterval <= 0 {
		c.KeyframeInterval = 500 * time.Millisecond
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// virtualInterfacePrefixes name the interfaces that container runtimes and
// hypervisors create by the dozen; gathering on them burns CPU and yields
// candidates nobody can reach.
var virtualInterfacePrefixes = []string{"docker", "br-", "veth", "virbr", "cni", "flannel", "cali", "vxlan", "tun", "tap", "kube", "lxc", "lxd", "podman", "weave", "zt"}

// AllowsInterface reports whether ICE gathers candidates on the named interface.
func (c *Config) AllowsInterface(name string) bool {
	if len(c.Interfaces) > 0 {
		for _, n := range c.Interfaces {
			if n == name {
				return true
			}
		}
		return false
	}
	for _, p := range virtualInterfacePrefixes {
		if strings.HasPrefix(name, p) {
			return false
		}
	}
	return true
}

// AllowsAddr reports whether a remote address is inside the allowed networks.
func (c *Config) AllowsAddr(ip netip.Addr) bool {
	if len(c.AllowedCIDRs) == 0 {
		return true
	}
	ip = ip.Unmap()
	for _, p := range c.AllowedCIDRs {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// ParseCIDRs parses a comma-separated list of networks; a bare address is a
// single-host network.
func ParseCIDRs(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, fmt.Errorf("parse network %q: %w", f, err)
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("parse network %q: %w", f, err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// srtpReplayWindow is how far behind the newest packet a retransmission
// may arrive and still be accepted, in packets.
const srtpReplayWindow = 1024

// newAPI builds the pion API: codecs, header extensions, and only the
// interceptors the server needs. NACKs from subscribers are answered from the
// Receiver's shared cache, so pion's NACK responder is not registered.
func newAPI(cfg *Config, udpMux ice.UDPMux, tcpMux ice.TCPMux) (*apiParts, error) {
	m := &webrtc.MediaEngine{}
	if err := registerCodecs(m); err != nil {
		return nil, fmt.Errorf("register codecs: %w", err)
	}
	ir, err := newInterceptors(cfg)
	if err != nil {
		return nil, err
	}
	se, err := newSettingEngine(cfg, udpMux, tcpMux)
	if err != nil {
		return nil, err
	}
	return &apiParts{media: m, interceptors: ir, settings: se,
		shared: webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))}, nil
}

// apiParts are what the engine's PeerConnections are built from: one
// shared API, and the parts to build one per peer that captures its SRTP
// keys (direct.go). pion copies the media engine and builds the
// interceptors per PeerConnection, so the parts can be shared.
type apiParts struct {
	media        *webrtc.MediaEngine
	interceptors *interceptor.Registry
	settings     webrtc.SettingEngine
	shared       *webrtc.API
}

// withKeyCapture returns an API whose PeerConnections report their DTLS
// handshake to k. The server answers as the DTLS server, so that it knows
// the ServerHello and can derive the keys it sends with.
func (a *apiParts) withKeyCapture(k *keyCapture) *webrtc.API {
	se := a.settings
	se.SetDTLSServerHelloMessageHook(k.serverHello)
	se.SetDTLSKeyLogWriter(k)
	return webrtc.NewAPI(webrtc.WithMediaEngine(a.media), webrtc.WithInterceptorRegistry(a.interceptors), webrtc.WithSettingEngine(se))
}

// newInterceptors registers the RTCP machinery toward publishers only:
// NACKs, receiver reports and TWCC feedback for what they send. Nothing
// is registered on the send side: pion's interceptors there cost a third
// of a lecture's CPU (a map and a list per packet in the congestion
// controller's feedback adapter). Forwarded packets are numbered, their
// feedback read and their sender reports written by Confab itself
// (path.go, downtrack.go, reports.go).
func newInterceptors(cfg *Config) (*interceptor.Registry, error) {
	ir := &interceptor.Registry{}
	// Interceptors log through slog too (peers leaving would otherwise print
	// pion's closed-pipe errors to stderr).
	lf := pionlog.Factory(cfg.Logger)
	// NACK lost packets from publishers.
	gen, err := nack.NewGeneratorInterceptor(nack.WithGeneratorLoggerFactory(lf))
	if err != nil {
		return nil, fmt.Errorf("nack generator: %w", err)
	}
	ir.Add(gen)
	// Receiver reports to publishers.
	rr, err := report.NewReceiverInterceptor(report.WithReceiverLoggerFactory(lf))
	if err != nil {
		return nil, fmt.Errorf("receiver reports: %w", err)
	}
	ir.Add(rr)
	// TWCC feedback to publishers so their browsers run their own congestion control.
	twccGen, err := twcc.NewSenderInterceptor(twcc.WithLoggerFactory(lf))
	if err != nil {
		return nil, fmt.Errorf("twcc feedback: %w", err)
	}
	ir.Add(twccGen)
	return ir, nil
}

// newSettingEngine applies the network settings: interfaces, candidate
// types, allowed remote networks, shared ports, timeouts.
func newSettingEngine(cfg *Config, udpMux ice.UDPMux, tcpMux ice.TCPMux) (webrtc.SettingEngine, error) {
	se := webrtc.SettingEngine{}
	se.LoggerFactory = pionlog.Factory(cfg.Logger)
	se.SetInterfaceFilter(cfg.AllowsInterface)
	se.SetIncludeLoopbackCandidate(cfg.IncludeLoopback)
	if cfg.MDNS {
		se.SetICEMulticastDNSMode(ice.MulticastDNSModeQueryAndGather)
	} else {
		se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	}
	networks := []webrtc.NetworkType{webrtc.NetworkTypeUDP4}
	if !cfg.Loopback {
		networks = append(networks, webrtc.NetworkTypeUDP6)
	}
	if tcpMux != nil {
		se.SetICETCPMux(tcpMux)
		networks = append(networks, webrtc.NetworkTypeTCP4)
	}
	se.SetNetworkTypes(networks)
	if len(cfg.AllowedCIDRs) > 0 {
		se.SetRemoteIPFilter(func(ip net.IP) bool {
			a, ok := netip.AddrFromSlice(ip)
			return ok && cfg.AllowsAddr(a)
		})
	}
	if udpMux != nil {
		se.SetICEUDPMux(udpMux)
	} else if cfg.PortMin != 0 || cfg.PortMax != 0 {
		if err := se.SetEphemeralUDPPortRange(cfg.PortMin, cfg.PortMax); err != nil {
			return se, fmt.Errorf("port range: %w", err)
		}
	}
	if len(cfg.NAT1To1IPs) > 0 {
		se.SetNAT1To1IPs(cfg.NAT1To1IPs, webrtc.ICECandidateTypeHost)
	}
	// Disconnected after 5 s of silence, failed after 15 s.
	se.SetICETimeouts(5*time.Second, 15*time.Second, 2*time.Second)
	// pion's default SRTP replay window is 64 packets: 250 ms of a 2.5 Mbit/s
	// screen share. A publisher's retransmission arriving later than that
	// would be dropped as a replay; 1024 covers a second or more of any track.
	se.SetSRTPReplayProtectionWindow(srtpReplayWindow)
	// As the answerer the server takes the DTLS server role (a=setup:passive),
	// as it does as the offerer with browsers: then it sends the ServerHello
	// and can derive its SRTP keys for the direct send path (direct.go).
	if err := se.SetAnsweringDTLSRole(webrtc.DTLSRoleServer); err != nil {
		return se, err
	}
	if cfg.Net != nil {
		se.SetNet(cfg.Net)
	}
	return se, nil
}

// Bandwidth estimate bounds, bit/s. The estimate starts high enough for a
// 720p camera's top layer, so a subscriber with room starts on it; the
// estimator (sfu/bwe) lowers it within a second or two where the link is
// narrower.
const (
	initialEstimate = 2_500_000
	minEstimate     = 50_000
	maxEstimate     = 20_000_000
)
