package web_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/confab-sfu/confab/internal/testserver"
	"github.com/confab-sfu/confab/room"
	"github.com/confab-sfu/confab/signal/client"
	"github.com/confab-sfu/confab/signal/client/clip"
)

// watchState is what the player page shows, from window.confabWatch.
type watchState struct {
	State      string `json:"state"`
	Text       string `json:"text"`
	Overlay    string `json:"overlay"` // #watch-status data-state
	Visible    bool   `json:"visible"` // the overlay is displayed
	Unmute     bool   `json:"unmute"`  // the unmute button is displayed
	Muted      bool   `json:"muted"`
	Frames     int    `json:"frames"`
	Width      int    `json:"width"`
	SessionURL string `json:"sessionUrl"`
}

const watchStateJS = `
const w = window.confabWatch;
const o = document.getElementById('watch-status');
const v = document.getElementById('watch-video');
if (!w) return {state: '', text: '', overlay: '', visible: false, unmute: false, muted: true, frames: 0, width: 0, sessionUrl: ''};
return {state: w.state, text: document.getElementById('watch-status-text').textContent,
  overlay: o.dataset.state, visible: getComputedStyle(o).display !== 'none',
  unmute: !document.getElementById('watch-unmute').hidden, muted: v.muted,
  frames: await w.framesDecoded(), width: v.videoWidth, sessionUrl: w.sessionUrl};`

func (b *browser) watchState(tb *tab) (watchState, error) {
	var s watchState
	err := tb.eval(watchStateJS, &s)
	return s, err
}

// waitWatch waits until cond holds for the player's state.
func (b *browser) waitWatch(tb *tab, what string, within time.Duration, cond func(watchState) bool) watchState {
	b.t.Helper()
	var s watchState
	b.waitFor(tb.name+": "+what, within, func() (bool, string) {
		var err error
		if s, err = b.watchState(tb); err != nil {
			return false, err.Error()
		}
		return cond(s), fmt.Sprintf("%+v", s)
	})
	return s
}

// goPresenter publishes the loadtest clips (VP8 simulcast and Opus) from a
// Go peer into a room, as TestBrowserAndGoPeer does, until stop is called
// or the test ends.
func goPresenter(t *testing.T, base, roomName, token string) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	api, err := client.NewAPI(client.APIOptions{Loopback: true})
	if err != nil {
		t.Fatal(err)
	}
	video, err := clip.NewVideoSource("go-cam", "go-presenter", true, 2)
	if err != nil {
		t.Fatal(err)
	}
	audio, err := clip.NewAudioSource("go-mic", "go-presenter")
	if err != nil {
		t.Fatal(err)
	}
	peer, err := client.Join(ctx, client.Params{URL: base, Room: roomName, Name: "presenter", Token: token, API: api,
		OnKeyframeRequest: func(string) { video.RequestKeyframe() }})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	var sources sync.WaitGroup
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			sources.Wait()
			_ = peer.Leave()
		})
	}
	t.Cleanup(stop)
	publishClips(t, ctx, peer, video, audio, &sources)
	return stop
}

