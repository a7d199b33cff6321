package web_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/confab-sfu/confab/signal"
	"github.com/confab-sfu/confab/signal/client"
	"github.com/confab-sfu/confab/signal/client/clip"
)

func TestThreeBrowsersMeet(t *testing.T) {
	path := needBrowser(t)
	base := startServer(t, 0)
	b := newBrowser(t, path, base)
	names := []string{"ada", "grace", "linus"}
	tabs := map[string]*tab{}
	start := time.Now()
	for _, n := range names {
		tabs[n] = b.join(base, "standup", n)
	}
	ids := map[string]string{}
	for _, n := range names {
		ids[n] = b.joined(tabs[n])
	}
	// Everyone decodes video from both others, and hears them.
	for _, n := range names {
		others := map[string]string{}
		for _, o := range names {
			if o != n {
				others[o] = ids[o]
			}
		}
		b.receivesFrom(tabs[n], 30, true, others)
	}
	t.Logf("three participants decode > 30 frames from each other %.1f s after opening the pages", time.Since(start).Seconds())

	// Each publishes its camera as three simulcast layers (Chromium may
	// pause the top one while the machine is busy, so only the
	// configuration is checked here; TestBrowserAdaptiveSubscribe receives
	// every layer), and sees three named tiles.
	for _, n := range names {
		var encodings string
		if err := tabs[n].eval(`const s = window.confab.pc.getSenders().find(s => s.track && s.track.kind === 'video');
return s.getParameters().encodings.map(e => e.rid + '/' + e.scaleResolutionDownBy).join(' ')`, &encodings); err != nil {
			t.Fatal(err)
		}
		if encodings != "l/4 m/2 h/1" {
			t.Errorf("%s: camera encodings %q, want l/4 m/2 h/1", n, encodings)
		}
		s, err := tabs[n].snapshot()
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range names {
			tl, ok := s.tile(ids[o])
			want := o
			if o == n {
				want = n + " (you)"
			}
			if !ok || tl["name"] != want || tl["width"].(float64) < 200 {
				t.Errorf("%s: tile of %s is %v, want one named %q at least 200 px wide", n, o, tl, want)
			}
		}
	}
	tabs["ada"].screenshot(t, "three-person-room.png")
	tabs["ada"].do(t, chromedp.Click(chromedp.CSS("#toggle-stats")))
	b.waitSnapshot(tabs["ada"], "stats panels filled", 10*time.Second, func(snapshot) (bool, string) {
		var panels []string
		if err := tabs["ada"].eval(`return [...document.querySelectorAll('figure.tile .stats')].map(e => e.textContent)`, &panels); err != nil {
			return false, err.Error()
		}
		for _, p := range panels {
			if p == "" {
				return false, fmt.Sprintf("panels %q", panels)
			}
		}
		return len(panels) == 3, fmt.Sprintf("panels %q", panels)
	})
	// Bitrates need two samples: wait for them before the screenshot.
	b.waitFor("bitrates in every stats panel", 10*time.Second, func() (bool, string) {
		var panels struct {
			Text  []string
			Rates bool
		}
		if err := tabs["ada"].eval(`const text = [...document.querySelectorAll('figure.tile .stats')].map(e => e.textContent);
return {Text: text, Rates: text.every((p) => /\b[1-9][0-9]* kbit\/s/.test(p))}`, &panels); err != nil {
			return false, err.Error()
		}
		return panels.Rates, fmt.Sprintf("panels %q", panels.Text)
	})
	tabs["ada"].screenshot(t, "three-person-room-stats.png")

	// Ada turns her camera off, then on: the others see both, and her
	// video comes back.
	tabs["ada"].do(t, chromedp.Click(chromedp.CSS("#toggle-cam")))
	for _, n := range []string{"grace", "linus"} {
		b.waitSnapshot(tabs[n], "ada's camera off", 10*time.Second, func(s snapshot) (bool, string) {
			tl, ok := s.tile(ids["ada"])
			return ok && tl["mutedVideo"] == true, fmt.Sprintf("tile %v", tl)
		})
	}
	before, err := tabs["grace"].snapshot()
	if err != nil {
		t.Fatal(err)
	}
	tabs["ada"].do(t, chromedp.Click(chromedp.CSS("#toggle-cam")))
	b.waitSnapshot(tabs["grace"], "ada's camera back on, with new frames", 15*time.Second, func(s snapshot) (bool, string) {
		tl, _ := s.tile(ids["ada"])
		ok := tl != nil && tl["mutedVideo"] == false && s.Frames[ids["ada"]] > before.Frames[ids["ada"]]+20
		return ok, fmt.Sprintf("tile %v, frames %d (were %d)", tl, s.Frames[ids["ada"]], before.Frames[ids["ada"]])
	})
	// Ada mutes her microphone: the others see it.
	tabs["ada"].do(t, chromedp.Click(chromedp.CSS("#toggle-mic")))
	b.waitSnapshot(tabs["linus"], "ada's microphone muted", 10*time.Second, func(s snapshot) (bool, string) {
		tl, ok := s.tile(ids["ada"])
		return ok && tl["mutedAudio"] == true, fmt.Sprintf("tile %v", tl)
	})

	// Ada leaves: her tile disappears for the others.
	tabs["ada"].do(t, chromedp.Click(chromedp.CSS("#leave")))
	for _, n := range []string{"grace", "linus"} {
		b.waitSnapshot(tabs[n], "ada gone", 10*time.Second, func(s snapshot) (bool, string) {
			_, ok := s.tile(ids["ada"])
			return !ok && len(s.Tiles) == 2, fmt.Sprintf("tiles %v", s.Tiles)
		})
	}
}

