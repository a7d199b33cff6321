package record

import "sync"

// frame is one encoded audio or video frame on its way to the writer.
// Frames are pooled: the live path fills one, the writer returns it.
type frame struct {
	track  int   // videoTrackNumber or audioTrackNumber
	pts    int64 // ns on the recording's clock
	key    bool
	width  int    // video keyframes: the picture size
	height int    //
	config []byte // H.264/AV1 keyframes: CodecPrivate (shared, never written to)
	data   []byte
}

// maxPooledFrame is the largest buffer kept for reuse: a high-layer VP8
// keyframe is ~100 KB; rare larger frames are left to the collector.
const maxPooledFrame = 1 << 20

var framePool = sync.Pool{New: func() any { return &frame{data: make([]byte, 0, 16<<10)} }}

func getFrame() *frame {
	f := framePool.Get().(*frame)
	f.data = f.data[:0]
	return f
}

func putFrame(f *frame) {
	if f == nil || cap(f.data) > maxPooledFrame {
		return
	}
	f.config = nil
	f.key, f.width, f.height = false, 0, 0
	framePool.Put(f)
}
