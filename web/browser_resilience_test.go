package web_test

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/confab-sfu/confab/web"
)

// TestBrowserRejoinsAfterDrop: when the WebSocket drops, the page says so,
// rejoins with a new PeerConnection, keeps its camera muted, and media
// flows both ways again.
func TestBrowserRejoinsAfterDrop(t *testing.T) {
	path := needBrowser(t)
	base := startServer(t, 0)
	b := newBrowser(t, path, base)
	ann, bob := b.join(base, "flaky", "ann"), b.join(base, "flaky", "bob")
	annID, bobID := b.joined(ann), b.joined(bob)
	b.receivesFrom(ann, 10, true, map[string]string{"bob": bobID})
	ann.do(t, chromedp.Click(chromedp.CSS("#toggle-cam")))
	b.waitSnapshot(bob, "ann's camera off", 10*time.Second, func(s snapshot) (bool, string) {
		tl, ok := s.tile(annID)
		return ok && tl["mutedVideo"] == true, fmt.Sprintf("tile %v", tl)
	})

	// Record every status the page shows, then cut its WebSocket.
	var ok bool
	if err := ann.eval(`
window.statuses = [];
new MutationObserver(() => window.statuses.push(window.confab.status().state))
  .observe(document.getElementById('status'), {attributes: true, childList: true, characterData: true, subtree: true});
window.oldPC = window.confab.pc;
window.confab.state.sig.ws.close(4000, 'test drop');
return true;`, &ok); err != nil {
		t.Fatal(err)
	}
	var newID string
	b.waitSnapshot(ann, "rejoined under a new id", 20*time.Second, func(s snapshot) (bool, string) {
		newID = s.Me
		return s.Me != "" && s.Me != annID && s.Status["state"] == "ok", fmt.Sprintf("id %s, status %v", s.Me, s.Status)
	})
	var seen struct {
		Statuses []string `json:"statuses"`
		NewPC    bool     `json:"newPC"`
	}
	if err := ann.eval(`return {statuses: window.statuses, newPC: window.oldPC !== window.confab.pc && window.oldPC.connectionState === 'closed'}`, &seen); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(seen.Statuses, " "), "reconnecting") || !seen.NewPC {
		t.Errorf("during the drop: statuses %v, new PeerConnection %v", seen.Statuses, seen.NewPC)
	}
	// Bob sees one tile for ann, the new one, still with the camera off,
	// and hears her; ann sees bob again.
	b.waitSnapshot(bob, "ann's new tile, camera still off, sound", 20*time.Second, func(s snapshot) (bool, string) {
		_, old := s.tile(annID)
		tl, ok := s.tile(newID)
		good := !old && ok && tl["mutedVideo"] == true && s.Audio[newID] > 0 && len(s.Tiles) == 2
		return good, fmt.Sprintf("tiles %v, audio %v", s.Tiles, s.Audio)
	})
	b.receivesFrom(ann, 30, true, map[string]string{"bob": bobID})
	// Her camera turned back on reaches bob over the new connection.
	ann.do(t, chromedp.Click(chromedp.CSS("#toggle-cam")))
	b.receivesFrom(bob, 30, true, map[string]string{"ann": newID})
}

// denyJS makes getUserMedia refuse what the user would refuse: the camera
// (kind "video") or everything ("all").
const denyJS = `
(() => {
  const deny = %q;
  const md = navigator.mediaDevices;
  const real = md.getUserMedia.bind(md);
  md.getUserMedia = (c) => (deny === 'all' || (c && c.video))
    ? Promise.reject(new DOMException('Permission denied', 'NotAllowedError'))
    : real(c);
})();`

