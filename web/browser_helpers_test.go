package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/confab-sfu/confab/internal/testserver"
	"github.com/confab-sfu/confab/room"
)

// Browser tests run inside a private network namespace where lo is the only
// interface: Chromium sends ICE checks from every interface it has, and
// here it has only loopback. TestMain re-runs the test binary there.
const netnsEnv = "CONFAB_TEST_IN_NETNS"

// netnsSetup brings lo up and, for Firefox, adds a second local address:
// Firefox gathers no ICE candidate at all where lo is the only interface.
// The address is on one end of a veth pair whose other end has none, and
// the default route points there: packets between local addresses still go
// over lo, and nothing can leave the namespace (it forwards nothing). When
// it works, netnsAddrEnv names the address.
const netnsSetup = `ip link set lo up && ` +
	`if ip link add v0 type veth peer name v1 && ip link set v0 addrgenmode none && ip link set v1 addrgenmode none && ` +
	`ip addr add ` + firefoxAddr + `/32 dev v0 && ip link set v0 up && ip link set v1 up && ip route add default dev v0; ` +
	`then export ` + netnsAddrEnv + `=` + firefoxAddr + `; fi; `

// firefoxAddr is the namespace's second local address; servers that
// Firefox joins accept ICE candidates of firefoxNet.
const (
	firefoxAddr = "10.255.0.1"
	firefoxNet  = "10.255.0.0/16"
	// blockedAddr is a third local address: a server advertising it, where
	// only a TCP forwarder listens, has its UDP blocked (browser_check_test).
	blockedAddr  = "10.255.0.2"
	netnsAddrEnv = "CONFAB_TEST_NETNS_ADDR"
)

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
		return 0, fmt.Errorf("cannot create a network namespace: %w: %s", err, out)
	}
	args := append(flags, "--", "sh", "-c", netnsSetup+`exec "$0" "$@"`, os.Args[0])
	cmd := exec.Command("unshare", append(args, os.Args[1:]...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), netnsEnv+"=1")
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), nil
		}
		return 0, fmt.Errorf("run the tests in the namespace: %w", err)
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
	_, u := testserver.Start(t, room.Config{MaxParticipants: maxParticipants})
	return u
}

// browser is one headless Chromium; each participant is a tab of it. Its
// pages watch the tabs (and any Firefox added to them).
type browser struct {
	*pages
	ctx  context.Context
	root *testing.T // the test that owns the browser: its tabs close with it
}

// in is the same browser for a subtest: failures fail t, and tabs opened
// there stay open for the next subtests.
func (b *browser) in(t *testing.T) *browser {
	return &browser{pages: b.pages.in(t), ctx: b.ctx, root: b.root}
}

// tab is one participant's page and its console log.
type tab struct {
	name string
	ctx  context.Context
	mu   sync.Mutex
	log  strings.Builder
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

// newBrowser starts Chromium with a fake camera and microphone that grants
// media permission without asking, and loopback ICE candidates allowed.
func newBrowser(t *testing.T, path string, base string, extra ...chromedp.ExecAllocatorOption) *browser {
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
		// One --disable-features only: Chromium obeys a single one.
		chromedp.Flag("disable-features", "Translate,WebRtcHideLocalIpsWithMdns"),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"),
		chromedp.WindowSize(1280, 800),
	}
	opts = append(opts, extra...)
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
	b := &browser{pages: newPages(t), ctx: bctx, root: t}
	warm := b.tab("warm-up")
	if err := chromedp.Do(warm.ctx, chromedp.Navigate(base+"/")); err != nil {
		t.Fatalf("open the landing page: %v", err)
	}
	for range 3 {
		var ok bool
		if err := warm.eval(warmUpJS, &ok); err == nil && ok {
			return b
		}
	}
	t.Fatal("Chromium gathers no loopback ICE candidate")
	return nil
}

