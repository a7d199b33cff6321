package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, url string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func TestRoutes(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	cases := []struct {
		path, wantType, wantBody string
		status                   int
	}{
		{"/", "text/html; charset=utf-8", "Start a new meeting", 200},
		{"/r/standup", "text/html; charset=utf-8", "Join meeting", 200},
		{"/r/any-room.name_1", "text/html; charset=utf-8", "/static/js/room.js", 200},
		{"/r/" + strings.Repeat("a", 64), "text/html; charset=utf-8", "Join meeting", 200},
		{"/watch/lecture", "text/html; charset=utf-8", "/static/js/watch.js", 200},
		{"/watch/any-room.name_1", "text/html; charset=utf-8", `id="watch-status"`, 200},
		{"/static/js/watch.js", "text/javascript; charset=utf-8", "window.confabWatch", 200},
		{"/static/watch.css", "text/css; charset=utf-8", ".watch-status", 200},
		{"/static/js/room.js", "text/javascript; charset=utf-8", "window.confab", 200},
		{"/static/js/session.js", "text/javascript; charset=utf-8", "export class Session", 200},
		{"/static/js/negotiation.js", "text/javascript; charset=utf-8", "RTCPeerConnection", 200},
		{"/static/js/subscriptions.js", "text/javascript; charset=utf-8", "maxWidth", 200},
		{"/static/js/people.js", "text/javascript; charset=utf-8", "export class People", 200},
		{"/static/js/controls.js", "text/javascript; charset=utf-8", "getDisplayMedia", 200},
		{"/static/js/permissions.js", "text/javascript; charset=utf-8", "export class Permissions", 200},
		{"/static/js/notices.js", "text/javascript; charset=utf-8", "explainJoin", 200},
		{"/static/js/signaling.js", "text/javascript; charset=utf-8", "class Signaling", 200},
		{"/static/js/media.js", "text/javascript; charset=utf-8", "scaleResolutionDownBy", 200},
		{"/static/js/tiles.js", "text/javascript; charset=utf-8", "export class Tiles", 200},
		{"/static/js/layout.js", "text/javascript; charset=utf-8", "bestTileWidth", 200},
		{"/static/js/stats.js", "text/javascript; charset=utf-8", "inbound-rtp", 200},
		{"/static/js/landing.js", "text/javascript; charset=utf-8", "randomRoomName", 200},
		{"/static/js/auth.js", "text/javascript; charset=utf-8", "tokenClaims", 200},
		{"/static/app.css", "text/css; charset=utf-8", ".tile", 200},
		{"/static/favicon.svg", "image/svg+xml", "<svg", 200},
		{"/static/nope.js", "", "", 404},
		{"/static/room.html", "", "", 404}, // pages only at their routes
		{"/static/watch.html", "", "", 404},
		{"/watch/", "", "", 404},
		{"/watch/.hidden", "", "", 404},
		{"/watch/" + strings.Repeat("a", 65), "", "", 404},
		{"/watch/lecture/extra", "", "", 404},
		{"/static/../web.go", "", "", 404},
		{"/r/", "", "", 404},
		{"/r/.hidden", "", "", 404},
		{"/r/" + strings.Repeat("a", 65), "", "", 404},
		{"/r/has%20space", "", "", 404},
		{"/r/standup/extra", "", "", 404},
		{"/elsewhere", "", "", 404},
	}
	for _, c := range cases {
		resp, body := get(t, srv.URL+c.path, nil)
		if resp.StatusCode != c.status {
			t.Errorf("%s: status %d, want %d", c.path, resp.StatusCode, c.status)
			continue
		}
		if c.status != 200 {
			continue
		}
		if ct := resp.Header.Get("Content-Type"); ct != c.wantType {
			t.Errorf("%s: content type %q, want %q", c.path, ct, c.wantType)
		}
		if !strings.Contains(body, c.wantBody) {
			t.Errorf("%s: body lacks %q", c.path, c.wantBody)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("%s: cache control %q", c.path, cc)
		}
		if resp.Header.Get("ETag") == "" {
			t.Errorf("%s: no ETag", c.path)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", c.path)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if isPage := strings.HasPrefix(c.wantType, "text/html"); isPage != (csp != "") {
			t.Errorf("%s: content security policy %q", c.path, csp)
		}
		// Only the player may be embedded, by any site.
		wantAncestors := "frame-ancestors 'none'"
		if strings.HasPrefix(c.path, "/watch/") {
			wantAncestors = "frame-ancestors *"
		}
		if csp != "" && !strings.Contains(csp, wantAncestors) {
			t.Errorf("%s: content security policy %q lacks %q", c.path, csp, wantAncestors)
		}
	}
}

func TestMethodsAndRedirects(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /: status %d, want 405", resp.StatusCode)
	}
	head, err := http.Head(srv.URL + "/r/standup")
	if err != nil {
		t.Fatal(err)
	}
	head.Body.Close()
	if head.StatusCode != 200 || !strings.HasPrefix(head.Header.Get("Content-Type"), "text/html") {
		t.Errorf("HEAD /r/standup: %d %q", head.StatusCode, head.Header.Get("Content-Type"))
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	fav, err := client.Get(srv.URL + "/favicon.ico")
	if err != nil {
		t.Fatal(err)
	}
	fav.Body.Close()
	if fav.StatusCode != http.StatusMovedPermanently || fav.Header.Get("Location") != "/static/favicon.svg" {
		t.Errorf("/favicon.ico: %d to %q", fav.StatusCode, fav.Header.Get("Location"))
	}
}

