package sfu

import (
	"fmt"
	"strings"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Header extension URIs the server understands.
const (
	audioLevelURI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
)

// videoFeedback is what every video codec negotiates: NACK repair, keyframe
// requests, and both bandwidth feedback forms (TWCC preferred, REMB fallback).
var videoFeedback = []webrtc.RTCPFeedback{
	{Type: webrtc.TypeRTCPFBNACK},
	{Type: webrtc.TypeRTCPFBNACK, Parameter: "pli"},
	{Type: webrtc.TypeRTCPFBCCM, Parameter: "fir"},
	{Type: webrtc.TypeRTCPFBGoogREMB},
	{Type: webrtc.TypeRTCPFBTransportCC},
}

// registerCodecs offers Opus for audio and VP8, H.264, VP9 and AV1 for video,
// in that order of preference. Payload types follow the common browser choices
// so that SDPs stay familiar in logs.
func registerCodecs(m *webrtc.MediaEngine) error {
	audio := []webrtc.RTPCodecParameters{{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
			SDPFmtpLine: "minptime=10;useinbandfec=1", RTCPFeedback: []webrtc.RTCPFeedback{{Type: webrtc.TypeRTCPFBTransportCC}}},
		PayloadType: 111,
	}}
	for _, c := range audio {
		if err := m.RegisterCodec(c, webrtc.RTPCodecTypeAudio); err != nil {
			return fmt.Errorf("register %s: %w", c.MimeType, err)
		}
	}
	video := []webrtc.RTPCodecParameters{
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: videoFeedback}, PayloadType: 96},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f", RTCPFeedback: videoFeedback}, PayloadType: 102},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f", RTCPFeedback: videoFeedback}, PayloadType: 108},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640032", RTCPFeedback: videoFeedback}, PayloadType: 112},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP9, ClockRate: 90000,
			SDPFmtpLine: "profile-id=0", RTCPFeedback: videoFeedback}, PayloadType: 98},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeAV1, ClockRate: 90000, RTCPFeedback: videoFeedback}, PayloadType: 45},
	}
	for _, c := range video {
		if err := m.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			return fmt.Errorf("register %s (payload type %d): %w", c.MimeType, c.PayloadType, err)
		}
	}
	// Header extension ids are given in registration order (1, 2, ...). The
	// order below reproduces Chrome's own ids, because Chrome refuses an
	// offer of its own whose BUNDLE group uses one id for two extensions:
	// when the server offers first with other ids, the browser could never
	// publish afterwards.
	exts := []struct {
		uri  string
		kind webrtc.RTPCodecType
	}{
		{audioLevelURI, webrtc.RTPCodecTypeAudio},                                                            // 1
		{"http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time", webrtc.RTPCodecTypeAudio},             // 2
		{"http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time", webrtc.RTPCodecTypeVideo},             // 2
		{sdp.TransportCCURI, webrtc.RTPCodecTypeAudio},                                                       // 3
		{sdp.TransportCCURI, webrtc.RTPCodecTypeVideo},                                                       // 3
		{sdp.SDESMidURI, webrtc.RTPCodecTypeAudio},                                                           // 4
		{sdp.SDESMidURI, webrtc.RTPCodecTypeVideo},                                                           // 4
		{"http://www.webrtc.org/experiments/rtp-hdrext/playout-delay", webrtc.RTPCodecTypeVideo},             // 5
		{"http://www.webrtc.org/experiments/rtp-hdrext/video-content-type", webrtc.RTPCodecTypeVideo},        // 6
		{"http://www.webrtc.org/experiments/rtp-hdrext/video-timing", webrtc.RTPCodecTypeVideo},              // 7
		{"http://www.webrtc.org/experiments/rtp-hdrext/color-space", webrtc.RTPCodecTypeVideo},               // 8
		{"http://www.webrtc.org/experiments/rtp-hdrext/video-layers-allocation00", webrtc.RTPCodecTypeVideo}, // 9
		{sdp.SDESRTPStreamIDURI, webrtc.RTPCodecTypeVideo},                                                   // 10
		{sdp.SDESRepairRTPStreamIDURI, webrtc.RTPCodecTypeVideo},                                             // 11
	}
	for _, e := range exts {
		if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: e.uri}, e.kind); err != nil {
			return fmt.Errorf("register header extension %s: %w", e.uri, err)
		}
	}
	return nil
}

// matchCodec picks, among the codecs a subscriber negotiated, the one that
// carries the publisher's codec unchanged: same MIME type and, for H.264, the
// same packetization mode and profile.
func matchCodec(src webrtc.RTPCodecParameters, offered []webrtc.RTPCodecParameters) (webrtc.RTPCodecParameters, bool) {
	var fallback *webrtc.RTPCodecParameters
	for i := range offered {
		c := offered[i]
		if !strings.EqualFold(c.MimeType, src.MimeType) {
			continue
		}
		if !strings.EqualFold(src.MimeType, webrtc.MimeTypeH264) {
			return c, true
		}
		if fmtpValue(c.SDPFmtpLine, "packetization-mode") != fmtpValue(src.SDPFmtpLine, "packetization-mode") {
			continue
		}
		if strings.EqualFold(profileOf(c.SDPFmtpLine), profileOf(src.SDPFmtpLine)) {
			return c, true
		}
		if fallback == nil {
			fallback = &offered[i]
		}
	}
	if fallback != nil {
		return *fallback, true
	}
	return webrtc.RTPCodecParameters{}, false
}

// profileOf returns the profile part (first 4 hex digits) of an H.264
// profile-level-id; the level may differ between peers.
func profileOf(fmtp string) string {
	v := fmtpValue(fmtp, "profile-level-id")
	if len(v) >= 4 {
		return v[:4]
	}
	return v
}

func fmtpValue(fmtp, key string) string {
	for _, kv := range strings.Split(fmtp, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if ok && strings.EqualFold(k, key) {
			return v
		}
	}
	if strings.EqualFold(key, "packetization-mode") {
		return "0"
	}
	return ""
}
