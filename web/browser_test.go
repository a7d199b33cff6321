package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/confab-sfu/confab/internal/testserver"
	"github.com/confab-sfu/confab/loadtest"
	"github.com/confab-sfu/confab/room"
	"github.com/confab-sfu/confab/signal"
)

// Browser tests run inside a private network namespace where lo is the only
// interface: Chromium sends ICE checks from every interface it has, and
// here it has only loopback. TestMain re-runs the test binary there.
const netnsEnv = "CONFAB_TEST_IN_NETNS"

// netnsErr says why the namespace could not be entered ("" when inside).
var netnsErr string

func TestMain(m *testing.M) {
	if os.Getenv(netnsEnv) == "" {
		if code, err := rerunInNetns(); err == nil {
			os.Exit(code)
		} else {
			netnsErr = err.Error()
		}
	}
	os.Exit(m.Run())
}

// rerunInNetns runs this test binary again in a new network namespace with
// lo up, and returns its exit code.
func rerunInNetns() (int, error) {
	if _, err := exec.LookPath("unshare"); err != nil {
		return 0, fmt.Errorf("unshare not found: %w", err)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return 0, fmt.Errorf("ip not found: %w", err)
	}
	flags := []string{"--net"}
	if os.Geteuid() != 0 {
		flags = []string{"--net", "--map-root-user"}
	}
	probe := exec.Command("unshare", append(flags, "--", "ip", "link", "set", "lo", "up")...)
	if out, err := probe.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("cannot create a network namespace: %v: %s", err, out)
	}
	args := append(flags, "--", "sh", "-c", `ip link set lo up && exec "$0" "$@"`, os.Args[0])
	cmd := exec.Command("unshare", append(args, os.Args[1:]...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), netnsEnv+"=1")
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), nil
		}
		return 0, err
	}
	return 0, nil
}

// needBrowser returns Chromium's path, or skips (fails under CONFAB_E2E=1).
func needBrowser(t *testing.T) string {
	t.Helper()
	mandatory := os.Getenv("CONFAB_E2E") == "1"
	miss := func(why string) {
		if mandatory {
			t.Fatalf("browser tests are mandatory (CONFAB_E2E=1): %s", why)
		}
		t.Skip(why)
	}
	if os.Getenv(netnsEnv) == "" {
		miss("not isolated in a network namespace: " + netnsErr)
	}
	path := os.Getenv("CONFAB_CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := os.Stat(path); err != nil {
		miss("no Chromium at " + path + " (apt-get install chromium, or set CONFAB_CHROMIUM)")
	}
	return path
}

// startServer runs the whole server on 127.0.0.1 with loopback-only ICE.
func startServer(t *testing.T, maxParticipants int) string {
	t.Helper()
	_, url := testserver.Start(t, room.Config{MaxParticipants: maxParticipants})
	return url
}

// browser starts one headless Chromium; tabs share it.
type browser struct {
	ctx  context.Context
	logs sync.Map // tab name -> *strings.Builder
}

// warmUpJS gathers ICE candidates once. Chromium enumerates networks when
// the first PeerConnection needs them; in a namespace where nothing ever
// changes, a gathering that starts before the enumeration ends can wait
// forever, so the tests let it finish before any participant joins.
const warmUpJS = `
const pc = new RTCPeerConnection();
pc.createDataChannel('warm-up');
const found = new Promise((resolve) => {
  pc.onicecandidate = (e) => { if (e.candidate && e.candidate.address === '127.0.0.1') resolve(true); };
  setTimeout(() => resolve(false), 8000);
});
await pc.setLocalDescription();
const ok = await found;
pc.close();
return ok;`

func newBrowser(t *testing.T, path string, url string) *browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", "new"),
		chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("disable-features", "Translate,WebRtcHideLocalIpsWithMdns"),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"),
		chromedp.WindowSize(1280, 800),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	if err := chromedp.Do(bctx); err != nil {
		cancelAlloc()
		t.Fatalf("start chromium: %v", err)
	}
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	b := &browser{ctx: bctx}
	warm := b.tab(t, "warm-up")
	if err := chromedp.Do(warm, chromedp.Navigate(url+"/")); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		var ok bool
		if err := eval(warm, warmUpJS, &ok); err == nil && ok {
			return b
		}
	}
	t.Fatal("Chromium gathers no loopback ICE candidate")
	return nil
}

