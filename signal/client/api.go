package client

import (
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/confab-sfu/confab/sfu/pionlog"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/transport/v5"
	"github.com/pion/webrtc/v4"
)

// APIOptions configure the pion API of Go peers.
type APIOptions struct {
	// Loopback restricts ICE to "lo" with loopback candidates, no mDNS,
	// UDP4, and remote candidates limited to 127.0.0.0/8.
	Loopback bool
	// Net replaces the network stack (tests impair a link with it).
	Net transport.Net
	// Logger receives pion's own logs; nil discards them.
	Logger *slog.Logger
	// TCPOnly makes ICE use TCP only (active candidates), as a client on a
	// network that blocks UDP; the server must accept ICE over TCP.
	TCPOnly bool
	// ICETimeout is how long the media connection may hear nothing from
	// the server before it fails: half of it to "disconnected", the other
	// half to "failed" (0: pion's 5 s + 25 s). A Peer with Reconnect
	// rejoins when it fails.
	ICETimeout time.Duration
}

// NewAPI returns a pion API with the codecs and feedback a browser offers:
// Opus, VP8, H.264, VP9; NACK, PLI, REMB, TWCC feedback; simulcast header
// extensions; the microphone level extension.
func NewAPI(o APIOptions) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		return nil, fmt.Errorf("register codecs: %w", err)
	}
	// Browsers send their microphone level; SFUs pick the active speaker from it.
	if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: AudioLevelURI}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, fmt.Errorf("register audio level: %w", err)
	}
	if o.Logger == nil {
		// pion's own default prints to stderr; a library must not.
		o.Logger = slog.New(slog.DiscardHandler)
	}
	// The interceptors log through their own factory: hundreds of peers
	// closing would otherwise print pion's closed-pipe errors.
	lf := pionlog.Factory(o.Logger)
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptorsWithOptions(m, ir, webrtc.WithInterceptorLoggerFactory(lf)); err != nil {
		return nil, fmt.Errorf("register interceptors: %w", err)
	}
	se := webrtc.SettingEngine{LoggerFactory: lf}
	if o.Loopback {
		se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
		se.SetIncludeLoopbackCandidate(true)
		se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
		se.SetRemoteIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	}
	if o.TCPOnly {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP4})
	}
	if o.Net != nil {
		se.SetNet(o.Net)
	}
	if o.ICETimeout > 0 {
		half := o.ICETimeout / 2
		se.SetICETimeouts(half, half, min(2*time.Second, o.ICETimeout/4))
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)), nil
}

// AudioLevelURI is the RTP header extension that carries a microphone's level.
const AudioLevelURI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"

// AudioLevelID returns the negotiated id of the audio level extension on a
// published audio sender, or 0.
func AudioLevelID(s *webrtc.RTPSender) uint8 {
	for _, e := range s.GetParameters().HeaderExtensions {
		if e.URI == AudioLevelURI {
			return uint8(e.ID)
		}
	}
	return 0
}
