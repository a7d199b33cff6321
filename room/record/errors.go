package record

import "errors"

var (
	// ErrUnsupportedCodec means a track's mime type is not one the recorder
	// can write (Opus audio; VP8, VP9, AV1 or H.264 video).
	ErrUnsupportedCodec = errors.New("record: unsupported codec")
	// ErrNoTracks means a Recorder was asked for with neither video nor audio.
	ErrNoTracks = errors.New("record: a recorder needs a video or an audio track")
	// ErrClosed means the Recording or Recorder was already closed.
	ErrClosed = errors.New("record: closed")
	// ErrBadParams means a required parameter was missing or invalid.
	ErrBadParams = errors.New("record: bad parameters")
	// ErrBadManifest means a manifest could not be read or makes no sense.
	ErrBadManifest = errors.New("record: bad manifest")
)