func TestBrowserChatAndFullRoom(t *testing.T) {
	path := needBrowser(t)
	base := startServer(t, 2)
	b := newBrowser(t, path, base)
	ann, cid := b.join(base, "pair", "ann"), b.join(base, "pair", "cid")
	b.joined(ann)
	b.joined(cid)
	ann.do(t, chromedp.SendKeys(chromedp.CSS("#chat-input"), "hello from ann"), chromedp.Click(chromedp.CSS("#chat-form button")))
	b.waitFor("chat arrives", 10*time.Second, func() (bool, string) {
		var chat []map[string]any
		if err := cid.eval(`return window.confab.chat()`, &chat); err != nil {
			return false, err.Error()
		}
		for _, m := range chat {
			if m["text"] == "hello from ann" && m["name"] == "ann" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("chat %v", chat)
	})
	var shown string
	if err := cid.eval(`return document.getElementById('chat-log').textContent`, &shown); err != nil || shown == "" {
		t.Errorf("chat log shows %q (%v)", shown, err)
	}
	// A third person finds the room full and is told so.
	dee := b.join(base, "pair", "dee")
	b.waitSnapshot(dee, "room-full message", 15*time.Second, func(s snapshot) (bool, string) {
		var msg string
		_ = dee.eval(`return document.getElementById('prejoin-message').textContent`, &msg)
		full := msg == "This meeting is full. Try again later, or start another meeting."
		return full && s.Me == "" && s.Status["state"] == "error", fmt.Sprintf("message %q, status %v", msg, s.Status)
	})
}

// TestBrowserAndGoPeer: a Go participant (client.Peer) publishing VP8
// simulcast and Opus, and Chromium, in one room, each receiving the other.
func TestBrowserAndGoPeer(t *testing.T) {
	path := needBrowser(t)
	base := startServer(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	api, err := client.NewAPI(client.APIOptions{Loopback: true})
	if err != nil {
		t.Fatal(err)
	}
	video, err := clip.NewVideoSource("go-cam", "go-peer", true, 2)
	if err != nil {
		t.Fatal(err)
	}
	audio, err := clip.NewAudioSource("go-mic", "go-peer")
	if err != nil {
		t.Fatal(err)
	}
	var fromBrowser videoCounter // video RTP packets the Go peer received
	peer, err := client.Join(ctx, client.Params{URL: base, Room: "mixed", Name: "gopher", API: api,
		OnKeyframeRequest: func(string) { video.RequestKeyframe() },
		OnTrack:           fromBrowser.onTrack})
	if err != nil {
		t.Fatal(err)
	}
	var sources sync.WaitGroup
	defer func() {
		cancel()
		sources.Wait()
		_ = peer.Leave()
		fromBrowser.wait()
	}()
	publishClips(t, ctx, peer, video, audio, &sources)

	b := newBrowser(t, path, base)
	viewer := b.join(base, "mixed", "viewer")
	start := time.Now()
	b.joined(viewer)
	s := b.receivesFrom(viewer, 30, true, map[string]string{"gopher": peer.ID()})
	t.Logf("Chromium decodes > 30 frames of the Go peer's VP8 %.1f s after joining", time.Since(start).Seconds())
	if tl, ok := s.tile(peer.ID()); !ok || tl["name"] != "gopher" || tl["hasVideo"] != true {
		t.Errorf("the Go peer's tile: %v", tl)
	}
	b.waitFor("the Go peer receives Chromium's video", 20*time.Second, func() (bool, string) {
		n := fromBrowser.n.Load()
		return n > 100, fmt.Sprintf("%d video packets", n)
	})
}

// publishClips publishes the load tool's simulcast VP8 and Opus clips from
// a Go peer; the sources run until ctx ends (sources counts them).
func publishClips(t *testing.T, ctx context.Context, peer *client.Peer, video *clip.VideoSource, audio *clip.AudioSource, sources *sync.WaitGroup) {
	t.Helper()
	sender, err := peer.Publish(ctx, signal.SourceCamera, video.Tracks()...)
	if err != nil {
		t.Fatal(err)
	}
	// pion does not put mid and rid on simulcast packets by itself.
	stamper, err := peer.NewStamper(sender)
	if err != nil {
		t.Fatal(err)
	}
	video.SetStamper(stamper)
	if _, err := peer.Publish(ctx, signal.SourceMicrophone, audio.Track()); err != nil {
		t.Fatal(err)
	}
	sources.Add(2)
	go func() { defer sources.Done(); video.Run(ctx) }()
	go func() { defer sources.Done(); audio.Run(ctx) }()
}

// videoCounter counts the video RTP packets a Go peer receives
// (client.Params.OnTrack); wait returns once its readers stopped.
type videoCounter struct {
	n       atomic.Int64
	readers sync.WaitGroup
}

func (c *videoCounter) onTrack(rt *client.RemoteTrack) {
	if rt.Info.Kind != "video" {
		return
	}
	c.readers.Add(1)
	go func() {
		defer c.readers.Done()
		buf := make([]byte, 1500)
		for {
			if _, _, err := rt.Track.Read(buf); err != nil {
				return
			}
			c.n.Add(1)
		}
	}()
}

func (c *videoCounter) wait() { c.readers.Wait() }