// TestBrowserWithoutCamera: a participant who refuses the camera joins
// with audio only, one who refuses everything watches; both are told, and
// the room works around them.
func TestBrowserWithoutCamera(t *testing.T) {
	path := needBrowser(t)
	base := startServer(t, 0)
	b := newBrowser(t, path, base)
	host := b.join(base, "shy", "host")
	hostID := b.joined(host)
	open := func(name, deny string) *tab {
		tb := b.tab(name)
		if _, err := chromedp.Call(tb.ctx, page.AddScriptToEvaluateOnNewDocument,
			page.AddScriptToEvaluateOnNewDocumentParams{Source: fmt.Sprintf(denyJS, deny)}); err != nil {
			t.Fatal(err)
		}
		tb.do(t, chromedp.Navigate(base+"/r/shy?name="+name+"&autojoin=1"))
		return tb
	}
	voice, watcher := open("voice", "video"), open("watcher", "all")
	voiceID, watcherID := b.joined(voice), b.joined(watcher)
	for _, c := range []struct {
		tb   *tab
		want string
	}{{voice, "Camera: permission denied. Joining with audio only."}, {watcher, "Camera and microphone: permission denied. Joining to watch and listen only."}} {
		s := b.receivesFrom(c.tb, 30, true, map[string]string{"host": hostID})
		if s.Message != c.want {
			t.Errorf("%s: message %q, want %q", c.tb.name, s.Message, c.want)
		}
		var camDisabled bool
		if err := c.tb.eval(`return document.getElementById('toggle-cam').disabled`, &camDisabled); err != nil || !camDisabled {
			t.Errorf("%s: camera button enabled without a camera (%v)", c.tb.name, err)
		}
	}
	b.waitSnapshot(host, "sound from voice, tiles without video", 20*time.Second, func(s snapshot) (bool, string) {
		v, okV := s.tile(voiceID)
		w, okW := s.tile(watcherID)
		good := okV && okW && v["hasVideo"] == false && w["hasVideo"] == false && s.Audio[voiceID] > 0
		return good, fmt.Sprintf("tiles %v, audio %v", s.Tiles, s.Audio)
	})
}

// TestBrowserServerUnreachable: a page whose server has no signaling
// endpoint says it cannot reach it, instead of hanging.
func TestBrowserServerUnreachable(t *testing.T) {
	path := needBrowser(t)
	srv := httptest.NewServer(web.Handler()) // pages only, no /ws
	t.Cleanup(srv.Close)
	b := newBrowser(t, path, srv.URL)
	tb := b.join(srv.URL, "nowhere", "ann")
	b.waitSnapshot(tb, "unreachable message", 15*time.Second, func(s snapshot) (bool, string) {
		ok := strings.Contains(s.Message, "cannot be reached") && s.Status["state"] == "error"
		return ok, fmt.Sprintf("message %q, status %v", s.Message, s.Status)
	})
	var joinEnabled bool
	if err := tb.eval(`return !document.getElementById('join').disabled && !document.getElementById('prejoin').hidden`, &joinEnabled); err != nil || !joinEnabled {
		t.Errorf("the join form is not offered again (%v)", err)
	}
}

// TestBrowserAdaptiveSubscribe: a tile receives the layer that fits its
// size on screen, a hidden tile is paused, and a sharper screen gets a
// higher layer.
func TestBrowserAdaptiveSubscribe(t *testing.T) {
	path := needBrowser(t)
	base := startServer(t, 0)
	b := newBrowser(t, path, base)
	pub, viewer := b.join(base, "sizes", "pub"), b.join(base, "sizes", "viewer")
	pubID := b.joined(pub)
	b.joined(viewer)
	b.receivesFrom(viewer, 30, false, map[string]string{"pub": pubID})
	layer := func(s snapshot) (current string, paused bool) {
		d, _ := s.Layers[pubID].(map[string]any)
		c, _ := d["current"].(string)
		p, _ := d["paused"].(bool)
		return c, p
	}
	// Two tiles in a 1280x800 window are about 500 px wide: a layer of
	// 1280x720 would be wasted, 640x360 fits.
	s := b.waitSnapshot(viewer, "a layer below high", 20*time.Second, func(s snapshot) (bool, string) {
		c, _ := layer(s)
		return c == "low" || c == "medium", fmt.Sprintf("layers %v", s.Layers)
	})
	if tl, _ := s.tile(pubID); tl == nil || tl["width"].(float64) > 700 {
		t.Fatalf("tile %v: the test expects it narrower than 700 px", tl)
	}
	// Hidden: paused, and no more frames.
	hide := func(display string) {
		var ok bool
		js := fmt.Sprintf(`document.querySelector('figure.tile[data-participant=%q]').style.display = %q; return true`, pubID, display)
		if err := viewer.eval(js, &ok); err != nil {
			t.Fatal(err)
		}
	}
	hide("none")
	s = b.waitSnapshot(viewer, "paused", 10*time.Second, func(s snapshot) (bool, string) {
		_, p := layer(s)
		return p, fmt.Sprintf("layers %v", s.Layers)
	})
	// Frames in flight drain, then none come: 2 s (40 frames' time) without one.
	frozen := b.settles("a paused tile stops decoding", 10*time.Second, 8, func() (int, error) {
		s, err := viewer.snapshot()
		return s.Frames[pubID], err
	})
	hide("")
	b.waitSnapshot(viewer, "resumed", 15*time.Second, func(s snapshot) (bool, string) {
		c, p := layer(s)
		return !p && c != "" && s.Frames[pubID] > frozen+20, fmt.Sprintf("layers %v, frames %d", s.Layers, s.Frames[pubID])
	})
	// The same tile on a screen with twice the pixel density needs the top
	// layer.
	var size [2]int64
	if err := viewer.eval(`return [innerWidth, innerHeight]`, &size); err != nil {
		t.Fatal(err)
	}
	viewer.do(t, chromedp.EmulateViewport(size[0], size[1], chromedp.EmulateScale(2)))
	// The publisher may not send its high layer yet (Chromium starts it once
	// its bandwidth estimate allows; on a machine too busy, never), and the
	// viewer's estimate has to grow to it: allow for both.
	b.waitSnapshot(pub, "the publisher encodes its high layer", 30*time.Second, func(s snapshot) (bool, string) {
		return s.Sent["h"] > 0, fmt.Sprintf("frames encoded per layer %v", s.Sent)
	})
	b.waitSnapshot(viewer, "the high layer", 30*time.Second, func(s snapshot) (bool, string) {
		c, _ := layer(s)
		return c == "high", fmt.Sprintf("layers %v", s.Layers)
	})
}

