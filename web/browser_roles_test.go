package web_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/confab-sfu/confab/internal/testserver"
	"github.com/confab-sfu/confab/room"
	"github.com/confab-sfu/confab/room/access"
	"github.com/golang-jwt/jwt/v5"
)

// startSecureServer runs the server with an auth secret: every join needs
// a token.
func startSecureServer(t *testing.T, secret []byte) string {
	t.Helper()
	_, u := testserver.Start(t, room.Config{AuthSecret: secret})
	return u
}

// mint signs a token for the tests, failing the test on error.
func mint(t *testing.T, secret []byte, roomName, identity, name string, role access.Role) string {
	t.Helper()
	tok, err := access.Mint(secret, access.TokenParams{Room: roomName, Identity: identity, Name: name, Role: role, TTL: time.Hour}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// spyJS counts the page's getUserMedia calls and WebSocket connections.
const spyJS = `
(() => {
  window.spy = {getUserMedia: 0, webSockets: 0};
  const md = navigator.mediaDevices;
  if (md && md.getUserMedia) {
    const real = md.getUserMedia.bind(md);
    md.getUserMedia = (c) => { window.spy.getUserMedia++; return real(c); };
  }
  const W = window.WebSocket;
  window.WebSocket = class extends W {
    constructor(...args) { super(...args); window.spy.webSockets++; }
  };
})();`

// open opens a tab on a URL with the spy installed before any page script.
func (b *browser) open(name, u string) *tab {
	b.t.Helper()
	tb := b.tab(name)
	if _, err := chromedp.Call(tb.ctx, page.AddScriptToEvaluateOnNewDocument,
		page.AddScriptToEvaluateOnNewDocumentParams{Source: spyJS}); err != nil {
		b.t.Fatal(err)
	}
	tb.do(b.t, chromedp.Navigate(u))
	return tb
}

// invite is the invitation link with autojoin (the name comes from the
// token).
func invite(base, roomName, token string) string {
	return fmt.Sprintf("%s/r/%s?token=%s&autojoin=1", base, roomName, url.QueryEscape(token))
}

// evalT evaluates in a tab or fails the test.
func evalT[T any](t *testing.T, tb *tab, js string) T {
	t.Helper()
	var v T
	if err := tb.eval(js, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestBrowserModeratorSpeakerViewer: with tokens, a viewer watches without
// being asked for camera or microphone and without publish controls; a
// moderator mutes a speaker (who sees it and can unmute) and removes them
// (who is told, does not come back, and cannot rejoin).
func TestBrowserModeratorSpeakerViewer(t *testing.T) {
	path := needBrowser(t)
	secret := []byte("roles-test-secret")
	base := startSecureServer(t, secret)
	b := newBrowser(t, path, base)
	const lecture = "lecture"
	modURL := invite(base, lecture, mint(t, secret, lecture, "mod-1", "mod", access.Moderator))
	spkURL := invite(base, lecture, mint(t, secret, lecture, "spk-1", "speaker", access.Speaker))
	viewURL := invite(base, lecture, mint(t, secret, lecture, "view-1", "viewer", access.Viewer))
	mod, spk, viewer := b.open("mod", modURL), b.open("speaker", spkURL), b.open("viewer", viewURL)
	modID, spkID, viewerID := b.joined(mod), b.joined(spk), b.joined(viewer)

	// The viewer decodes both publishers and hears them.
	b.receivesFrom(viewer, 30, true, map[string]string{"speaker": spkID, "mod": modID})
	var v struct {
		GUM, Senders, Transceiversending int
		Visible                          []string
		Note, Badge                      string
		Publish, Moderate, SelfTile      bool
	}
	if err := viewer.eval(`
const shown = (id) => { const e = document.getElementById(id); return !!e && e.offsetParent !== null; };
const pc = window.confab.pc;
return {
  GUM: window.spy.getUserMedia,
  Senders: pc.getSenders().filter((s) => s.track).length,
  Transceiversending: pc.getTransceivers().filter((t) => t.currentDirection === 'sendonly' || t.currentDirection === 'sendrecv').length,
  Visible: ['toggle-mic', 'toggle-cam', 'toggle-screen', 'pre-mic', 'pre-cam'].filter(shown),
  Note: shown('viewer-note') ? document.getElementById('viewer-note').textContent : '',
  Badge: document.getElementById('role-badge').hidden ? '' : document.getElementById('role-badge').textContent,
  Publish: window.confab.permissions.publish, Moderate: window.confab.permissions.moderate,
  SelfTile: window.confab.tiles().some((t) => t.key === 'self'),
};`, &v); err != nil {
		t.Fatal(err)
	}
	if v.GUM != 0 || v.Senders != 0 || v.Transceiversending != 0 {
		t.Errorf("viewer: getUserMedia called %d times, %d senders with tracks, %d sending transceivers; want none", v.GUM, v.Senders, v.Transceiversending)
	}
	if len(v.Visible) != 0 || !strings.Contains(v.Note, "watching") || v.Badge != "Watching" || v.Publish || v.Moderate || v.SelfTile {
		t.Errorf("viewer page: visible publish controls %v, note %q, badge %q, publish %v, moderate %v, self tile %v",
			v.Visible, v.Note, v.Badge, v.Publish, v.Moderate, v.SelfTile)
	}

	// The speaker lists the viewer but gives it no tile; the moderator has
	// Mute and Remove on the others, none on itself, no Mute on the viewer.
	s := b.waitSnapshot(spk, "the viewer listed", 10*time.Second, func(s snapshot) (bool, string) {
		var role string
		_ = spk.eval(fmt.Sprintf(`const li = document.querySelector('#people li[data-participant=%q]'); return li ? li.dataset.role || '-' : ''`, viewerID), &role)
		return role == "viewer", fmt.Sprintf("viewer's people entry has role %q", role)
	})
	if _, ok := s.tile(viewerID); ok {
		t.Errorf("speaker: the viewer has a tile: %v", s.Tiles)
	}
	buttons := func(id string) string {
		return evalT[string](t, mod, fmt.Sprintf(`const li = document.querySelector('#people li[data-participant=%q]');
return li ? [...li.querySelectorAll('button')].map((b) => b.dataset.action + (b.disabled ? ':off' : ':on')).join(' ') : 'missing'`, id))
	}
	muteSel := fmt.Sprintf(`#people li[data-participant=%q] button[data-action="mute"]`, spkID)
	b.waitFor("the moderator's Mute for the speaker enabled", 10*time.Second, func() (bool, string) {
		got := buttons(spkID)
		return got == "mute:on remove:on", "speaker's buttons: " + got
	})
	if got := buttons(viewerID); got != "remove:on" {
		t.Errorf("moderator: the viewer's buttons are %q, want remove only", got)
	}
	if got := buttons(modID); got != "" {
		t.Errorf("moderator: own entry has buttons %q", got)
	}
	if badge := evalT[string](t, mod, `return document.getElementById('role-badge').textContent`); badge != "Moderator" {
		t.Errorf("moderator badge %q", badge)
	}
	mod.screenshot(t, "roles-moderator.png")
	viewer.screenshot(t, "roles-viewer.png")

	// The moderator mutes the speaker.
	mod.do(t, chromedp.Click(chromedp.CSS(muteSel)))
	type micState struct {
		Button  string `json:"button"`
		Text    string `json:"text"`
		Enabled []bool `json:"enabled"`
		Message string `json:"message"`
	}
	const micJS = `const b = document.getElementById('toggle-mic');
return {button: b.dataset.on, text: b.textContent,
  enabled: window.confab.state.local.getAudioTracks().map((t) => t.enabled),
  message: document.getElementById('meeting-message').textContent};`
	b.waitFor("the speaker sees it is muted", 10*time.Second, func() (bool, string) {
		var m micState
		if err := spk.eval(micJS, &m); err != nil {
			return false, err.Error()
		}
		ok := m.Button == "false" && m.Text == "Unmute" && len(m.Enabled) == 1 && !m.Enabled[0] && strings.Contains(m.Message, "A moderator muted you")
		return ok, fmt.Sprintf("%+v", m)
	})
	if s, _ := spk.snapshot(); s.Tiles == nil {
		t.Error("speaker: no tiles")
	} else if tl, ok := s.tile(spkID); !ok || tl["mutedAudio"] != true {
		t.Errorf("speaker: own tile %v, want mutedAudio", tl)
	}
	spk.screenshot(t, "roles-muted-by-moderator.png")
	b.waitSnapshot(viewer, "the speaker's microphone muted", 10*time.Second, func(s snapshot) (bool, string) {
		tl, ok := s.tile(spkID)
		return ok && tl["mutedAudio"] == true, fmt.Sprintf("tile %v", tl)
	})
	b.waitFor("the moderator's button shows Muted", 10*time.Second, func() (bool, string) {
		got := buttons(spkID)
		return got == "mute:off remove:on", "speaker's buttons: " + got
	})
	// The server no longer forwards the speaker's sound: no packet for 2 s
	// (100 packets' time).
	silent := b.settles("the viewer stops receiving the muted speaker", 10*time.Second, 8, func() (int, error) {
		s, err := viewer.snapshot()
		return s.Audio[spkID], err
	})

	// The speaker unmutes itself: sound flows again.
	spk.do(t, chromedp.Click(chromedp.CSS("#toggle-mic")))
	b.waitSnapshot(viewer, "the speaker unmuted, sound again", 15*time.Second, func(s snapshot) (bool, string) {
		tl, ok := s.tile(spkID)
		good := ok && tl["mutedAudio"] == false && s.Audio[spkID] > silent+20
		return good, fmt.Sprintf("tile %v, audio %d (was %d)", tl, s.Audio[spkID], silent)
	})
	if m := evalT[micState](t, spk, micJS); m.Button != "true" || len(m.Enabled) != 1 || !m.Enabled[0] {
		t.Errorf("speaker after unmuting: %+v", m)
	}

	// The moderator removes the speaker.
	b.waitFor("the moderator's Mute enabled again", 10*time.Second, func() (bool, string) {
		got := buttons(spkID)
		return got == "mute:on remove:on", "speaker's buttons: " + got
	})
	mod.do(t, chromedp.Click(chromedp.CSS(fmt.Sprintf(`#people li[data-participant=%q] button[data-action="remove"]`, spkID))))
	type ended struct {
		Shown   bool   `json:"shown"`
		Reason  string `json:"reason"`
		Title   string `json:"title"`
		Rejoin  bool   `json:"rejoin"`
		Status  string `json:"status"`
		Sockets int    `json:"sockets"`
		Camera  bool   `json:"camera"`
	}
	const endedJS = `const left = document.getElementById('left');
return {shown: !left.hidden, reason: left.dataset.reason, title: document.getElementById('left-title').textContent,
  rejoin: !document.getElementById('rejoin').hidden, status: document.getElementById('status').dataset.state,
  sockets: window.spy.webSockets,
  camera: !!window.confab.state.local && window.confab.state.local.getTracks().some((t) => t.readyState === 'live')};`
	b.waitFor("the speaker is told it was removed", 10*time.Second, func() (bool, string) {
		var e ended
		if err := spk.eval(endedJS, &e); err != nil {
			return false, err.Error()
		}
		ok := e.Shown && e.Reason == "removed" && e.Title == "A moderator removed you from the meeting." && !e.Rejoin
		return ok, fmt.Sprintf("%+v", e)
	})
	spk.screenshot(t, "roles-removed.png")
	for _, tb := range []*tab{viewer, mod} {
		b.waitSnapshot(tb, "the speaker's tile gone", 10*time.Second, func(s snapshot) (bool, string) {
			_, ok := s.tile(spkID)
			return !ok, fmt.Sprintf("tiles %v", s.Tiles)
		})
	}
	if got := buttons(spkID); got != "missing" {
		t.Errorf("moderator: the removed speaker is still listed (%q)", got)
	}
	// No reconnect follows (one would start after 1 s), and the camera is off.
	b.holds("one WebSocket ever, no reconnect, camera off", 3*time.Second, func() (bool, string) {
		var e ended
		if err := spk.eval(endedJS, &e); err != nil {
			return false, err.Error()
		}
		return e.Sockets == 1 && e.Status != "reconnecting" && !e.Camera && e.Shown, fmt.Sprintf("%+v", e)
	})
	// The same invitation cannot come back while the room lives.
	spk.do(t, chromedp.Navigate(spkURL))
	b.waitSnapshot(spk, "refused again", 15*time.Second, func(s snapshot) (bool, string) {
		return strings.HasPrefix(s.Message, "A moderator removed you from this meeting") && s.Me == "", fmt.Sprintf("message %q, me %q", s.Message, s.Me)
	})
}

// TestBrowserInvitationProblems: on a server that requires tokens, a page
// without one, or with an expired, foreign or forged one, says so in plain
// words, does not retry, and turns the camera off; a token without the chat
// permission hides the chat.
func TestBrowserInvitationProblems(t *testing.T) {
	path := needBrowser(t)
	secret := []byte("invitation-test-secret")
	base := startSecureServer(t, secret)
	b := newBrowser(t, path, base)
	expired, err := access.Mint(secret, access.TokenParams{Room: "secure", Identity: "late", Role: access.Speaker, TTL: time.Minute}, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, url, want string
	}{
		{"no-token", base + "/r/secure?name=ann&autojoin=1", "This meeting needs an invitation link"},
		{"expired", base + "/r/secure?name=ann&autojoin=1&token=" + url.QueryEscape(expired), "Your invitation has expired"},
		{"wrong-room", base + "/r/secure?name=ann&autojoin=1&token=" + url.QueryEscape(mint(t, secret, "elsewhere", "ann", "", access.Speaker)), "This invitation is for another meeting"},
		{"forged", base + "/r/secure?name=ann&autojoin=1&token=" + url.QueryEscape(mint(t, []byte("another secret"), "secure", "ann", "", access.Speaker)), "This invitation link is not valid"},
	}
	tabs := make([]*tab, len(cases))
	for i, c := range cases {
		tabs[i] = b.open(c.name, c.url)
	}
	type refused struct {
		Message string `json:"message"`
		Status  string `json:"status"`
		Join    bool   `json:"join"`
		Sockets int    `json:"sockets"`
		Camera  bool   `json:"camera"`
	}
	const refusedJS = `return {message: document.getElementById('prejoin-message').textContent,
  status: document.getElementById('status').dataset.state, join: !document.getElementById('join').disabled,
  sockets: window.spy.webSockets,
  camera: !!window.confab.state.local && window.confab.state.local.getTracks().some((t) => t.readyState === 'live')};`
	for i, c := range cases {
		b.waitFor(c.name+": "+c.want, 15*time.Second, func() (bool, string) {
			var r refused
			if err := tabs[i].eval(refusedJS, &r); err != nil {
				return false, err.Error()
			}
			return strings.HasPrefix(r.Message, c.want) && r.Status == "error", fmt.Sprintf("%+v", r)
		})
	}
	// A reconnect loop would try again within 1 s.
	b.holds("one WebSocket each, the join button disabled, the camera off", 3*time.Second, func() (bool, string) {
		for i, c := range cases {
			var r refused
			if err := tabs[i].eval(refusedJS, &r); err != nil {
				return false, err.Error()
			}
			if r.Sockets != 1 || r.Join || r.Camera || r.Status != "error" {
				return false, fmt.Sprintf("%s: %+v", c.name, r)
			}
		}
		return true, ""
	})

	// A viewer's pre-join screen asks for no device and says why.
	lobby := b.open("lobby", fmt.Sprintf("%s/r/secure?token=%s", base, url.QueryEscape(mint(t, secret, "secure", "v-2", "vera", access.Viewer))))
	b.waitFor("the viewer's pre-join screen", 10*time.Second, func() (bool, string) {
		var l struct {
			Note, Join, Name string
			Preview, Devices bool
			GUM              int
		}
		if err := lobby.eval(`const shown = (id) => document.getElementById(id).offsetParent !== null;
return {Note: shown('prejoin-note') ? document.getElementById('prejoin-note').textContent : '', Join: document.getElementById('join').textContent,
  Name: document.getElementById('display-name').value, Preview: shown('preview-box'), Devices: shown('devices'), GUM: window.spy.getUserMedia};`, &l); err != nil {
			return false, err.Error()
		}
		ok := strings.Contains(l.Note, "watch") && l.Join == "Join to watch" && l.Name == "vera" && !l.Preview && !l.Devices && l.GUM == 0
		return ok, fmt.Sprintf("%+v", l)
	})
	lobby.screenshot(t, "roles-viewer-prejoin.png")

	// A token may grant less than a role: here watching only, no chat.
	claims := access.Claims{Room: "secure", Name: "quiet", Perms: access.Permissions{Subscribe: true},
		RegisteredClaims: jwt.RegisteredClaims{Subject: "quiet-1", ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}}
	quietToken, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	quiet := b.open("quiet", invite(base, "secure", quietToken))
	b.joined(quiet)
	var q struct {
		Chat    []string `json:"chat"`
		Side    string   `json:"side"`
		Perms   map[string]bool
		GUM     int
		Publish []string `json:"publish"`
	}
	if err := quiet.eval(`const shown = (id) => document.getElementById(id).offsetParent !== null;
return {chat: ['chat-title', 'chat-log', 'chat-form'].filter(shown), side: document.getElementById('toggle-side').textContent,
  Perms: window.confab.permissions, GUM: window.spy.getUserMedia, publish: ['toggle-mic', 'toggle-cam', 'toggle-screen'].filter(shown)};`, &q); err != nil {
		t.Fatal(err)
	}
	if len(q.Chat) != 0 || q.Side != "People" || q.Perms["chat"] || q.Perms["publish"] || q.GUM != 0 || len(q.Publish) != 0 {
		t.Errorf("without chat and publish permissions: %+v", q)
	}
}