// TestBrowserWatch: the /watch/{room} player over WHEP. A player opened
// before anything is published waits and says so, then plays once a Go
// presenter starts (its 404s are retried); a player opened on a live room
// plays at once. Both decode > 30 frames with the overlay hidden, start
// muted with an unmute button, and hold a WHEP session.
func TestBrowserWatch(t *testing.T) {
	path := needBrowser(t)
	mgr, base := testserver.Start(t, room.Config{})
	b := newBrowser(t, path, base)

	early := b.tab("early-player")
	spyOnWHEP(t, early)
	early.do(t, chromedp.Navigate(base+"/watch/empty-room"))
	s := b.waitWatch(early, "waiting for the broadcast", 10*time.Second, func(s watchState) bool {
		return s.State == "waiting" && s.Overlay == "waiting" && s.Visible
	})
	if s.Text != "Waiting for the broadcast to start…" || s.SessionURL != "" || s.Unmute {
		t.Errorf("a player of an empty room: %+v", s)
	}
	early.screenshot(t, "watch-waiting.png")
	// Through one more retry at least: still waiting, nothing else.
	b.waitFor("early-player: a retry answered", 10*time.Second, func() (bool, string) {
		var answers []int
		if err := early.eval(`return window.whepAnswers`, &answers); err != nil {
			return false, err.Error()
		}
		return len(answers) >= 2, fmt.Sprintf("answers %v", answers)
	})
	if s, err := b.watchState(early); err != nil || s.State != "waiting" || s.Text != "Waiting for the broadcast to start…" {
		t.Errorf("still waiting after a retry: %+v %v", s, err)
	}
	if answers := evalT[[]int](t, early, `return window.whepAnswers`); answers[0] != 404 || answers[1] != 404 {
		t.Errorf("the player's offers to an empty room were answered %v, want 404s", answers)
	}

	goPresenter(t, base, "empty-room", "")
	start := time.Now()
	// Retries come every 3 s; allow for the presenter's tracks to arrive.
	s = b.waitWatch(early, "plays once the broadcast starts", 15*time.Second, func(s watchState) bool {
		return s.State == "playing" && s.Frames > 30
	})
	t.Logf("the waiting player decodes > 30 frames %.1f s after the presenter joined", time.Since(start).Seconds())
	checkPlaying(t, s, "empty-room")

	goPresenter(t, base, "lecture", "")
	live := b.tab("player")
	start = time.Now()
	live.do(t, chromedp.Navigate(base+"/watch/lecture"))
	s = b.waitWatch(live, "decodes > 30 frames", 30*time.Second, func(s watchState) bool {
		return s.State == "playing" && s.Frames > 30
	})
	t.Logf("the player of a live room decodes > 30 frames %.1f s after opening", time.Since(start).Seconds())
	checkPlaying(t, s, "lecture")
	live.screenshot(t, "watch-playing.png")

	// Embedded by a page of another origin (another port): the player's
	// frame-ancestors allow it, so it loads and opens its WHEP session.
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>Course page</title><body style="margin:0;background:#fff">`+
			`<h1 style="font:20px sans-serif">Physics 101</h1>`+
			`<iframe src="%s/watch/lecture" allow="autoplay; fullscreen" width="640" height="360" style="border:0"></iframe>`, base)
	}))
	t.Cleanup(site.Close)
	embed := b.tab("embedding-site")
	embed.do(t, chromedp.Navigate(site.URL))
	b.waitFor("the embedded player's WHEP session", 20*time.Second, func() (bool, string) {
		n := mgr.Room("lecture").Audience()
		return n == 2, fmt.Sprintf("audience %d", n)
	})
	b.waitFor("the embedded player shows frames", 20*time.Second, func() (bool, string) {
		n, err := frameVideoFrames(embed)
		if err != nil {
			return false, err.Error()
		}
		return n > 30, fmt.Sprintf("%d frames shown", n)
	})
	embed.screenshot(t, "watch-embedded.png")
}

func checkPlaying(t *testing.T, s watchState, roomName string) {
	t.Helper()
	if s.Overlay != "playing" || s.Visible {
		t.Errorf("%s: the overlay shows while playing: %+v", roomName, s)
	}
	if !s.Muted || !s.Unmute {
		t.Errorf("%s: the player should start muted with an unmute button: %+v", roomName, s)
	}
	if s.Width <= 0 {
		t.Errorf("%s: the video has no size: %+v", roomName, s)
	}
	if want := "/whep/" + roomName + "/V"; !strings.Contains(s.SessionURL, want) {
		t.Errorf("%s: session URL %q, want one under %s", roomName, s.SessionURL, want)
	}
}

// syncBuffer is a log sink the test can read while the server writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// whepSpyJS counts the page's POSTs to /whep/, and records the status of
// each answer, before any page script runs.
const whepSpyJS = `
(() => {
  window.whepPosts = 0;
  window.whepAnswers = [];
  const real = window.fetch.bind(window);
  window.fetch = async (url, opts) => {
    const post = String(url).includes('/whep/') && opts && opts.method === 'POST';
    if (post) window.whepPosts++;
    const resp = await real(url, opts);
    if (post) window.whepAnswers.push(resp.status);
    return resp;
  };
})();`

// spyOnWHEP installs whepSpyJS in a tab before its first page.
func spyOnWHEP(t *testing.T, tb *tab) {
	t.Helper()
	if _, err := chromedp.Call(tb.ctx, page.AddScriptToEvaluateOnNewDocument,
		page.AddScriptToEvaluateOnNewDocumentParams{Source: whepSpyJS}); err != nil {
		t.Fatal(err)
	}
}

// TestBrowserWatchReconnects: unmuting by a click; the presenter leaving
// (the server ends the WHEP session) sends the player back to waiting, and
// it plays the next presenter on a new session, still unmuted; leaving the
// page DELETEs the session.
func TestBrowserWatchReconnects(t *testing.T) {
	path := needBrowser(t)
	var logs syncBuffer
	mgr, base := testserver.Start(t, room.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	b := newBrowser(t, path, base)

	stop := goPresenter(t, base, "talk", "")
	player := b.tab("player")
	player.do(t, chromedp.Navigate(base+"/watch/talk?debug=1"))
	first := b.waitWatch(player, "plays", 30*time.Second, func(s watchState) bool {
		return s.State == "playing" && s.Frames > 30 && s.Unmute
	})
	if r := mgr.Room("talk"); r == nil || r.Audience() != 1 {
		t.Errorf("the room should count one viewer")
	}
	player.do(t, chromedp.Click(chromedp.CSS("#watch-unmute")))
	b.waitWatch(player, "unmuted", 5*time.Second, func(s watchState) bool { return !s.Muted && !s.Unmute })

	stop()
	stopped := time.Now()
	s := b.waitWatch(player, "back to waiting once the presenter left", 20*time.Second, func(s watchState) bool {
		return s.State == "waiting" && s.Visible
	})
	t.Logf("the player noticed the end of the broadcast after %.1f s", time.Since(stopped).Seconds())
	if s.Text != "The broadcast has stopped. Waiting for it to start again…" {
		t.Errorf("after the broadcast stopped: %+v", s)
	}

	goPresenter(t, base, "talk", "")
	s = b.waitWatch(player, "plays the next broadcast", 30*time.Second, func(s watchState) bool {
		return s.State == "playing" && s.Frames > 30
	})
	if s.SessionURL == first.SessionURL || s.SessionURL == "" {
		t.Errorf("a new session was expected: %q then %q", first.SessionURL, s.SessionURL)
	}
	if s.Muted || s.Unmute || s.Visible {
		t.Errorf("the sound, turned on before, should stay on: %+v", s)
	}

	// Session URLs are secrets that logs never show: count the deletions.
	deleted := func() int { return strings.Count(logs.String(), `reason="deleted by the client"`) }
	before := deleted()
	player.do(t, chromedp.Navigate("about:blank"))
	b.waitFor("the session deleted on leaving the page", 5*time.Second, func() (bool, string) {
		ok := deleted() > before
		return ok && mgr.Room("talk") != nil && mgr.Room("talk").Audience() == 0, "not yet"
	})
}

// TestBrowserWatchNeedsInvitation: on a server with an auth secret, the
// player without a token says it needs an invitation and does not retry;
// with a valid token in its URL it plays.
func TestBrowserWatchNeedsInvitation(t *testing.T) {
	path := needBrowser(t)
	secret := []byte("watch-test-secret-0123456789abcdef")
	base := startSecureServer(t, secret)
	b := newBrowser(t, path, base)
	goPresenter(t, base, "private", mint(t, secret, "private", "teacher", "Teacher", "moderator"))

	refused := b.tab("no-token")
	spyOnWHEP(t, refused)
	refused.do(t, chromedp.Navigate(base+"/watch/private"))
	s := b.waitWatch(refused, "refused", 10*time.Second, func(s watchState) bool { return s.State == "error" })
	if s.Text != "This stream needs a valid invitation link." || !s.Visible || s.Overlay != "error" {
		t.Errorf("without a token: %+v", s)
	}
	// Longer than any retry (1 s after a failure, 3 s while waiting).
	b.holds("one offer only (no retries)", 4*time.Second, func() (bool, string) {
		n := evalT[int](t, refused, `return window.whepPosts;`)
		return n == 1, fmt.Sprintf("without a token the player posted %d offers", n)
	})

	viewer := b.tab("with-token")
	tok := mint(t, secret, "private", "student", "Student", "viewer")
	viewer.do(t, chromedp.Navigate(base+"/watch/private?token="+url.QueryEscape(tok)))
	b.waitWatch(viewer, "plays with a token", 30*time.Second, func(s watchState) bool {
		return s.State == "playing" && s.Frames > 30
	})
}
