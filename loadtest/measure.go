package loadtest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/confab-sfu/confab/signal"
	"github.com/pion/rtp"
)

// freezeGap is the pause between video frames counted as a freeze.
const freezeGap = 500 * time.Millisecond

// trackLog counts what arrives on one track: packets, bytes, losses from
// the extended sequence numbers, and freezes between video frames.
type trackLog struct {
	video     bool
	first     time.Time
	packets   uint64
	bytes     uint64
	started   bool
	maxExt    int64 // highest extended sequence number
	minExt    int64
	cycles    int64
	lastSeq   uint16
	lastFrame time.Time
	lastTS    uint32
	freezes   int
}

func (t *trackLog) add(p *rtp.Packet, n int, now time.Time) {
	t.packets++
	t.bytes += uint64(n)
	if !t.started {
		t.started, t.first = true, now
		t.lastSeq = p.SequenceNumber
		t.maxExt, t.minExt = int64(p.SequenceNumber), int64(p.SequenceNumber)
		t.lastTS, t.lastFrame = p.Timestamp, now
		return
	}
	if p.SequenceNumber < 0x1000 && t.lastSeq > 0xf000 {
		t.cycles++
	}
	t.lastSeq = p.SequenceNumber
	ext := t.cycles<<16 | int64(p.SequenceNumber)
	t.maxExt = max(t.maxExt, ext)
	if t.video && p.Timestamp != t.lastTS && len(p.Payload) > 0 {
		if now.Sub(t.lastFrame) > freezeGap {
			t.freezes++
		}
		t.lastTS, t.lastFrame = p.Timestamp, now
	}
}

// receiveLog is one peer's view of what it received.
type receiveLog struct {
	name    string
	expect  int
	peer    *Peer
	wantNow int // tracks published when the peer joined

	mu     sync.Mutex
	tracks map[string]*trackLog
	got    chan struct{} // signalled on every new track's first packet
}

func newReceiveLog(name string, expect int) *receiveLog {
	return &receiveLog{name: name, expect: expect, tracks: map[string]*trackLog{}, got: make(chan struct{}, 64)}
}

// track reads one forwarded track until it ends, and applies the layer
// policy to video.
func (r *receiveLog) track(rt *RemoteTrack, layer string) {
	tl := &trackLog{video: rt.Info.Kind == "video"}
	r.mu.Lock()
	r.tracks[rt.Info.ID] = tl
	r.mu.Unlock()
	if tl.video && layer != "" && layer != "auto" && r.peer != nil {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, _ = r.peer.Client().Request(ctx, &signal.Message{Type: signal.TypeSubscribe,
				Subscriptions: []signal.Subscription{{TrackID: rt.Info.ID, MaxLayer: layer}}})
		}()
	}
	go func() {
		buf := make([]byte, 1500)
		var pkt rtp.Packet
		for {
			n, _, err := rt.Track.Read(buf)
			if err != nil {
				return
			}
			if pkt.Unmarshal(buf[:n]) != nil {
				continue
			}
			r.mu.Lock()
			first := !tl.started
			tl.add(&pkt, n, time.Now())
			r.mu.Unlock()
			if first {
				select {
				case r.got <- struct{}{}:
				default:
				}
			}
		}
	}()
}

// waitFirstMedia returns when media arrived on every track that was
// published when the peer joined (or at once if there were none).
func (r *receiveLog) waitFirstMedia(ctx context.Context, limit time.Duration) time.Time {
	deadline := time.After(limit)
	for {
		r.mu.Lock()
		n := 0
		for _, t := range r.tracks {
			if t.started {
				n++
			}
		}
		r.mu.Unlock()
		if n >= r.wantNow {
			return time.Now()
		}
		select {
		case <-r.got:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			return time.Now()
		case <-ctx.Done():
			return time.Now()
		}
	}
}

