package record

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
)

// benchPackets packetizes the clip's medium layer and audio once: 4 s of
// media, in send order, with arrival times.
func benchPackets(b *testing.B) (pkts []*rtp.Packet, video []bool, at []time.Duration) {
	c := mustClips(b)
	vp := rtp.NewPacketizerWithOptions(1200, &codecs.VP8Payloader{EnablePictureID: true}, rtp.NewFixedSequencer(1), 90000, rtp.WithSSRC(1))
	ap := rtp.NewPacketizerWithOptions(1200, &codecs.OpusPayloader{}, rtp.NewFixedSequencer(1), 48000, rtp.WithSSRC(2))
	var tv, ta time.Duration
	vi, ai := 0, 0
	for vi < len(c.layers[1]) {
		if tv <= ta {
			for _, p := range vp.Packetize(c.layers[1][vi].data, 3000) {
				pkts, video, at = append(pkts, p), append(video, true), append(at, tv)
			}
			vi, tv = vi+1, tv+time.Second/30
		} else {
			for _, p := range ap.Packetize(c.audio[ai%len(c.audio)], 960) {
				pkts, video, at = append(pkts, p), append(video, false), append(at, ta)
			}
			ai, ta = ai+1, ta+20*time.Millisecond
		}
	}
	return pkts, video, at
}

// feed writes b.N packets, looping the clip with sequence numbers and
// timestamps moved on each loop (in place: no allocation).
func feed(b *testing.B, r *Recorder, start time.Time) {
	pkts, video, at := benchPackets(b)
	loop := 4 * time.Second
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		k := i % len(pkts)
		if k == 0 && i > 0 {
			for j, p := range pkts {
				p.SequenceNumber += uint16(countOf(video, video[j]))
				if video[j] {
					p.Timestamp += 90000 * 4
				} else {
					p.Timestamp += 48000 * 4
				}
			}
		}
		tr := r.Audio()
		if video[k] {
			tr = r.Video()
		}
		tr.WriteRTP(pkts[k], start.Add(time.Duration(i/len(pkts))*loop+at[k]))
	}
}

func countOf(v []bool, want bool) int {
	n := 0
	for _, x := range v {
		if x == want {
			n++
		}
	}
	return n
}

// BenchmarkRecordLivePath measures what a packet costs the caller: reorder
// buffer, depacketizer, clock, queue. The frames are taken off the queue
// and returned to the pool, as the writer does, without a muxer.
func BenchmarkRecordLivePath(b *testing.B) {
	rec, err := NewRecording(RecordingParams{Dir: filepath.Join(b.TempDir(), "rec")})
	if err != nil {
		b.Fatal(err)
	}
	r, _, err := newRecorder(rec, RecorderParams{ParticipantID: "bench", Source: SourceCamera, Video: vp8Codec, Audio: opusCodec}, 1)
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for f := range r.queue {
			r.pool.put(f)
		}
	}()
	feed(b, r, rec.Start())
	b.StopTimer()
	for _, t := range []*Track{r.video, r.audio} {
		t.close()
	}
	close(r.queue)
	<-done
	_ = rec.Close()
}

// BenchmarkRecordToFile is the whole path into a real file: the muxer's
// goroutine allocates per frame (ebml-go marshals by reflection), off the
// live path.
func BenchmarkRecordToFile(b *testing.B) {
	rec, err := NewRecording(RecordingParams{Dir: filepath.Join(b.TempDir(), "rec"), QueueFrames: 1 << 14})
	if err != nil {
		b.Fatal(err)
	}
	r, err := rec.NewRecorder(RecorderParams{ParticipantID: "bench", Source: SourceCamera, Video: vp8Codec, Audio: opusCodec})
	if err != nil {
		b.Fatal(err)
	}
	feed(b, r, rec.Start())
	if err := r.Close(); err != nil {
		b.Fatal(err)
	}
	_ = rec.Close()
}