// tab opens a participant's tab, recording its console for failures.
func (b *browser) tab(t *testing.T, name string) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	t.Cleanup(cancel)
	log := &strings.Builder{}
	var mu sync.Mutex
	b.logs.Store(name, log)
	_ = chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*cdpruntime.EventConsoleAPICalled); ok {
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintf(log, "[%s] %s:", name, e.Type)
			for _, a := range e.Args {
				fmt.Fprintf(log, " %s", a.Value)
			}
			log.WriteString("\n")
		}
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatal(err)
	}
	return ctx
}

func (b *browser) dumpLogs(t *testing.T) {
	b.logs.Range(func(_, v any) bool {
		t.Log(v.(*strings.Builder).String())
		return true
	})
}

// eval runs JavaScript in a tab and decodes its JSON result into out.
func eval(ctx context.Context, js string, out any) error {
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(async () => JSON.stringify(await (async () => {`+js+`})()))()`, chromedp.EvalAwaitPromise))
	if err != nil {
		return err
	}
	return json.Unmarshal([]byte(s), out)
}

// inbound reads what a tab receives, per remote participant.
type inbound struct {
	Me     string           `json:"me"`
	Frames map[string]int   `json:"frames"` // participant -> frames decoded
	Audio  map[string]int   `json:"audio"`  // participant -> audio packets
	Tiles  []map[string]any `json:"tiles"`
}

const inboundJS = `
const c = window.confab; if (!c || !c.pc) return {frames: {}, audio: {}, tiles: []};
const out = {me: c.participantId, frames: {}, audio: {}, tiles: c.tiles()};
const r = await c.pc.getStats();
r.forEach(s => {
  if (s.type !== 'inbound-rtp') return;
  const id = c.state.mids.get(s.mid); const info = id && c.state.tracks.get(id);
  if (!info) return;
  if (s.kind === 'video') out.frames[info.participant] = (out.frames[info.participant] || 0) + (s.framesDecoded || 0);
  else out.audio[info.participant] = (out.audio[info.participant] || 0) + (s.packetsReceived || 0);
});
return out;`

func waitFor(t *testing.T, b *browser, what string, within time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	last := ""
	for time.Now().Before(deadline) {
		ok, msg := cond()
		if ok {
			return
		}
		last = msg
		time.Sleep(250 * time.Millisecond)
	}
	b.dumpLogs(t)
	t.Fatalf("timed out waiting for %s: %s", what, last)
}

func outputDir(t *testing.T) string {
	dir := os.Getenv("CONFAB_TEST_OUTPUT")
	if dir == "" {
		_, file, _, _ := runtime.Caller(0)
		dir = filepath.Join(filepath.Dir(file), "..", "testoutput")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestThreeBrowsersMeet(t *testing.T) {
	path := needBrowser(t)
	url := startServer(t, 0)
	b := newBrowser(t, path, url)
	names := []string{"ada", "grace", "linus"}
	tabs := map[string]context.Context{}
	for _, n := range names {
		tab := b.tab(t, n)
		if err := chromedp.Do(tab, chromedp.Navigate(fmt.Sprintf("%s/r/standup?name=%s&autojoin=1", url, n))); err != nil {
			t.Fatal(err)
		}
		tabs[n] = tab
	}
	ids := map[string]string{}
	for _, n := range names {
		waitFor(t, b, n+" joined", 20*time.Second, func() (bool, string) {
			var in inbound
			if err := eval(tabs[n], inboundJS, &in); err != nil {
				return false, err.Error()
			}
			ids[n] = in.Me
			return in.Me != "", "not joined"
		})
	}
	// Everyone decodes video from both others, and hears them.
	for _, n := range names {
		waitFor(t, b, n+" decodes both others", 40*time.Second, func() (bool, string) {
			var in inbound
			if err := eval(tabs[n], inboundJS, &in); err != nil {
				return false, err.Error()
			}
			for _, o := range names {
				if o == n {
					continue
				}
				if in.Frames[ids[o]] <= 30 || in.Audio[ids[o]] <= 0 {
					return false, fmt.Sprintf("from %s: %d frames, %d audio packets", o, in.Frames[ids[o]], in.Audio[ids[o]])
				}
			}
			return true, ""
		})
	}
	png, err := chromedp.Run(tabs["ada"], chromedp.FullScreenshot(100))
	if err == nil {
		shot := filepath.Join(outputDir(t), "three-person-room.png")
		if err := os.WriteFile(shot, png, 0o644); err == nil {
			t.Logf("screenshot: %s", shot)
		}
	}

	// Ada turns her camera off: the others see it.
	if err := chromedp.Do(tabs["ada"], chromedp.Click(chromedp.CSS("#toggle-cam"))); err != nil {
		t.Fatal(err)
	}
	tileOf := func(tab context.Context, participant string) (map[string]any, bool) {
		var in inbound
		if err := eval(tab, inboundJS, &in); err != nil {
			return nil, false
		}
		for _, tl := range in.Tiles {
			if tl["participant"] == participant && !strings.HasSuffix(fmt.Sprint(tl["key"]), "/screen") {
				return tl, true
			}
		}
		return nil, false
	}
	for _, n := range []string{"grace", "linus"} {
		waitFor(t, b, n+" sees ada's camera off", 10*time.Second, func() (bool, string) {
			tl, ok := tileOf(tabs[n], ids["ada"])
			return ok && tl["mutedVideo"] == true, fmt.Sprintf("tile %v", tl)
		})
	}
	// Ada leaves: her tile disappears for the others.
	if err := chromedp.Do(tabs["ada"], chromedp.Click(chromedp.CSS("#leave"))); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"grace", "linus"} {
		waitFor(t, b, n+" sees ada leave", 10*time.Second, func() (bool, string) {
			_, ok := tileOf(tabs[n], ids["ada"])
			return !ok, "ada's tile is still there"
		})
	}
}

func TestBrowserChatAndFullRoom(t *testing.T) {
	path := needBrowser(t)
	url := startServer(t, 2)
	b := newBrowser(t, path, url)
	a, c := b.tab(t, "ann"), b.tab(t, "cid")
	for tab, n := range map[context.Context]string{a: "ann", c: "cid"} {
		if err := chromedp.Do(tab, chromedp.Navigate(fmt.Sprintf("%s/r/pair?name=%s&autojoin=1", url, n))); err != nil {
			t.Fatal(err)
		}
	}
	for _, tab := range []context.Context{a, c} {
		waitFor(t, b, "joined", 20*time.Second, func() (bool, string) {
			var in inbound
			_ = eval(tab, inboundJS, &in)
			return in.Me != "", "not joined"
		})
	}
	if err := chromedp.Do(a, chromedp.SendKeys(chromedp.CSS("#chat-input"), "hello from ann"), chromedp.Click(chromedp.CSS("#chat-form button"))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, b, "chat arrives", 10*time.Second, func() (bool, string) {
		var chat []map[string]any
		if err := eval(c, `return window.confab.chat()`, &chat); err != nil {
			return false, err.Error()
		}
		for _, m := range chat {
			if m["text"] == "hello from ann" && m["name"] == "ann" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("chat %v", chat)
	})
	// A third person finds the room full and is told so.
	d := b.tab(t, "dee")
	if err := chromedp.Do(d, chromedp.Navigate(url+"/r/pair?name=dee&autojoin=1")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, b, "room-full message", 15*time.Second, func() (bool, string) {
		msg, err := chromedp.Run(d, chromedp.Text(chromedp.CSS("#prejoin-message")))
		return err == nil && strings.Contains(msg, "full"), "message: " + msg
	})
}

func TestBrowserDecodesGoPeer(t *testing.T) {
	path := needBrowser(t)
	url := startServer(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	api, err := loadtest.NewAPI(loadtest.APIOptions{Loopback: true})
	if err != nil {
		t.Fatal(err)
	}
	video, err := loadtest.NewVideoSource("go-cam", "go-peer", false, 1)
	if err != nil {
		t.Fatal(err)
	}
	peer, err := loadtest.Join(ctx, loadtest.PeerOptions{URL: url, Room: "mixed", Name: "gopher", API: api,
		OnKeyframeRequest: func(string) { video.RequestKeyframe() }})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Leave()
	if _, err := peer.Publish(ctx, signal.SourceCamera, video.Tracks()...); err != nil {
		t.Fatal(err)
	}
	go video.Run(ctx)

	b := newBrowser(t, path, url)
	tab := b.tab(t, "viewer")
	if err := chromedp.Do(tab, chromedp.Navigate(url+"/r/mixed?name=viewer&autojoin=1")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, b, "Chromium decodes the Go peer's VP8", 30*time.Second, func() (bool, string) {
		var in inbound
		if err := eval(tab, inboundJS, &in); err != nil {
			return false, err.Error()
		}
		n := in.Frames[peer.ID()]
		return n > 30, fmt.Sprintf("%d frames decoded", n)
	})
}
