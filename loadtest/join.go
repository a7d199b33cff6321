package loadtest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/confab-sfu/confab/signal"
	"github.com/confab-sfu/confab/signal/client"
	"github.com/confab-sfu/confab/signal/client/clip"
	"github.com/pion/webrtc/v4"
)

// whepRetry is how long a WHEP viewer waits before asking again for a room
// where nothing is published yet, as a player page does.
const whepRetry = 250 * time.Millisecond

// joinWS brings in a participant over the signaling WebSocket and, if it
// publishes, starts its media. A lecture's viewers join as its audience:
// counted, not announced.
func (r *run) joinWS(setup context.Context, pl plan, rec *receiveLog) (*client.Peer, error) {
	var video atomic.Pointer[clip.VideoSource] // set once it publishes video
	lecture, role := r.cfg.Scenario == "lecture", ""
	if lecture && !pl.publish {
		role = signal.RoleViewer
	}
	p, err := client.Join(setup, client.Params{URL: r.cfg.nodes[pl.node], Room: pl.room, Name: pl.name, API: r.api, Logger: r.cfg.Logger,
		Lecture: lecture, Role: role, Reconnect: r.reconnect(pl.node),
		OnTrack: func(rt *client.RemoteTrack) { rec.track(rt, r.cfg.Layer) },
		OnKeyframeRequest: func(string) {
			r.keyReqs.Add(1)
			if v := video.Load(); v != nil {
				v.RequestKeyframe()
			}
		},
		// Dynacast: the publisher sends only the layers someone needs.
		OnPublishLayers: func(_ string, rids []string) {
			if v := video.Load(); v != nil {
				v.SetActiveRIDs(rids)
			}
		}})
	if err != nil {
		return nil, err
	}
	rec.setPeer(p)
	go rec.follow(p)
	if !pl.publish {
		return p, nil
	}
	if err := r.publishWS(setup, p, pl.name, r.delays.newLog(pl.room, p), &video); err != nil {
		_ = p.Leave()
		return nil, fmt.Errorf("publish: %w", err)
	}
	return p, nil
}

// reconnect is how a WebSocket participant of node rejoins: through the
// other nodes in order, then its own again; nil unless Config.Reconnect.
func (r *run) reconnect(node int) *client.Reconnect {
	if !r.cfg.Reconnect {
		return nil
	}
	n := len(r.cfg.nodes)
	urls := make([]string, 0, n)
	for i := range n {
		urls = append(urls, r.cfg.nodes[(node+i)%n])
	}
	return &client.Reconnect{URLs: urls}
}

// publishWS publishes audio and, if configured, video from the clips,
// each send recorded in log. Negotiation is bounded by setup; the sources run until the run ends.
func (r *run) publishWS(setup context.Context, p *client.Peer, name string, log *sendLog, video *atomic.Pointer[clip.VideoSource]) error {
	audio, err := clip.NewAudioSource(name+"-mic", name)
	if err != nil {
		return err
	}
	audio.OnSend(log.sentAudio)
	if _, err := p.Publish(setup, signal.SourceMicrophone, audio.Track()); err != nil {
		return err
	}
	r.play(audio)
	if !r.cfg.Video {
		return nil
	}
	v, err := clip.NewVideoSource(name+"-cam", name, r.cfg.Simulcast, singleLayer)
	if err != nil {
		return err
	}
	v.OnSend(log.sentVideo)
	video.Store(v)
	r.addVideo(name, v)
	s, err := p.Publish(setup, signal.SourceCamera, v.Tracks()...)
	if err != nil {
		return err
	}
	if r.cfg.Simulcast {
		st, err := p.NewStamper(s)
		if err != nil {
			return err
		}
		v.SetStamper(st)
	}
	r.play(v)
	return nil
}

// joinHTTP brings in a WHIP presenter or a WHEP viewer.
func (r *run) joinHTTP(setup context.Context, pl plan, rec *receiveLog) (*client.HTTPSession, error) {
	if pl.publish {
		return r.publishWHIP(setup, pl)
	}
	// A viewer that comes before anything is published is refused with 404
	// and asks again.
	for {
		s, err := client.Watch(setup, r.api, r.cfg.nodes[pl.node], pl.room, "", func(rt *client.RemoteTrack) { rec.track(rt, "") })
		var herr *client.HTTPStatusError
		if !errors.As(err, &herr) || herr.Status != http.StatusNotFound {
			return s, err
		}
		select {
		case <-time.After(whepRetry):
		case <-setup.Done():
			return nil, fmt.Errorf("nothing published in %s: %w", pl.room, err)
		}
	}
}

// publishWHIP publishes audio and, if configured, video from the clips
// over WHIP.
func (r *run) publishWHIP(setup context.Context, pl plan) (*client.HTTPSession, error) {
	audio, err := clip.NewAudioSource(pl.name+"-mic", pl.name)
	if err != nil {
		return nil, err
	}
	log := r.delays.newLog(pl.room, nil)
	audio.OnSend(log.sentAudio)
	groups := [][]webrtc.TrackLocal{{audio.Track()}}
	var v *clip.VideoSource
	if r.cfg.Video {
		if v, err = clip.NewVideoSource(pl.name+"-cam", pl.name, r.cfg.Simulcast, singleLayer); err != nil {
			return nil, err
		}
		r.addVideo(pl.name, v)
		v.OnSend(log.sentVideo)
		groups = append(groups, v.Tracks())
	}
	s, senders, err := client.PublishWHIP(setup, r.api, r.cfg.nodes[pl.node], pl.room, "", groups...)
	if err != nil {
		return nil, err
	}
	r.play(audio)
	if v == nil {
		return s, nil
	}
	if r.cfg.Simulcast {
		st, err := s.NewStamper(senders[1])
		if err != nil {
			_ = s.Close()
			return nil, err
		}
		v.SetStamper(st)
	}
	s.OnKeyframeRequest(func(sender *webrtc.RTPSender) {
		if sender == senders[1] {
			r.keyReqs.Add(1)
			v.RequestKeyframe()
		}
	})
	r.play(v)
	return s, nil
}

// source is a clip source: it sends until its context ends.
type source interface {
	Run(ctx context.Context)
	BytesSent() uint64
}

// play runs a media source until the run ends, and counts what it sends.
func (r *run) play(s source) {
	r.sent.add(s)
	r.media.Add(1)
	go func() {
		defer r.media.Done()
		s.Run(r.ctx)
	}()
}

// sendMeter adds up what every media source of a run sent.
type sendMeter struct {
	mu  sync.Mutex
	src []source
}

func (m *sendMeter) add(s source) {
	m.mu.Lock()
	m.src = append(m.src, s)
	m.mu.Unlock()
}

func (m *sendMeter) total() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n uint64
	for _, s := range m.src {
		n += s.BytesSent()
	}
	return n
}