// TestBrowserScreenShare: a shared screen reaches the others as an extra
// tile on the stage, camera tiles become thumbnails on the low layer, and
// stopping the share removes it.
func TestBrowserScreenShare(t *testing.T) {
	path := needBrowser(t)
	base := startServer(t, 0)
	b := newBrowser(t, path, base)
	pub, viewer := b.join(base, "demo", "pub"), b.join(base, "demo", "viewer")
	pubID := b.joined(pub)
	b.joined(viewer)
	b.receivesFrom(viewer, 10, false, map[string]string{"pub": pubID})
	// A click is a user gesture, which getDisplayMedia requires.
	pub.do(t, chromedp.Click(chromedp.CSS("#toggle-screen")))
	screen := pubID + "/screen"
	b.waitSnapshot(viewer, "the screen on the stage, camera thumbnails on the low layer", 30*time.Second, func(s snapshot) (bool, string) {
		var onStage bool
		for _, tl := range s.Tiles {
			if tl["key"] == screen && tl["source"] == "screen" && tl["participant"] == pubID {
				onStage = true
			}
		}
		cam, _ := s.Layers[pubID].(map[string]any)
		ok := onStage && s.Frames[screen] > 30 && cam != nil && cam["current"] == "low"
		return ok, fmt.Sprintf("tiles %v, frames %v, layers %v", s.Tiles, s.Frames, s.Layers)
	})
	var stage struct {
		Stage     []string `json:"stage"`
		Own       bool     `json:"own"`
		Thumbnail float64  `json:"thumbnail"`
		Big       float64  `json:"big"`
	}
	if err := viewer.eval(`return {stage: [...document.querySelectorAll('#stage .tile')].map(e => e.dataset.key),
  thumbnail: document.querySelector('#grid .tile').clientWidth, big: document.querySelector('#stage .tile').clientWidth}`, &stage); err != nil {
		t.Fatal(err)
	}
	if len(stage.Stage) != 1 || stage.Stage[0] != screen || stage.Big < 2*stage.Thumbnail {
		t.Errorf("stage %v: the screen %v px wide, camera tiles %v px", stage.Stage, stage.Big, stage.Thumbnail)
	}
	if err := pub.eval(`return !!document.querySelector('#stage .tile[data-key="self/screen"]')`, &stage.Own); err != nil || !stage.Own {
		t.Errorf("the sharer does not see its own screen (%v)", err)
	}
	pub.do(t, chromedp.Click(chromedp.CSS("#toggle-screen")))
	b.waitSnapshot(viewer, "the screen gone", 15*time.Second, func(s snapshot) (bool, string) {
		for _, tl := range s.Tiles {
			if tl["source"] == "screen" {
				return false, fmt.Sprintf("tiles %v", s.Tiles)
			}
		}
		return len(s.Tiles) == 2, fmt.Sprintf("tiles %v", s.Tiles)
	})
}