func (r *receiveLog) totals() (packets, lost uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range r.tracks {
		packets += t.packets
		if span := t.maxExt - t.minExt + 1; t.started && span > int64(t.packets) {
			lost += uint64(span - int64(t.packets))
		}
	}
	return packets, lost
}

func (r *receiveLog) stats(seconds float64) SubscriberStats {
	p, l := r.totals()
	r.mu.Lock()
	defer r.mu.Unlock()
	s := SubscriberStats{Name: r.name, Tracks: len(r.tracks), Expected: r.expect, Packets: p, Lost: l}
	var bytes uint64
	for _, t := range r.tracks {
		bytes += t.bytes
		s.Freezes += t.freezes
	}
	if seconds > 0 {
		s.BitrateKbps = float64(bytes) * 8 / 1000 / seconds
	}
	return s
}

// ServerStats are figures scraped from the server's /metrics.
type ServerStats struct {
	CPUSeconds float64 `json:"cpuSeconds"`
	RSSBytes   float64 `json:"residentBytes"`
	Goroutines float64 `json:"goroutines"`
	PacketsOut float64 `json:"packetsOut"`
	PacketsIn  float64 `json:"packetsIn"`
	CPUPer1000 float64 `json:"cpuSecondsPer1000PacketsOut"`
	Available  bool    `json:"available"`
	samples    map[string]float64
}

// scrapeServer reads the Prometheus text format; missing metrics stay 0.
func scrapeServer(ctx context.Context, base string) ServerStats {
	u := strings.TrimSuffix(base, "/") + "/metrics"
	u = strings.Replace(strings.Replace(u, "ws://", "http://", 1), "wss://", "https://", 1)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return ServerStats{}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ServerStats{}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return ServerStats{}
	}
	m := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		if v, err := strconv.ParseFloat(f[1], 64); err == nil {
			m[f[0]] = v
		}
	}
	return ServerStats{Available: true, samples: m, CPUSeconds: m["process_cpu_seconds_total"], RSSBytes: m["process_resident_memory_bytes"],
		Goroutines: m["go_goroutines"], PacketsOut: m["confab_packets_out_total"], PacketsIn: m["confab_packets_in_total"]}
}

// since turns two scrapes into the run's figures: counters as differences,
// gauges as the later value.
func (s ServerStats) since(before ServerStats) ServerStats {
	if !s.Available {
		return s
	}
	out := s
	out.CPUSeconds = s.CPUSeconds - before.CPUSeconds
	out.PacketsOut = s.PacketsOut - before.PacketsOut
	out.PacketsIn = s.PacketsIn - before.PacketsIn
	if out.PacketsOut > 0 {
		out.CPUPer1000 = out.CPUSeconds / out.PacketsOut * 1000
	}
	return out
}

// progress prints one live line while media flows.
type progress struct {
	w     io.Writer
	total int
	mu    sync.Mutex
	count int
}

func newProgress(w io.Writer, total int) *progress { return &progress{w: w, total: total} }

func (p *progress) join() {
	p.mu.Lock()
	p.count++
	n := p.count
	p.mu.Unlock()
	if p.w != nil {
		fmt.Fprintf(p.w, "\rjoined %d/%d", n, p.total)
	}
}

// run waits d (or ctx) and refreshes the line every second.
func (p *progress) run(ctx context.Context, d time.Duration, totals func() (uint64, uint64)) {
	end := time.After(d)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	start := time.Now()
	var lastPk uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-end:
			if p.w != nil {
				fmt.Fprintln(p.w)
			}
			return
		case <-t.C:
			pk, lost := totals()
			if p.w != nil {
				lossPct := 0.0
				if pk+lost > 0 {
					lossPct = 100 * float64(lost) / float64(pk+lost)
				}
				p.mu.Lock()
				n := p.count
				p.mu.Unlock()
				fmt.Fprintf(p.w, "\r%3.0fs  peers %d/%d  received %d pkt/s  loss %.2f%%   ", time.Since(start).Seconds(), n, p.total, pk-lastPk, lossPct)
			}
			lastPk = pk
		}
	}
}
