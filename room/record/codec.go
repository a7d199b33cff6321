package record

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/at-wat/ebml-go/webm"
)

// Codec describes a track's negotiated codec, as the SDP said it.
type Codec struct {
	MimeType  string // "audio/opus", "video/VP8", "video/VP9", "video/AV1", "video/H264"
	ClockRate uint32 // RTP clock rate in Hz
	Channels  uint16 // audio channels (Opus in WebRTC says 2)
	Fmtp      string // the a=fmtp line's parameters; informational
}

// Source says what a Recorder records: a camera with its microphone, or a
// shared screen with its audio.
type Source string

// The sources a participant can publish.
const (
	SourceCamera Source = "camera"
	SourceScreen Source = "screen"
)

// codecKind is a codec the recorder can write.
type codecKind int

const (
	kindOpus codecKind = iota + 1
	kindVP8
	kindVP9
	kindAV1
	kindH264
)

// kindOf maps a mime type to a codecKind; video says which kind of track
// asks, so that "audio/VP8" is refused.
func kindOf(c *Codec, video bool) (codecKind, error) {
	if c.ClockRate == 0 {
		return 0, fmt.Errorf("%w: %s has no clock rate", ErrBadParams, c.MimeType)
	}
	var k codecKind
	switch strings.ToLower(c.MimeType) {
	case "audio/opus":
		k = kindOpus
	case "video/vp8":
		k = kindVP8
	case "video/vp9":
		k = kindVP9
	case "video/av1":
		k = kindAV1
	case "video/h264":
		k = kindH264
	default:
		return 0, fmt.Errorf("%w: %q", ErrUnsupportedCodec, c.MimeType)
	}
	if (k != kindOpus) != video {
		return 0, fmt.Errorf("%w: %q on the wrong kind of track", ErrUnsupportedCodec, c.MimeType)
	}
	return k, nil
}

// matroskaID is the Matroska CodecID of a kind.
func (k codecKind) matroskaID() string {
	return [...]string{kindOpus: "A_OPUS", kindVP8: "V_VP8", kindVP9: "V_VP9", kindAV1: "V_AV1", kindH264: "V_MPEG4/ISO/AVC"}[k]
}

// webmAllowed says whether WebM may hold the codec; H.264 needs Matroska.
func (k codecKind) webmAllowed() bool { return k != kindH264 }

// Track numbers inside a file: video first, as players list it.
const (
	videoTrackNumber = 1
	audioTrackNumber = 2
)

// Opus in Matroska: RTP carries no pre-skip (a WebRTC receiver plays
// every decoded sample), so the header says 0 and the samples stay where
// their RTP timestamps put them, in step with the video. The 80 ms
// pre-roll is what the WebM spec asks for.
const opusSeekPreRoll = 80_000_000 // ns

// opusHead is the CodecPrivate of an Opus track (RFC 7845 section 5.1).
func opusHead(channels uint16) []byte {
	if channels != 1 {
		channels = 2
	}
	b := make([]byte, 19)
	copy(b, "OpusHead")
	b[8] = 1 // version
	b[9] = byte(channels)
	// b[10:12]: pre-skip 0
	binary.LittleEndian.PutUint32(b[12:], 48000) // input rate, informational
	// output gain 0, channel mapping family 0
	return b
}

// audioEntry is the Matroska track entry of an Opus track.
func audioEntry(c *Codec) webm.TrackEntry {
	ch := uint64(2)
	if c.Channels == 1 {
		ch = 1
	}
	return webm.TrackEntry{
		Name: "audio", TrackNumber: audioTrackNumber, TrackUID: audioTrackNumber,
		CodecID: kindOpus.matroskaID(), CodecPrivate: opusHead(c.Channels),
		SeekPreRoll: opusSeekPreRoll,
		TrackType:   2, // audio
		Audio:       &webm.Audio{SamplingFrequency: 48000, Channels: ch},
	}
}

// videoEntry is the Matroska track entry of a video track whose first
// keyframe gave its size and, for H.264 and AV1, its CodecPrivate.
func videoEntry(k codecKind, width, height int, private []byte) webm.TrackEntry {
	return webm.TrackEntry{
		Name: "video", TrackNumber: videoTrackNumber, TrackUID: videoTrackNumber,
		CodecID: k.matroskaID(), CodecPrivate: private,
		TrackType: 1, // video
		Video:     &webm.Video{PixelWidth: uint64(width), PixelHeight: uint64(height)},
	}
}
