// Package clip loops short VP8 and Opus clips as a camera and a microphone
// would send them, for Go peers that need real media: the VP8 clip comes in
// three simulcast layers and answers keyframe requests, the Opus clip is in
// 20 ms packets. The clips are embedded (about 1 MB).
package clip

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
)

// The clips are made by media/generate.sh: a 4 s loop at 30 fps with a
// keyframe every 2 s, in three layers, and 4 s of Opus in 20 ms packets.
//
//go:embed media/video-low.ivf media/video-medium.ivf media/video-high.ivf media/audio.ogg
var mediaFS embed.FS

// layerFiles are the simulcast layers, lowest first, with their RIDs.
var layerFiles = []struct{ rid, file string }{
	{"l", "media/video-low.ivf"},
	{"m", "media/video-medium.ivf"},
	{"h", "media/video-high.ivf"},
}

// ErrNoLayer means a video source was asked for a layer the clip lacks.
var ErrNoLayer = errors.New("clip: no such video layer (0 low, 1 medium, 2 high)")

// videoFrame is one encoded VP8 frame of a clip.
type videoFrame struct {
	data []byte
	key  bool
}

// clips are the parsed clips, by layer, and the Opus packets.
type clips struct {
	video [][]videoFrame
	audio [][]byte
}

// loadClips parses the embedded clips once for every source of the process:
// they are read-only after that, and a copy per peer would cost a megabyte
// each.
var loadClips = sync.OnceValues(func() (*clips, error) {
	c := &clips{}
	for _, l := range layerFiles {
		frames, err := readIVF(l.file)
		if err != nil {
			return nil, err
		}
		c.video = append(c.video, frames)
	}
	audio, err := readOgg("media/audio.ogg")
	if err != nil {
		return nil, err
	}
	c.audio = audio
	return c, nil
})

func readIVF(name string) ([]videoFrame, error) {
	b, err := mediaFS.ReadFile(name)
	if err != nil {
		return nil, err
	}
	r, _, err := ivfreader.NewWith(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	var out []videoFrame
	for {
		f, _, err := r.ParseNextFrame()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		// VP8 frame tag: bit 0 clear marks a keyframe.
		out = append(out, videoFrame{data: f, key: len(f) > 0 && f[0]&0x01 == 0})
	}
	if len(out) == 0 || !out[0].key {
		return nil, fmt.Errorf("%s: clip must start with a keyframe", name)
	}
	return out, nil
}

func readOgg(name string) ([][]byte, error) {
	b, err := mediaFS.ReadFile(name)
	if err != nil {
		return nil, err
	}
	r, _, err := oggreader.NewWith(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	var out [][]byte
	for {
		page, _, err := r.ParseNextPage()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		if len(page) > 0 && !bytes.HasPrefix(page, []byte("OpusTags")) {
			out = append(out, page)
		}
	}
	return out, nil
}
