package web_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/testserver"
	"github.com/confab-sfu/confab/room"
)

// needFirefox returns Firefox's path, or skips (fails under CONFAB_E2E=1),
// as needBrowser does for Chromium.
func needFirefox(t *testing.T) string {
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
	if os.Getenv(netnsAddrEnv) == "" {
		miss("the network namespace has no second local address (veth), which Firefox needs to gather ICE candidates")
	}
	path := os.Getenv("CONFAB_FIREFOX")
	if path == "" {
		path = "/usr/bin/firefox-esr"
	}
	if _, err := os.Stat(path); err != nil {
		miss("no Firefox at " + path + " (apt-get install firefox-esr, or set CONFAB_FIREFOX)")
	}
	return path
}

// startMixedServer runs the server for meetings with Firefox: loopback ICE,
// and remote candidates from the namespace's second address accepted too
// (it exists only inside the test's namespace).
func startMixedServer(t *testing.T, cfg room.Config) (*room.Manager, string) {
	t.Helper()
	cfg.SFU.AllowedCIDRs = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix(firefoxNet)}
	return testserver.Start(t, cfg)
}

// firefoxPrefs: a fake camera and microphone granted without a prompt,
// loopback host candidates with real addresses (no mDNS names), sound
// that may play without a gesture, and none of the background traffic.
const firefoxPrefs = `
user_pref("media.navigator.streams.fake", true);
user_pref("media.navigator.permission.disabled", true);
user_pref("media.peerconnection.ice.loopback", true);
user_pref("media.peerconnection.ice.obfuscate_host_addresses", false);
user_pref("media.peerconnection.ice.default_address_only", false);
user_pref("media.autoplay.default", 0);
user_pref("media.autoplay.blocking_policy", 0);
user_pref("browser.shell.checkDefaultBrowser", false);
user_pref("browser.startup.homepage_override.mstone", "ignore");
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("toolkit.telemetry.reportingpolicy.firstRun", false);
user_pref("app.update.disabledForTesting", true);
user_pref("network.captive-portal-service.enabled", false);
user_pref("network.connectivity-service.enabled", false);
user_pref("browser.safebrowsing.malware.enabled", false);
user_pref("browser.safebrowsing.phishing.enabled", false);
user_pref("extensions.update.enabled", false);
`

// firefox is one headless Firefox driven over WebDriver BiDi: one
// participant (a second tab of one Firefox never gets its camera).
type firefox struct {
	name    string
	ctx     context.Context // the browser's: cancelled when the test ends
	bidi    *bidi
	context string // the top-level browsing context

	mu  sync.Mutex
	log strings.Builder
}

var bidiListening = regexp.MustCompile(`WebDriver BiDi listening on (ws://\S+)`)

// startFirefox starts a Firefox with its own profile, adds it to ps, and
// runs preload (when not empty) before every page's scripts. prefs are
// more user.js lines.
func startFirefox(ps *pages, path, name, preload string, prefs ...string) *firefox {
	t := ps.t
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "user.js"), []byte(firefoxPrefs+strings.Join(prefs, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, path, "--headless", "--no-remote", "--profile", dir, "--remote-debugging-port", "0", "about:blank")
	cmd.Env = append(os.Environ(), "HOME="+dir, "MOZ_HEADLESS=1", "MOZ_CRASHREPORTER_DISABLE=1")
	// Its own process group: the content processes end with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start firefox: %v", err)
	}
	f := &firefox{name: name, ctx: ctx}
	endpoint := make(chan string, 1)
	go f.readStderr(stderr, endpoint)
	t.Cleanup(func() {
		if f.bidi != nil {
			cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = f.bidi.call(cctx, "browser.close", map[string]any{}, nil)
			ccancel()
			f.bidi.close()
		}
		cancel()
		_ = cmd.Wait()
	})
	var ws string
	select {
	case ws = <-endpoint:
	case <-time.After(90 * time.Second):
		t.Fatalf("firefox %s: no WebDriver BiDi endpoint after 90 s:\n%s", name, f.console())
	}
	f.connect(t, ws, preload)
	t.Logf("firefox %s ready in %.1f s", name, time.Since(started).Seconds())
	ps.add(f)
	return f
}

// readStderr keeps Firefox's stderr for failure reports and hands over the
// BiDi endpoint it prints.
func (f *firefox) readStderr(r io.Reader, endpoint chan<- string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	sent := false
	for sc.Scan() {
		line := sc.Text()
		if m := bidiListening.FindStringSubmatch(line); m != nil && !sent {
			endpoint <- m[1]
			sent = true
			continue
		}
		f.logLine("[stderr] " + line)
	}
}

func (f *firefox) logLine(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	// Bounded: a long test must not keep every line.
	if f.log.Len() > 1<<20 {
		return
	}
	fmt.Fprintf(&f.log, "[%s] %s\n", f.name, s)
}

