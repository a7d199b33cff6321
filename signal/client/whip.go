package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/confab-sfu/confab/signal"
	"github.com/pion/webrtc/v4"
)

// deleteTimeout bounds the DELETE that ends a WHIP or WHEP session.
const deleteTimeout = 5 * time.Second

// maxAnswer bounds the answer a WHIP or WHEP server may send.
const maxAnswer = 1 << 20

// HTTPSession is a WHIP publisher or WHEP viewer (RFC 9725 and the WHEP
// draft): one POST of a complete offer, the answer in the 201, DELETE on
// its Location to stop.
type HTTPSession struct {
	pc       *webrtc.PeerConnection
	location string // absolute: resolved against the endpoint
	token    string // the bearer token the session was created with
	onKey    atomic.Pointer[func(*webrtc.RTPSender)]

	wg       sync.WaitGroup // RTCP readers
	once     sync.Once
	closeErr error
}

// PeerConnection is the session's connection.
func (s *HTTPSession) PeerConnection() *webrtc.PeerConnection { return s.pc }

// Location is the session's resource URL.
func (s *HTTPSession) Location() string { return s.location }

// OnKeyframeRequest sets the function called when the server asks one of
// a WHIP session's senders for a keyframe.
func (s *HTTPSession) OnKeyframeRequest(f func(*webrtc.RTPSender)) { s.onKey.Store(&f) }

// NewStamper is Peer.NewStamper for a simulcast sender of a WHIP session.
func (s *HTTPSession) NewStamper(sender *webrtc.RTPSender) (*Stamper, error) {
	return newStamper(s.pc, sender)
}

// endpointURL is base/kind/room.
func endpointURL(base, kind, room string) string {
	return strings.TrimRight(base, "/") + "/" + kind + "/" + url.PathEscape(room)
}

// Watch starts a WHEP viewer of room at the server baseURL: one audio and
// one video track, each handed to onTrack (which may be nil). token, if
// not empty, is sent as a bearer token, also on the DELETE of Close.
func Watch(ctx context.Context, api *webrtc.API, baseURL, room, token string, onTrack func(*RemoteTrack)) (*HTTPSession, error) {
	pc, err := api.NewPeerConnection(webrtc.Configuration{BundlePolicy: webrtc.BundlePolicyMaxBundle})
	if err != nil {
		return nil, fmt.Errorf("create peer connection: %w", err)
	}
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			_ = pc.Close()
			return nil, fmt.Errorf("add %s transceiver: %w", k, err)
		}
	}
	s := &HTTPSession{pc: pc, token: token}
	pc.OnTrack(func(t *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
		readReceiverRTCP(&s.wg, r)
		if onTrack != nil {
			onTrack(&RemoteTrack{Info: signal.Track{ID: t.ID(), Kind: t.Kind().String()}, Track: t, Receiver: r})
		}
	})
	if err := s.negotiate(ctx, endpointURL(baseURL, "whep", room)); err != nil {
		_ = pc.Close()
		s.wg.Wait()
		return nil, err
	}
	return s, nil
}

// PublishWHIP publishes into room at the server baseURL over WHIP: each
// group of tracks is one send-only section (several tracks with RIDs,
// lowest first, make one simulcast track). It returns the groups' senders
// in order. token, if not empty, is sent as a bearer token, also on the
// DELETE of Close.
func PublishWHIP(ctx context.Context, api *webrtc.API, baseURL, room, token string, groups ...[]webrtc.TrackLocal) (*HTTPSession, []*webrtc.RTPSender, error) {
	pc, err := api.NewPeerConnection(webrtc.Configuration{BundlePolicy: webrtc.BundlePolicyMaxBundle})
	if err != nil {
		return nil, nil, fmt.Errorf("create peer connection: %w", err)
	}
	s := &HTTPSession{pc: pc, token: token}
	fail := func(err error) (*HTTPSession, []*webrtc.RTPSender, error) {
		_ = pc.Close()
		s.wg.Wait()
		return nil, nil, err
	}
	var senders []*webrtc.RTPSender
	for _, g := range groups {
		if len(g) == 0 {
			return fail(ErrNoTrack)
		}
		t, err := pc.AddTransceiverFromTrack(g[0], webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			return fail(fmt.Errorf("add transceiver: %w", err))
		}
		for _, extra := range g[1:] {
			if err := t.Sender().AddEncoding(extra); err != nil {
				return fail(fmt.Errorf("add simulcast encoding %s: %w", extra.RID(), err))
			}
		}
		sender := t.Sender()
		senders = append(senders, sender)
		readKeyframeRequests(&s.wg, sender, func() {
			if f := s.onKey.Load(); f != nil {
				(*f)(sender)
			}
		})
	}
	if err := s.negotiate(ctx, endpointURL(baseURL, "whip", room)); err != nil {
		return fail(err)
	}
	return s, senders, nil
}

// negotiate posts the session's complete offer to endpoint and applies
// the answer. A session the server created but that could not be set up
// here is deleted again.
func (s *HTTPSession) negotiate(ctx context.Context, endpoint string) error {
	offer, err := s.pc.CreateOffer(nil)
	if err != nil {
		return fmt.Errorf("create offer: %w", err)
	}
	gathered := webrtc.GatheringCompletePromise(s.pc)
	if err := s.pc.SetLocalDescription(offer); err != nil {
		return fmt.Errorf("set offer: %w", err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return fmt.Errorf("gathering candidates: %w", ctx.Err())
	}
	answer, err := s.post(ctx, endpoint, s.pc.LocalDescription().SDP)
	if err != nil {
		return err
	}
	if err := s.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		_ = s.delete()
		return fmt.Errorf("apply answer: %w", err)
	}
	return nil
}

// post sends the offer, keeps the session's Location and returns the answer.
func (s *HTTPSession) post(ctx context.Context, endpoint, offer string) (string, error) {
	base, err := url.Parse(endpoint)
	if err != nil {
		return "", fmt.Errorf("endpoint: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(offer))
	if err != nil {
		return "", fmt.Errorf("endpoint: %w", err)
	}
	req.Header.Set("Content-Type", "application/sdp")
	s.authorize(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("post offer: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return "", fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("post offer: %w", &HTTPStatusError{resp.StatusCode, string(body)})
	}
	raw := resp.Header.Get("Location")
	loc, err := url.Parse(raw)
	if raw == "" || err != nil {
		return "", ErrNoLocation
	}
	s.location = base.ResolveReference(loc).String()
	return string(body), nil
}

func (s *HTTPSession) authorize(req *http.Request) {
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
}

// delete ends the session on the server: DELETE on its Location, with the
// token it was created with (RFC 9725 section 4.2).
func (s *HTTPSession) delete() error {
	ctx, cancel := context.WithTimeout(context.Background(), deleteTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, s.location, nil)
	if err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	s.authorize(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("delete session: %w", &HTTPStatusError{resp.StatusCode, string(body)})
	}
	return nil
}

// Close ends the session: DELETE on its resource, then the connection. It
// returns what failed of the two; later calls return the same.
func (s *HTTPSession) Close() error {
	s.once.Do(func() {
		derr := s.delete()
		var perr error
		if err := s.pc.Close(); err != nil {
			perr = fmt.Errorf("close peer connection: %w", err)
		}
		s.wg.Wait()
		s.closeErr = errors.Join(derr, perr)
	})
	return s.closeErr
}
