package sfu

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Connection checks (the /check page, `confab check`): a client offers a
// data channel only; the server answers with the candidates of one
// transport, with this engine's real ICE settings (the shared UDP and TCP
// ports), and echoes what arrives on the channel. Nothing is published or
// forwarded, and the PeerConnection closes after a short lifetime.

// Transports a check can be restricted to. A relay check keeps every
// server candidate: the client forces its own side through TURN.
const (
	CheckUDP   = "udp"
	CheckTCP   = "tcp"
	CheckRelay = "relay"
)

// Check errors.
var (
	// ErrCheckMedia refuses a check offer with audio or video sections.
	ErrCheckMedia = errors.New("a connection check offers a data channel only")
	// ErrCheckUnavailable: the server has no candidate of that transport
	// (ICE over TCP is not enabled).
	ErrCheckUnavailable = errors.New("this server does not offer that transport")
)

// checkEcho bounds what one check echoes: a few round trips, small ones.
const (
	checkEchoMessages = 20
	checkEchoBytes    = 1024
)

// AnswerCheck answers a check's offer for transport. The PeerConnection
// closes after lifetime (or once the client's connection fails or closes);
// done is closed then.
func (e *Engine) AnswerCheck(ctx context.Context, offer, transport string, lifetime time.Duration) (answer string, done <-chan struct{}, err error) {
	if transport != CheckUDP && transport != CheckTCP && transport != CheckRelay {
		return "", nil, fmt.Errorf("%w: unknown transport %q", ErrInvalidSDP, transport)
	}
	parsed := &sdp.SessionDescription{}
	if err := parsed.UnmarshalString(offer); err != nil {
		return "", nil, fmt.Errorf("parse offer: %w: %w", ErrInvalidSDP, err)
	}
	for _, m := range parsed.MediaDescriptions {
		if m.MediaName.Media != "application" {
			return "", nil, ErrCheckMedia
		}
	}
	api := e.checkAPIs[transport]
	if api == nil {
		return "", nil, ErrCheckUnavailable
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{BundlePolicy: webrtc.BundlePolicyMaxBundle, RTCPMuxPolicy: webrtc.RTCPMuxPolicyRequire})
	if err != nil {
		return "", nil, fmt.Errorf("create peer connection: %w", err)
	}
	closed := make(chan struct{})
	var once sync.Once
	end := func() { once.Do(func() { _ = pc.Close(); close(closed) }) }
	timer := time.AfterFunc(lifetime, end)
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateFailed || s == webrtc.PeerConnectionStateClosed {
			timer.Stop()
			go end()
		}
	})
	pc.OnDataChannel(echo)
	answer, err = answerCheck(ctx, pc, offer, transport)
	if err != nil {
		timer.Stop()
		end()
		return "", nil, err
	}
	return answer, closed, nil
}

// newCheckAPIs builds the pion APIs checks use: the engine's ICE settings
// and shared ports, restricted to one transport, so that a UDP check can
// only connect over UDP and a TCP check only over TCP (candidates left out
// of the answer would otherwise still be tried, from the server's side).
// Data channels only: no codecs or interceptors.
func newCheckAPIs(cfg *Config, udpMux ice.UDPMux, tcpMux ice.TCPMux) (map[string]*webrtc.API, error) {
	apis := map[string]*webrtc.API{}
	for _, tr := range []string{CheckUDP, CheckTCP, CheckRelay} {
		if tr == CheckTCP && tcpMux == nil {
			continue
		}
		se, err := newSettingEngine(cfg, udpMux, tcpMux)
		if err != nil {
			return nil, err
		}
		switch tr {
		case CheckUDP:
			networks := []webrtc.NetworkType{webrtc.NetworkTypeUDP4}
			if !cfg.Loopback {
				networks = append(networks, webrtc.NetworkTypeUDP6)
			}
			se.SetNetworkTypes(networks)
		case CheckTCP:
			se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP4})
		}
		apis[tr] = webrtc.NewAPI(webrtc.WithSettingEngine(se))
	}
	return apis, nil
}

// answerCheck applies the offer and returns the answer with every
// candidate gathered, restricted to transport.
func answerCheck(ctx context.Context, pc *webrtc.PeerConnection, offer, transport string) (string, error) {
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", fmt.Errorf("apply offer: %w: %w", ErrInvalidSDP, err)
	}
	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		return "", fmt.Errorf("create answer: %w: %w", ErrInvalidSDP, err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(ans); err != nil {
		return "", fmt.Errorf("set answer: %w: %w", ErrInvalidSDP, err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return "", fmt.Errorf("gather candidates: %w", ctx.Err())
	}
	out, kept := keepCandidates(pc.LocalDescription().SDP, transport)
	if kept == 0 {
		return "", ErrCheckUnavailable
	}
	return out, nil
}

// echo answers every message of a check's data channel with itself.
func echo(dc *webrtc.DataChannel) {
	var n int
	var mu sync.Mutex
	dc.OnMessage(func(m webrtc.DataChannelMessage) {
		mu.Lock()
		n++
		ok := n <= checkEchoMessages && len(m.Data) <= checkEchoBytes
		mu.Unlock()
		if ok {
			_ = dc.Send(m.Data)
		}
	})
}

// keepCandidates drops the a=candidate lines of other transports than
// transport (a relay check keeps them all) and counts those kept.
func keepCandidates(s, transport string) (string, int) {
	lines := strings.Split(s, "\r\n")
	out := lines[:0]
	kept := 0
	for _, l := range lines {
		if rest, ok := strings.CutPrefix(l, "a=candidate:"); ok {
			f := strings.Fields(rest)
			if len(f) < 3 || (transport != CheckRelay && !strings.EqualFold(f[2], transport)) {
				continue
			}
			kept++
		}
		out = append(out, l)
	}
	return strings.Join(out, "\r\n"), kept
}
