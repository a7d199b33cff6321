package record

// frame is one encoded audio or video frame on its way to the writer.
// Frames are reused: the live path fills one, the writer gives it back.
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

// framePool is one Recorder's free frames. Unlike a sync.Pool it is not
// emptied by the garbage collector, so a steady stream of frames
// allocates nothing; it keeps at most what the stream needed at once, up
// to its capacity.
type framePool struct{ free chan *frame }

func newFramePool(size int) *framePool { return &framePool{free: make(chan *frame, size)} }

func (p *framePool) get() *frame {
	select {
	case f := <-p.free:
		return f
	default:
		return &frame{data: make([]byte, 0, 16<<10)}
	}
}

// put gives f back; nil is ignored.
func (p *framePool) put(f *frame) {
	if f == nil || cap(f.data) > maxPooledFrame {
		return
	}
	f.data, f.config = f.data[:0], nil
	f.key, f.width, f.height = false, 0, 0
	select {
	case p.free <- f:
	default:
	}
}