// connect opens the BiDi session, records the console, and installs the
// preload script.
func (f *firefox) connect(t *testing.T, ws, preload string) {
	ctx, cancel := context.WithTimeout(f.ctx, 30*time.Second)
	defer cancel()
	b, err := dialBiDi(ctx, ws, f.event)
	if err != nil {
		t.Fatalf("firefox %s: %v", f.name, err)
	}
	f.bidi = b
	if err := b.call(ctx, "session.subscribe", map[string]any{"events": []string{"log.entryAdded"}}, nil); err != nil {
		t.Fatalf("firefox %s: %v", f.name, err)
	}
	if f.context, err = b.topContext(ctx); err != nil {
		t.Fatalf("firefox %s: %v", f.name, err)
	}
	if preload != "" {
		err := b.call(ctx, "script.addPreloadScript", map[string]any{"functionDeclaration": "() => {" + preload + "}"}, nil)
		if err != nil {
			t.Fatalf("firefox %s: %v", f.name, err)
		}
	}
}

// event records console messages.
func (f *firefox) event(method string, params json.RawMessage) {
	if method != "log.entryAdded" {
		return
	}
	var e struct {
		Level string `json:"level"`
		Text  string `json:"text"`
	}
	if json.Unmarshal(params, &e) == nil {
		f.logLine(e.Level + ": " + e.Text)
	}
}

func (f *firefox) label() string { return f.name }

func (f *firefox) console() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.log.String()
}

// navigate loads u and waits for it to complete.
func (f *firefox) navigate(t *testing.T, u string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(f.ctx, 30*time.Second)
	defer cancel()
	if err := f.bidi.call(ctx, "browsingContext.navigate", map[string]any{"context": f.context, "url": u, "wait": "complete"}, nil); err != nil {
		t.Fatalf("firefox %s: open %s: %v", f.name, u, err)
	}
}

// join opens the room page with the automation contract's autojoin.
func (f *firefox) join(t *testing.T, base, roomName, query string) {
	t.Helper()
	f.navigate(t, fmt.Sprintf("%s/r/%s?name=%s&autojoin=1%s", base, roomName, url.QueryEscape(f.name), query))
}

func (f *firefox) eval(js string, out any) error {
	ctx, cancel := context.WithTimeout(f.ctx, 10*time.Second)
	defer cancel()
	s, err := f.bidi.evaluate(ctx, f.context, `(async () => JSON.stringify(await (async () => {`+js+`})()))()`)
	if err != nil {
		return fmt.Errorf("evaluate in %s: %w", f.name, err)
	}
	return json.Unmarshal([]byte(s), out)
}

func (f *firefox) snapshot() (snapshot, error) { return snapshotOf(f) }

// screenshot saves the page as PNG under the test output directory.
func (f *firefox) screenshot(t *testing.T, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(f.ctx, 15*time.Second)
	defer cancel()
	var r struct {
		Data string `json:"data"`
	}
	if err := f.bidi.call(ctx, "browsingContext.captureScreenshot", map[string]any{"context": f.context}, &r); err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	png, err := base64.StdEncoding.DecodeString(r.Data)
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	p := filepath.Join(outputDir(t), name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Errorf("save screenshot: %v", err)
		return
	}
	t.Logf("screenshot: %s", p)
}

// click clicks the element css selects with a real (WebDriver) mouse
// click: it gives the page the user activation that getDisplayMedia and
// unmuted playback ask for.
func (f *firefox) click(t *testing.T, css string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(f.ctx, 15*time.Second)
	defer cancel()
	var found struct {
		Nodes []struct {
			SharedID string `json:"sharedId"`
		} `json:"nodes"`
	}
	err := f.bidi.call(ctx, "browsingContext.locateNodes", map[string]any{"context": f.context,
		"locator": map[string]any{"type": "css", "value": css}, "maxNodeCount": 1}, &found)
	if err != nil || len(found.Nodes) == 0 {
		t.Fatalf("firefox %s: find %s: %v (%d nodes)", f.name, css, err, len(found.Nodes))
	}
	origin := map[string]any{"type": "element", "element": map[string]any{"sharedId": found.Nodes[0].SharedID}}
	err = f.bidi.call(ctx, "input.performActions", map[string]any{"context": f.context, "actions": []any{map[string]any{
		"type": "pointer", "id": "mouse", "parameters": map[string]any{"pointerType": "mouse"},
		"actions": []any{
			map[string]any{"type": "pointerMove", "x": 0, "y": 0, "origin": origin},
			map[string]any{"type": "pointerDown", "button": 0},
			map[string]any{"type": "pointerUp", "button": 0},
		},
	}}}, nil)
	if err != nil {
		t.Fatalf("firefox %s: click %s: %v", f.name, css, err)
	}
}
