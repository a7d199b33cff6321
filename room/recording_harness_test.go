package room_test

import (
	"context"
	"errors"
	"math/rand"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/wait"
	"github.com/confab-sfu/confab/room/access"
	"github.com/confab-sfu/confab/room/record"
	"github.com/confab-sfu/confab/signal"
	"github.com/confab-sfu/confab/signal/client"
	"github.com/confab-sfu/confab/signal/client/clip"
	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
)

// lossyUplink drops a share of the SRTP/SRTCP packets a publisher sends
// (first byte 128-191, RFC 7983); ICE and DTLS pass, so only the media
// path is hurt, as by a lossy access network.
type lossyUplink struct {
	*stdnet.Net
	loss    float64
	mu      sync.Mutex
	rng     *rand.Rand
	dropped atomic.Int64
	sent    atomic.Int64
}

func newLossyUplink(t *testing.T, loss float64) *lossyUplink {
	t.Helper()
	n, err := stdnet.NewNet()
	if err != nil {
		t.Fatal(err)
	}
	return &lossyUplink{Net: n, loss: loss, rng: rand.New(rand.NewSource(7))}
}

// drop decides one datagram's fate.
func (l *lossyUplink) drop(b []byte) bool {
	if len(b) == 0 || b[0] < 128 || b[0] > 191 {
		return false
	}
	l.sent.Add(1)
	l.mu.Lock()
	lost := l.rng.Float64() < l.loss
	l.mu.Unlock()
	if lost {
		l.dropped.Add(1)
	}
	return lost
}

func (l *lossyUplink) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := l.Net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	return &lossyConn{UDPConn: c, l: l}, nil
}

func (l *lossyUplink) ListenPacket(network, address string) (net.PacketConn, error) {
	c, err := l.Net.ListenPacket(network, address)
	if err != nil {
		return nil, err
	}
	return &lossyPacketConn{PacketConn: c, l: l}, nil
}

type lossyConn struct {
	transport.UDPConn
	l *lossyUplink
}

func (c *lossyConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if c.l.drop(b) {
		return len(b), nil
	}
	return c.UDPConn.WriteTo(b, addr)
}

func (c *lossyConn) WriteToUDP(b []byte, addr *net.UDPAddr) (int, error) {
	if c.l.drop(b) {
		return len(b), nil
	}
	return c.UDPConn.WriteToUDP(b, addr)
}

type lossyPacketConn struct {
	net.PacketConn
	l *lossyUplink
}

func (c *lossyPacketConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if c.l.drop(b) {
		return len(b), nil
	}
	return c.PacketConn.WriteTo(b, addr)
}

// clipPublisher is the load tool's publisher: the VP8 clip in three
// simulcast layers (answering keyframe requests) and the Opus clip.
type clipPublisher struct {
	*testPeer
	video *clip.VideoSource
}

// joinClipPublisher joins with token (may be "") over net (nil: the
// plain network) and publishes the clips as camera and microphone until
// the test ends.
func joinClipPublisher(t *testing.T, ctx context.Context, url, roomName, name, token string, n transport.Net) *clipPublisher {
	t.Helper()
	var video atomic.Pointer[clip.VideoSource]
	tp := joinWith(t, ctx, url, roomName, name, client.APIOptions{Loopback: true, Net: n}, func(o *client.Params) {
		o.Token = token
		o.OnKeyframeRequest = func(string) {
			if v := video.Load(); v != nil {
				v.RequestKeyframe()
			}
		}
	})
	runCtx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { stop(); wg.Wait() })
	audio, err := clip.NewAudioSource(name+"-mic", name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tp.Publish(ctx, signal.SourceMicrophone, audio.Track()); err != nil {
		t.Fatalf("%s publishes audio: %v", name, err)
	}
	v, err := clip.NewVideoSource(name+"-cam", name, true, 2)
	if err != nil {
		t.Fatal(err)
	}
	s, err := tp.Publish(ctx, signal.SourceCamera, v.Tracks()...)
	if err != nil {
		t.Fatalf("%s publishes video: %v", name, err)
	}
	st, err := tp.NewStamper(s)
	if err != nil {
		t.Fatal(err)
	}
	v.SetStamper(st)
	video.Store(v)
	wg.Add(2)
	go func() { defer wg.Done(); audio.Run(runCtx) }()
	go func() { defer wg.Done(); v.Run(runCtx) }()
	return &clipPublisher{testPeer: tp, video: v}
}

// recordReq asks the server to start (true) or stop recording; the
// protocol's refusal is returned as its code ("" for ok).
func recordReq(t *testing.T, ctx context.Context, p *testPeer, on bool) string {
	t.Helper()
	_, err := p.Client().Request(ctx, &signal.Message{Type: signal.TypeRecord, Recording: &on})
	var serr *signal.Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &serr):
		return serr.Code
	}
	t.Fatalf("record request: %v", err)
	return ""
}

// sawRecording reports whether p was told the recording is on (or off),
// with code when code is not "".
func sawRecording(p *testPeer, on bool, code string) bool {
	return p.saw(signal.TypeRecording, func(m *signal.Message) bool {
		return m.Recording != nil && *m.Recording == on && (code == "" || m.Code == code)
	})
}

// waitRecordingEvent waits until every peer was told the recording's state.
func waitRecordingEvent(t *testing.T, on bool, peers ...*testPeer) {
	t.Helper()
	for _, p := range peers {
		wait.Until(t, 5*time.Second, "the recording event", func() (bool, string) {
			return sawRecording(p, on, ""), ""
		})
	}
}

// onlyManifest reads the one recording under dir.
func onlyManifest(t *testing.T, dir string) (*record.Manifest, string) {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*", "*", record.ManifestName))
	if err != nil || len(paths) != 1 {
		t.Fatalf("recordings under %s: %v %v, want one", dir, paths, err)
	}
	m, err := record.ReadManifest(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	return m, filepath.Dir(paths[0])
}

// currentManifest reads the one recording under dir, if it exists yet.
func currentManifest(dir string) *record.Manifest {
	paths, _ := filepath.Glob(filepath.Join(dir, "*", "*", record.ManifestName))
	if len(paths) != 1 {
		return nil
	}
	m, err := record.ReadManifest(paths[0])
	if err != nil {
		return nil
	}
	return m
}

// waitFile waits until the recording under dir has made its nth file
// (the writer creates it at the first keyframe).
func waitFile(t *testing.T, dir string, n int) {
	t.Helper()
	wait.Until(t, 10*time.Second, "the file to start", func() (bool, string) {
		m := currentManifest(dir)
		if m == nil || len(m.Files) < n {
			return false, "no such file in the manifest"
		}
		paths, _ := filepath.Glob(filepath.Join(dir, "*", "*", m.Files[n-1].File))
		return len(paths) == 1, "the file is not made yet"
	})
}

// flowing waits until p receives n more packets of who's media: the live
// room goes on.
func flowing(t *testing.T, p *testPeer, who, what string) {
	t.Helper()
	count := func() int {
		n := 0
		for _, rc := range p.rec.snapshot() {
			if rc.publisher == who {
				n += len(rc.payloads)
			}
		}
		return n
	}
	before := count()
	wait.Until(t, 10*time.Second, "media keeps flowing "+what, func() (bool, string) {
		return count() >= before+100, ""
	})
}

func modToken(t *testing.T, roomName, identity string) string {
	return mint(t, testSecret, roomName, identity, access.Moderator, time.Hour, time.Now())
}
