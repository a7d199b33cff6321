package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/confab-sfu/confab/signal/client"
	"github.com/pion/webrtc/v4"
)

// checkICE connects a data channel to the server's check endpoint over one
// transport (udp, tcp, or relay through servers) and times an echo.
func checkICE(ctx context.Context, o checkOptions, transport string, servers []webrtc.ICEServer) checkLine {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	opts := o.api
	opts.TCPOnly = transport == "tcp"
	api, err := client.NewAPI(opts)
	if err != nil {
		return checkLine{text: err.Error()}
	}
	cfg := webrtc.Configuration{ICEServers: servers}
	if transport == "relay" {
		cfg.ICETransportPolicy = webrtc.ICETransportPolicyRelay
	}
	pc, err := api.NewPeerConnection(cfg)
	if err != nil {
		return checkLine{text: err.Error()}
	}
	defer pc.Close()
	echo, err := echoChannel(pc)
	if err != nil {
		return checkLine{text: err.Error()}
	}
	offer, err := gatheredOffer(ctx, pc)
	if err != nil {
		return checkLine{text: err.Error()}
	}
	if transport == "relay" && !strings.Contains(offer, " typ relay") {
		return checkLine{text: fmt.Sprintf("no relay from %s: it refused the credentials Confab handed out (its secret differs from -turn-secret) or cannot be reached", servers[0].URLs[0])}
	}
	status, answer, err := postCheckOffer(ctx, o.base, transport, offer)
	switch {
	case err != nil:
		return checkLine{text: err.Error()}
	case status == http.StatusTooManyRequests:
		return checkLine{text: "too many checks from this address: wait a minute"}
	case status != http.StatusCreated:
		return checkLine{text: fmt.Sprintf("the server refused the check: %d %s", status, strings.TrimSpace(answer))}
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return checkLine{text: err.Error()}
	}
	select {
	case rtt := <-echo:
		return checkLine{ok: true, text: fmt.Sprintf("works (%d ms round trip)", rtt.Milliseconds())}
	case <-ctx.Done():
		return checkLine{text: fmt.Sprintf("no connection within %v: packets do not get through", o.timeout)}
	}
}

// echoChannel opens the check's data channel; once open it sends one
// message, and the returned channel gets the round trip of its echo.
func echoChannel(pc *webrtc.PeerConnection) (<-chan time.Duration, error) {
	dc, err := pc.CreateDataChannel("check", nil)
	if err != nil {
		return nil, err
	}
	echo := make(chan time.Duration, 1)
	var mu sync.Mutex
	var sent time.Time
	dc.OnOpen(func() {
		mu.Lock()
		sent = time.Now()
		mu.Unlock()
		_ = dc.SendText("confab check")
	})
	dc.OnMessage(func(webrtc.DataChannelMessage) {
		mu.Lock()
		rtt := time.Since(sent)
		mu.Unlock()
		select {
		case echo <- rtt:
		default:
		}
	})
	return echo, nil
}

// gatheredOffer sets an offer and returns it with every candidate.
func gatheredOffer(ctx context.Context, pc *webrtc.PeerConnection) (string, error) {
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return "", err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return "", err
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return "", fmt.Errorf("gathering candidates: %w", ctx.Err())
	}
	return pc.LocalDescription().SDP, nil
}

func postCheckOffer(ctx context.Context, base, transport, offer string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/check/ice?transport="+transport, strings.NewReader(offer))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/sdp")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("POST /check/ice: %w", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	return res.StatusCode, string(body), err
}