// tab opens a tab, recording its console for failure reports.
func (b *browser) tab(name string) *tab {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	b.root.Cleanup(cancel)
	tb := &tab{name: name, ctx: ctx}
	chromedp.Listen(ctx, func(ev any) {
		e, ok := ev.(*cdpruntime.EventConsoleAPICalled)
		if !ok {
			return
		}
		tb.mu.Lock()
		defer tb.mu.Unlock()
		fmt.Fprintf(&tb.log, "[%s] %s:", name, e.Type)
		for _, a := range e.Args {
			if len(a.Value) > 0 {
				fmt.Fprintf(&tb.log, " %s", a.Value)
			} else {
				fmt.Fprintf(&tb.log, " %s", a.Description)
			}
		}
		tb.log.WriteString("\n")
	})
	if err := chromedp.Do(ctx); err != nil {
		b.t.Fatalf("open tab %s: %v", name, err)
	}
	b.add(tb)
	return tb
}

// join opens the room page with the automation contract's autojoin.
func (b *browser) join(base, roomName, name string) *tab {
	b.t.Helper()
	tb := b.tab(name)
	u := fmt.Sprintf("%s/r/%s?name=%s&autojoin=1", base, roomName, url.QueryEscape(name))
	if err := chromedp.Do(tb.ctx, chromedp.Navigate(u)); err != nil {
		b.t.Fatalf("open %s: %v", u, err)
	}
	return tb
}

// eval runs JavaScript (a function body, may await) in the tab and decodes
// its JSON result into out.
func (tb *tab) eval(js string, out any) error {
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(async () => JSON.stringify(await (async () => {`+js+`})()))()`, chromedp.EvalAwaitPromise))
	if err != nil {
		return fmt.Errorf("evaluate in %s: %w", tb.name, err)
	}
	return json.Unmarshal([]byte(s), out)
}

// do runs chromedp actions in the tab or fails the test.
func (tb *tab) do(t *testing.T, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", tb.name, err)
	}
}

func (tb *tab) label() string { return tb.name }

// console returns the tab's console log.
func (tb *tab) console() string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return tb.log.String()
}

func (tb *tab) snapshot() (snapshot, error) { return snapshotOf(tb) }

// frameVideoFrames counts the frames shown by the video of the first
// iframe of a tab's page. The frame may be of another origin: it is read
// from an isolated world, which shares the frame's DOM but not its scripts.
func frameVideoFrames(tb *tab) (int, error) {
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	tree, err := chromedp.Call(ctx, page.GetFrameTree, cdp.Empty{})
	if err != nil {
		return 0, err
	}
	if tree.FrameTree == nil || len(tree.FrameTree.ChildFrames) == 0 {
		return 0, fmt.Errorf("no iframe yet")
	}
	world, err := chromedp.Call(ctx, page.CreateIsolatedWorld, page.CreateIsolatedWorldParams{FrameID: tree.FrameTree.ChildFrames[0].Frame.ID})
	if err != nil {
		return 0, err
	}
	in := func(p *cdpruntime.EvaluateParams) { p.ContextID = world.ExecutionContextID }
	return chromedp.Run(ctx, chromedp.Evaluate[int](`(() => {
  const v = document.querySelector('video');
  return v && v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality().totalVideoFrames : 0;
})()`, in))
}

// screenshot saves the tab as PNG under the test output directory.
func (tb *tab) screenshot(t *testing.T, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 15*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(outputDir(t), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Errorf("save screenshot: %v", err)
		return
	}
	t.Logf("screenshot: %s", path)
}

func outputDir(t *testing.T) string {
	dir := os.Getenv("CONFAB_TEST_OUTPUT")
	if dir == "" {
		_, file, _, _ := runtime.Caller(0)
		dir = filepath.Join(filepath.Dir(file), "..", "testoutput")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("create test output directory: %v", err)
	}
	return dir
}

// keys lists a map's keys, sorted, for messages.
func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
