package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/confab-sfu/confab/signal"
	"github.com/pion/webrtc/v4"
)

// HTTPSession is a WHIP publisher or WHEP viewer (RFC 9725 and the WHEP
// draft): one POST of a complete offer, the answer in the 201, DELETE on
// its Location to stop.
type HTTPSession struct {
	pc       *webrtc.PeerConnection
	location string
	token    string // sent again on DELETE: the server requires the creating token
	once     sync.Once
}

// PeerConnection is the session's connection.
func (s *HTTPSession) PeerConnection() *webrtc.PeerConnection { return s.pc }

// Location is the session's resource URL.
func (s *HTTPSession) Location() string { return s.location }

// HTTPStatusError is a refused WHIP/WHEP request.
type HTTPStatusError struct {
	Status int
	Body   string
}

func (e *HTTPStatusError) Error() string {
	return fmt.Sprintf("HTTP %d: %s", e.Status, strings.TrimSpace(e.Body))
}

// negotiateHTTP posts pc's complete offer to endpoint and applies the
// answer.
func negotiateHTTP(ctx context.Context, pc *webrtc.PeerConnection, endpoint, token string) (*HTTPSession, error) {
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return nil, fmt.Errorf("create offer: %w", err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return nil, fmt.Errorf("set offer: %w", err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(pc.LocalDescription().SDP))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/sdp")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusCreated {
		return nil, &HTTPStatusError{resp.StatusCode, string(body)}
	}
	base, _ := url.Parse(endpoint)
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.Header.Get("Location") == "" {
		return nil, errors.New("201 without a Location")
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(body)}); err != nil {
		return nil, fmt.Errorf("apply answer: %w", err)
	}
	return &HTTPSession{pc: pc, location: base.ResolveReference(loc).String(), token: token}, nil
}

// endpointURL is base/kind/room.
func endpointURL(base, kind, room string) string {
	return strings.TrimRight(base, "/") + "/" + kind + "/" + url.PathEscape(room)
}

// Watch starts a WHEP viewer of room: one audio and one video track, each
// handed to onTrack.
func Watch(ctx context.Context, api *webrtc.API, baseURL, room, token string, onTrack func(*RemoteTrack)) (*HTTPSession, error) {
	pc, err := api.NewPeerConnection(webrtc.Configuration{BundlePolicy: webrtc.BundlePolicyMaxBundle})
	if err != nil {
		return nil, err
	}
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			_ = pc.Close()
			return nil, err
		}
	}
	pc.OnTrack(func(t *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
		if onTrack != nil {
			onTrack(&RemoteTrack{Info: signal.Track{ID: t.ID(), Kind: t.Kind().String()}, Track: t, Receiver: r})
		}
	})
	s, err := negotiateHTTP(ctx, pc, endpointURL(baseURL, "whep", room), token)
	if err != nil {
		_ = pc.Close()
		return nil, err
	}
	return s, nil
}

// PublishWHIP publishes tracks into room over WHIP (each track its own
// send-only section; several tracks with RIDs make one simulcast track
// when passed as one group).
func PublishWHIP(ctx context.Context, api *webrtc.API, baseURL, room, token string, groups ...[]webrtc.TrackLocal) (*HTTPSession, []*webrtc.RTPSender, error) {
	pc, err := api.NewPeerConnection(webrtc.Configuration{BundlePolicy: webrtc.BundlePolicyMaxBundle})
	if err != nil {
		return nil, nil, err
	}
	var senders []*webrtc.RTPSender
	for _, g := range groups {
		t, err := pc.AddTransceiverFromTrack(g[0], webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			_ = pc.Close()
			return nil, nil, err
		}
		for _, extra := range g[1:] {
			if err := t.Sender().AddEncoding(extra); err != nil {
				_ = pc.Close()
				return nil, nil, err
			}
		}
		senders = append(senders, t.Sender())
	}
	s, err := negotiateHTTP(ctx, pc, endpointURL(baseURL, "whip", room), token)
	if err != nil {
		_ = pc.Close()
		return nil, nil, err
	}
	return s, senders, nil
}

// Close ends the session: DELETE on its resource, then the connection.
func (s *HTTPSession) Close() error {
	var err error
	s.once.Do(func() {
		req, rerr := http.NewRequest(http.MethodDelete, s.location, nil)
		if rerr == nil {
			if s.token != "" {
				req.Header.Set("Authorization", "Bearer "+s.token)
			}
			resp, derr := http.DefaultClient.Do(req)
			if derr == nil {
				resp.Body.Close()
			}
		}
		err = s.pc.Close()
	})
	return err
}
