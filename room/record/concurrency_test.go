package record

import (
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"github.com/confab-sfu/confab/internal/wait"
)

// TestRecordConcurrentTracksAndClose feeds audio and video from their own
// goroutines, as a room's track readers would, closes the Recorder while
// they still send, and checks the file and that late packets are ignored.
func TestRecordConcurrentTracksAndClose(t *testing.T) {
	needFFmpeg(t)
	c := mustClips(t)
	rec, errs := newTestRecording(t, RecordingParams{})
	var keyframes atomic.Int32
	r, err := rec.NewRecorder(RecorderParams{ParticipantID: "hal", Source: SourceCamera, Video: vp8Codec, Audio: opusCodec,
		RequestKeyframe: func() { keyframes.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	var sent [2]atomic.Int64 // media time sent, ms
	stop := make(chan struct{})
	var wg sync.WaitGroup
	feed := func(tr *Track, pk rtp.Packetizer, frames func(i int) []byte, step time.Duration, samples uint32) {
		defer wg.Done()
		// Four times real time: fast, yet a pace the writer keeps up with.
		tick := time.NewTicker(step / 4)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			at := rec.Start().Add(time.Duration(i) * step)
			for _, p := range pk.Packetize(frames(i), samples) {
				tr.WriteRTP(p, at)
			}
			sent[tr.num-1].Store(int64(time.Duration(i) * step / time.Millisecond))
		}
	}
	wg.Add(2)
	go feed(r.Video(), rtp.NewPacketizerWithOptions(1200, &codecs.VP8Payloader{EnablePictureID: true}, rtp.NewRandomSequencer(), 90000, rtp.WithSSRC(1)),
		func(i int) []byte { return c.layers[0][i%len(c.layers[0])].data }, time.Second/30, 3000)
	go feed(r.Audio(), rtp.NewPacketizerWithOptions(1200, &codecs.OpusPayloader{}, rtp.NewRandomSequencer(), 48000, rtp.WithSSRC(2)),
		func(i int) []byte { return c.audio[i%len(c.audio)] }, 20*time.Millisecond, 960)
	wait.For(t, 20*time.Second, "3 s of media sent on both tracks", func() bool {
		return sent[0].Load() >= 2900 && sent[1].Load() >= 2900
	})
	// The tracks go on sending while and after the Recorder closes.
	before := min(sent[0].Load(), sent[1].Load())
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	after := max(sent[0].Load(), sent[1].Load())
	close(stop)
	wg.Wait()
	if err := rec.Close(); err != nil || len(errs.list()) > 0 {
		t.Fatalf("close: %v, reported %v", err, errs.list())
	}
	if keyframes.Load() < 1 {
		t.Errorf("no keyframe request at the start")
	}
	p := probe(t, filepath.Join(rec.Dir(), r.File()))
	for _, typ := range []string{"video", "audio"} {
		idx, _, _, _ := p.stream(t, typ)
		if d := p.duration(idx) * 1000; d < float64(before)-500 || d > float64(after)+100 {
			t.Errorf("%s lasts %.0f ms; %d ms were sent when Close began, %d ms when it returned", typ, d, before, after)
		}
	}
	decodes(t, filepath.Join(rec.Dir(), r.File()))
}
