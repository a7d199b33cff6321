package record

import (
	"errors"
	"io"
	"os"
	"sync"
)

// File is what a media file is written to; *os.File is one. Tests give a
// File that fails to see what a full disk does.
type File interface {
	io.Writer
	io.WriterAt
	Truncate(size int64) error
	Sync() error
	Close() error
}

// createFile is the default RecordingParams.CreateFile: a new file, never
// one that exists.
func createFile(path string) (File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
}

// flushAt is how many bytes the sink gathers before one write to the file:
// the muxer writes each element in several small pieces.
const flushAt = 128 << 10

// clusterID starts a Matroska Cluster element.
var clusterID = [4]byte{0x1f, 0x43, 0xb6, 0x75}

// sink sits between the muxer and the file. It batches writes, and on the
// first write error (a full disk, say) it cuts the file back to the start
// of the last Cluster written whole, so the file stays valid up to there,
// and swallows everything after: the muxer never sees an error, because
// ebml-go's writer goroutine stops on one and its track writers would then
// block forever.
type sink struct {
	f        File
	buf      []byte
	flushed  int64      // bytes in the file
	clusters []int64    // offsets of Cluster starts not yet known to be whole in the file
	errMu    sync.Mutex // err is set on the muxer's goroutine, read on the writer's
	err      error
	closed   bool
	onBytes  func(n int)
}

func newSink(f File, onBytes func(int)) *sink {
	return &sink{f: f, buf: make([]byte, 0, flushAt+64<<10), onBytes: onBytes}
}

// Write keeps p for the next flush. The muxer writes an element ID as one
// piece, which is how a Cluster's start is seen: the sink writes whole
// clusters (or 128 KiB pieces of a long one) to the file.
func (s *sink) Write(p []byte) (int, error) {
	if s.err != nil {
		return len(p), nil
	}
	if len(p) == len(clusterID) && [4]byte(p) == clusterID {
		// Flush what came before: the buffer then never spans two
		// clusters, so a failed write costs the current cluster only.
		s.flush()
		if s.err != nil {
			return len(p), nil
		}
		s.clusters = append(s.clusters, s.flushed)
	}
	s.buf = append(s.buf, p...)
	if len(s.buf) >= flushAt {
		s.flush()
	}
	return len(p), nil
}

// WriteAt patches what was written (the muxer's Cues and Duration at the
// end).
func (s *sink) WriteAt(p []byte, off int64) (int, error) {
	s.flush()
	if s.err != nil {
		// After a cut, the index and Duration still go into the header
		// (rewriting bytes needs no new space): they then count what the
		// muxer was given, at most one cluster more than the file keeps,
		// which beats a file that claims to last no time at all.
		if off+int64(len(p)) <= s.flushed {
			_, _ = s.f.WriteAt(p, off)
		}
		return len(p), nil
	}
	if _, err := s.f.WriteAt(p, off); err != nil {
		// The clusters are all in the file; only the index is missing.
		s.setErr(err)
	}
	return len(p), nil
}

func (s *sink) flush() {
	if s.err != nil || len(s.buf) == 0 {
		return
	}
	n, err := s.f.Write(s.buf)
	s.flushed += int64(n)
	if n > 0 && s.onBytes != nil {
		s.onBytes(n)
	}
	if err == nil && n < len(s.buf) {
		err = io.ErrShortWrite
	}
	s.buf = s.buf[:0]
	if err != nil {
		s.fail(err)
		return
	}
	// Keep only the last Cluster start in the file: the one to cut back to.
	for len(s.clusters) > 1 && s.clusters[1] <= s.flushed {
		s.clusters = s.clusters[1:]
	}
}

// fail records err and cuts a partly written Cluster off the file.
func (s *sink) fail(err error) {
	s.setErr(err)
	cut := s.flushed
	for i := len(s.clusters) - 1; i >= 0; i-- {
		if s.clusters[i] <= s.flushed {
			cut = s.clusters[i]
			break
		}
	}
	if terr := s.f.Truncate(cut); terr != nil {
		s.setErr(errors.Join(err, terr))
		return
	}
	s.flushed = cut
}

// size is how many bytes the file holds once flushed.
func (s *sink) size() int64 { return s.flushed + int64(len(s.buf)) }

// Close flushes, syncs and closes the file; it returns the first error.
// The muxer calls it when it has finished the file.
func (s *sink) Close() error {
	if s.closed {
		return s.err
	}
	s.closed = true
	s.flush()
	if s.err == nil {
		if err := s.f.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
			s.setErr(err)
		}
	}
	if err := s.f.Close(); err != nil && s.err == nil {
		s.setErr(err)
	}
	return s.err
}

func (s *sink) setErr(err error) {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	s.err = err
}

// failure is the sink's error, safe to call from any goroutine.
func (s *sink) failure() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.err
}
