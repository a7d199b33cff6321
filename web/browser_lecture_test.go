package web_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/confab-sfu/confab/room/access"
)

// mintLecture signs a token whose join makes the room a lecture.
func mintLecture(t *testing.T, secret []byte, roomName, identity, name string, role access.Role) string {
	t.Helper()
	tok, err := access.Mint(secret, access.TokenParams{Room: roomName, Identity: identity, Name: name, Role: role,
		TTL: time.Hour, Lecture: true}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// lectureView is what a lecture page shows of the lecture's own controls.
type lectureView struct {
	Active   bool     `json:"active"`
	Audience string   `json:"audience"` // #audience-count's text, "" when hidden
	Raise    string   `json:"raise"`    // #raise-hand's aria-pressed, "" when hidden
	Hands    []string `json:"hands"`    // #hands entries (participant ids), nil when hidden
	People   []string `json:"people"`   // #people entries (participant ids)
	Publish  bool     `json:"publish"`
	Controls []string `json:"controls"` // publish controls shown
	Message  string   `json:"message"`
	GUM      int      `json:"gum"`     // getUserMedia calls
	Live     int      `json:"live"`    // live local tracks
	Sending  int      `json:"sending"` // transceivers negotiated to send
}

const lectureViewJS = `
const $ = (id) => document.getElementById(id);
const shown = (id) => { const e = $(id); return !!e && e.offsetParent !== null; };
const c = window.confab;
const pc = c.pc;
return {
  active: c.lecture.active,
  audience: shown('audience-count') ? $('audience-count').textContent : '',
  raise: shown('raise-hand') ? $('raise-hand').getAttribute('aria-pressed') : '',
  hands: shown('hands') ? [...$('hands').children].map((li) => li.dataset.participant) : null,
  people: [...$('people').children].map((li) => li.dataset.participant),
  publish: c.permissions.publish,
  controls: ['toggle-mic', 'toggle-cam', 'toggle-screen'].filter(shown),
  message: $('meeting-message').textContent,
  gum: window.spy.getUserMedia,
  live: c.state.local ? c.state.local.getTracks().filter((t) => t.readyState === 'live').length : 0,
  sending: pc ? pc.getTransceivers().filter((t) => t.currentDirection === 'sendonly' || t.currentDirection === 'sendrecv').length : 0,
};`

func (b *browser) lectureView(tb *tab) (lectureView, error) {
	var v lectureView
	err := tb.eval(lectureViewJS, &v)
	return v, err
}

// waitLecture waits until cond holds for the tab's lecture view.
func (b *browser) waitLecture(tb *tab, what string, within time.Duration, cond func(lectureView) bool) lectureView {
	b.t.Helper()
	var v lectureView
	b.waitFor(tb.name+": "+what, within, func() (bool, string) {
		var err error
		if v, err = b.lectureView(tb); err != nil {
			return false, err.Error()
		}
		return cond(v), fmt.Sprintf("%+v", v)
	})
	return v
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestBrowserLecture: a moderator lectures to two viewers. The audience
// is counted, not listed; a viewer raises a hand, the moderator sees it and
// invites her on stage, where her page publishes camera and microphone and
// the other viewer decodes her video. The presenter's screen share takes
// the stage with its camera beside it and the other speaker as a
// thumbnail. Moved back to the audience, she stops publishing and the
// others lose her tile.
func TestBrowserLecture(t *testing.T) {
	path := needBrowser(t)
	secret := []byte("lecture-test-secret")
	base := startSecureServer(t, secret)
	b := newBrowser(t, path, base)
	const aula = "aula"
	prof := b.open("prof", invite(base, aula, mintLecture(t, secret, aula, "prof-1", "prof", access.Moderator)))
	profID := b.joined(prof)
	ann := b.open("ann", invite(base, aula, mintLecture(t, secret, aula, "ann-1", "ann", access.Viewer)))
	bob := b.open("bob", invite(base, aula, mintLecture(t, secret, aula, "bob-1", "bob", access.Viewer)))
	annID, bobID := b.joined(ann), b.joined(bob)
	b.receivesFrom(bob, 30, true, map[string]string{"prof": profID})
	b.receivesFrom(ann, 10, false, map[string]string{"prof": profID})

	// The moderator counts two viewers and lists neither; no hands yet.
	pv := b.waitLecture(prof, "two watching", 10*time.Second, func(v lectureView) bool {
		return v.Audience == "2 watching"
	})
	if !pv.Active || pv.Hands == nil || len(pv.Hands) != 0 || len(pv.People) != 1 || pv.Raise != "" {
		t.Errorf("moderator's lecture view: %+v, want a lecture, an empty hands list, only itself listed, no raise-hand", pv)
	}
	// Viewers: no camera asked for, no publish controls, a raise-hand
	// toggle, no tile or entry for the other viewer, and the count too.
	for _, tb := range []*tab{ann, bob} {
		v := b.waitLecture(tb, "two watching", 10*time.Second, func(v lectureView) bool { return v.Audience == "2 watching" })
		if !v.Active || v.Publish || v.GUM != 0 || len(v.Controls) != 0 || v.Raise != "false" || v.Hands != nil || v.Sending != 0 {
			t.Errorf("%s's lecture view: %+v", tb.name, v)
		}
		if contains(v.People, annID) && contains(v.People, bobID) {
			t.Errorf("%s: the audience is listed: %v", tb.name, v.People)
		}
		s, _ := tb.snapshot()
		for _, tl := range s.Tiles {
			if tl["participant"] != profID {
				t.Errorf("%s: a tile other than the presenter's: %v", tb.name, tl)
			}
		}
	}

	// Ann raises her hand; the moderator sees it.
	ann.do(t, chromedp.Click(chromedp.CSS("#raise-hand")))
	b.waitLecture(ann, "hand raised", 10*time.Second, func(v lectureView) bool { return v.Raise == "true" })
	handSel := fmt.Sprintf(`#hands li[data-participant=%q]`, annID)
	b.waitLecture(prof, "ann's hand listed", 10*time.Second, func(v lectureView) bool {
		return len(v.Hands) == 1 && v.Hands[0] == annID
	})
	if name := evalT[string](t, prof, fmt.Sprintf(`return document.querySelector('%s .who').textContent`, handSel)); name != "ann" {
		t.Errorf("the raised hand is named %q", name)
	}
	prof.screenshot(t, "lecture-raised-hand.png")

	// The moderator invites her on stage: her page publishes, Bob decodes it.
	prof.do(t, chromedp.Click(chromedp.CSS(handSel+` button[data-action="invite"]`)))
	av := b.waitLecture(ann, "on stage, publishing", 15*time.Second, func(v lectureView) bool {
		return v.Publish && v.Sending == 2 && v.Live == 2 && len(v.Controls) == 3 && v.Raise == ""
	})
	if av.GUM != 1 {
		t.Errorf("ann on stage: getUserMedia called %d times, want once", av.GUM)
	}
	b.receivesFrom(bob, 30, true, map[string]string{"ann": annID})
	b.waitSnapshot(ann, "her own tile", 10*time.Second, func(s snapshot) (bool, string) {
		tl, ok := s.tile(annID)
		return ok && tl["key"] == "self" && tl["hasVideo"] == true, fmt.Sprintf("tiles %v", s.Tiles)
	})
	pv = b.waitLecture(prof, "ann on stage, one watching", 10*time.Second, func(v lectureView) bool {
		return v.Audience == "1 watching" && len(v.Hands) == 0 && contains(v.People, annID)
	})
	demoteSel := fmt.Sprintf(`#people li[data-participant=%q] button[data-action="demote"]`, annID)
	if n := evalT[int](t, prof, fmt.Sprintf(`return document.querySelectorAll('%s').length`, demoteSel)); n != 1 {
		t.Errorf("moderator: %d Move to audience buttons on ann's entry, want 1", n)
	}
	if n := evalT[int](t, prof, fmt.Sprintf(`return document.querySelectorAll('#people li[data-participant=%q] button[data-action="demote"]').length`, profID)); n != 0 {
		t.Errorf("moderator: a Move to audience button on its own entry")
	}
	prof.screenshot(t, "lecture-moderator.png")

	// The presenter shares its screen: on Bob's page the share takes the
	// stage with the presenter's camera beside it, Ann is a thumbnail.
	prof.do(t, chromedp.Click(chromedp.CSS("#toggle-screen")))
	screen := profID + "/screen"
	b.waitSnapshot(bob, "the share on the stage", 30*time.Second, func(s snapshot) (bool, string) {
		return s.Frames[screen] > 10, fmt.Sprintf("frames %v", s.Frames)
	})
	type stageView struct {
		Stage []string `json:"stage"`
		Grid  []string `json:"grid"`
		Share float64  `json:"share"`
		Cam   float64  `json:"cam"`
		Thumb float64  `json:"thumb"`
	}
	const stageJS = `const keys = (id) => [...document.querySelectorAll('#' + id + ' > .tile')].map((e) => e.dataset.key);
const w = (sel) => { const e = document.querySelector(sel); return e ? e.getBoundingClientRect().width : 0; };
return {stage: keys('stage'), grid: keys('grid'), share: w('#stage .tile[data-source="screen"]'),
  cam: w('#stage .tile.presenter'), thumb: w('#grid .tile')};`
	var sv stageView
	b.waitFor("bob: the presenter's camera beside its share", 10*time.Second, func() (bool, string) {
		if err := bob.eval(stageJS, &sv); err != nil {
			return false, err.Error()
		}
		ok := len(sv.Stage) == 2 && sv.Stage[0] == screen && sv.Stage[1] == profID &&
			len(sv.Grid) == 1 && sv.Grid[0] == annID && sv.Share > 2*sv.Cam && sv.Cam > 0 && sv.Thumb > 0
		return ok, fmt.Sprintf("%+v", sv)
	})
	bob.screenshot(t, "lecture-stage.png")
	prof.do(t, chromedp.Click(chromedp.CSS("#toggle-screen")))
	b.waitFor("bob: the presenter's camera back in the grid", 15*time.Second, func() (bool, string) {
		if err := bob.eval(stageJS, &sv); err != nil {
			return false, err.Error()
		}
		return len(sv.Stage) == 0 && len(sv.Grid) == 2, fmt.Sprintf("%+v", sv)
	})

	// The moderator moves Ann back to the audience: Bob loses her tile, her
	// page stops publishing and says so.
	prof.do(t, chromedp.Click(chromedp.CSS(demoteSel)))
	for _, tb := range []*tab{bob, prof} {
		b.waitSnapshot(tb, "ann's tile gone", 10*time.Second, func(s snapshot) (bool, string) {
			_, ok := s.tile(annID)
			return !ok, fmt.Sprintf("tiles %v", s.Tiles)
		})
	}
	av = b.waitLecture(ann, "back in the audience", 10*time.Second, func(v lectureView) bool {
		return !v.Publish && v.Live == 0 && v.Sending == 0 && len(v.Controls) == 0 && v.Raise == "false" &&
			v.Message == "You are back in the audience."
	})
	if s, _ := ann.snapshot(); len(s.Tiles) != 1 {
		t.Errorf("ann in the audience: tiles %v, want the presenter's only", s.Tiles)
	}
	b.waitLecture(prof, "two watching again", 10*time.Second, func(v lectureView) bool {
		return v.Audience == "2 watching" && !contains(v.People, annID)
	})
	// Still watching: Ann keeps receiving the lecture.
	before, _ := ann.snapshot()
	b.waitSnapshot(ann, "the lecture still arrives", 10*time.Second, func(s snapshot) (bool, string) {
		return s.Frames[profID] > before.Frames[profID]+20, fmt.Sprintf("frames %d, were %d", s.Frames[profID], before.Frames[profID])
	})
	ann.screenshot(t, "lecture-back-in-audience.png")

	// Invited again, she publishes again (on new sections of the same
	// connection) and Bob sees her again.
	ann.do(t, chromedp.Click(chromedp.CSS("#raise-hand")))
	b.waitLecture(prof, "ann's hand again", 10*time.Second, func(v lectureView) bool { return len(v.Hands) == 1 && v.Hands[0] == annID })
	prof.do(t, chromedp.Click(chromedp.CSS(handSel+` button[data-action="invite"]`)))
	b.waitLecture(ann, "on stage again", 15*time.Second, func(v lectureView) bool {
		return v.Publish && v.Sending == 2 && v.Live == 2 && v.GUM == 2
	})
	b.receivesFrom(bob, 30, true, map[string]string{"ann": annID})

	// The moderator turns the audience's chat off: bob may read but not
	// write; on again, he may.
	chatForm := func(tb *tab, want bool) {
		b.waitFor(fmt.Sprintf("%s's chat form shown=%v", tb.name, want), 10*time.Second, func() (bool, string) {
			var hidden bool
			if err := tb.eval(`return document.getElementById('chat-form').hidden`, &hidden); err != nil {
				return false, err.Error()
			}
			return hidden == !want, fmt.Sprintf("hidden %v", hidden)
		})
	}
	chatForm(bob, true)
	prof.do(t, chromedp.Click(chromedp.CSS("#audience-chat")))
	chatForm(bob, false)
	chatForm(ann, true) // on stage: still writes
	prof.do(t, chromedp.Click(chromedp.CSS("#audience-chat")))
	chatForm(bob, true)
}

// TestBrowserLectureLink: ?lecture=1 makes the room a lecture without a
// token; on a server without an auth secret everybody may publish, so the
// audience is empty and the count says so.
func TestBrowserLectureLink(t *testing.T) {
	path := needBrowser(t)
	base := startServer(t, 0)
	b := newBrowser(t, path, base)
	first := b.open("first", base+"/r/talk?name=first&autojoin=1&lecture=1")
	b.joined(first)
	second := b.open("second", base+"/r/talk?name=second&autojoin=1")
	plain := b.open("plain", base+"/r/chat?name=plain&autojoin=1")
	b.joined(second)
	b.joined(plain)
	for _, tb := range []*tab{first, second} {
		v := b.waitLecture(tb, "a lecture", 10*time.Second, func(v lectureView) bool { return v.Active })
		if v.Audience != "0 watching" || v.Raise != "" || !v.Publish || v.Hands != nil {
			t.Errorf("%s: %+v, want a count of 0, no raise-hand, publishing, no hands list", tb.name, v)
		}
	}
	if v, err := b.lectureView(plain); err != nil || v.Active || v.Audience != "" || v.Raise != "" {
		t.Errorf("a room joined without ?lecture=1: %+v (%v), want no lecture controls", v, err)
	}
	// ?role=viewer joins an open lecture as its audience.
	watcher := b.open("watcher", base+"/r/talk?name=watcher&autojoin=1&role=viewer")
	b.joined(watcher)
	v := b.waitLecture(watcher, "in the audience", 10*time.Second, func(v lectureView) bool { return v.Active && !v.Publish })
	if v.Raise == "" {
		t.Errorf("the audience member has no raise-hand button: %+v", v)
	}
	b.waitLecture(first, "the presenter counts the audience", 10*time.Second, func(v lectureView) bool { return v.Audience == "1 watching" })
}