// TestRevalidation: assets are revalidated every time, so an unchanged
// file must cost a 304 and no body.
func TestRevalidation(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	for _, p := range []string{"/static/js/room.js", "/r/standup"} {
		first, _ := get(t, srv.URL+p, nil)
		etag := first.Header.Get("ETag")
		again, body := get(t, srv.URL+p, map[string]string{"If-None-Match": etag})
		if again.StatusCode != http.StatusNotModified || body != "" {
			t.Errorf("%s with If-None-Match %s: status %d, %d bytes", p, etag, again.StatusCode, len(body))
		}
		stale, _ := get(t, srv.URL+p, map[string]string{"If-None-Match": `"old"`})
		if stale.StatusCode != 200 {
			t.Errorf("%s with a stale ETag: status %d", p, stale.StatusCode)
		}
	}
}

// TestEveryAssetIsReferenced keeps the embedded tree free of dead files and
// every module import pointing at a file that exists.
func TestEveryAssetIsReferenced(t *testing.T) {
	assets, err := load(files)
	if err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	for _, a := range assets {
		all.Write(a.body)
	}
	for name := range assets {
		if name == "index.html" || name == "room.html" || name == "watch.html" { // served at routes
			continue
		}
		base := name[strings.LastIndex(name, "/")+1:]
		if !strings.Contains(all.String(), base) {
			t.Errorf("%s is embedded but nothing refers to it", name)
		}
	}
	for name, a := range assets {
		for _, line := range strings.Split(string(a.body), "\n") {
			i := strings.Index(line, "from './")
			if !strings.HasPrefix(line, "import ") || i < 0 {
				continue
			}
			target := line[i+len("from './"):]
			target = target[:strings.IndexAny(target, `'"`)]
			dir := name[:strings.LastIndex(name, "/")+1]
			if assets[dir+target] == nil {
				t.Errorf("%s imports ./%s, which is not embedded", name, target)
			}
		}
	}
}

// jsFunctionStart matches a line that opens a function body: a function
// declaration or expression, an arrow function, or a class method.
var jsFunctionStart = regexp.MustCompile(`(\bfunction\b.*\{$|=>\s*\{$|^\s*(static\s+)?(async\s+)?(get\s+|set\s+)?[A-Za-z_$][\w$]*\s*\(.*\)\s*\{$)`)

// jsControl matches statements that open a block but are no function.
var jsControl = regexp.MustCompile(`^\s*(\}\s*)?(if|for|while|switch|catch|else|do|try)\b`)

// TestScriptSizes keeps every script small enough to read: no file over
// 600 lines, no function over 80 (the code is formatted with a function's
// closing brace at the indentation of the line that opened it).
func TestScriptSizes(t *testing.T) {
	assets, err := load(files)
	if err != nil {
		t.Fatal(err)
	}
	for name, a := range assets {
		if !strings.HasSuffix(name, ".js") {
			continue
		}
		lines := strings.Split(string(a.body), "\n")
		if len(lines) > 600 {
			t.Errorf("%s has %d lines, more than 600", name, len(lines))
		}
		for i, line := range lines {
			code := strings.TrimRight(line, " ")
			if !jsFunctionStart.MatchString(code) || jsControl.MatchString(code) {
				continue
			}
			indent := code[:len(code)-len(strings.TrimLeft(code, " "))]
			end := i + 1
			for end < len(lines) && !strings.HasPrefix(lines[end], indent+"}") {
				end++
			}
			if end == len(lines) {
				t.Errorf("%s:%d: cannot find the end of %q", name, i+1, strings.TrimSpace(code))
				continue
			}
			if n := end - i + 1; n > 80 {
				t.Errorf("%s:%d: %q is %d lines long, more than 80", name, i+1, strings.TrimSpace(code), n)
			}
		}
	}
}

// domWords are what a script touches when it needs a page.
var domWords = regexp.MustCompile(`\b(document|window|navigator|location|localStorage|matchMedia|HTMLElement)\b`)

// TestSessionWithoutDOM: the session module and everything it imports run
// without a page (the headless test loads them alone).
func TestSessionWithoutDOM(t *testing.T) {
	assets, err := load(files)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	queue := []string{"js/session.js"}
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		if seen[name] {
			continue
		}
		seen[name] = true
		a := assets[name]
		if a == nil {
			t.Fatalf("%s is not embedded", name)
		}
		for i, line := range strings.Split(string(a.body), "\n") {
			code := line
			if j := strings.Index(code, "//"); j >= 0 && !strings.Contains(code[:j], "'") && !strings.Contains(code[:j], "`") {
				code = code[:j]
			}
			if w := domWords.FindString(code); w != "" {
				t.Errorf("%s:%d uses %s: %s", name, i+1, w, strings.TrimSpace(line))
			}
			if k := strings.Index(line, "from './"); strings.HasPrefix(line, "import ") && k >= 0 {
				target := line[k+len("from './"):]
				queue = append(queue, "js/"+target[:strings.IndexAny(target, `'"`)])
			}
		}
	}
	if len(seen) < 3 {
		t.Errorf("session.js imports %v: expected the negotiation and signaling modules too", seen)
	}
}
