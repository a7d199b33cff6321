package web_test

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/confab-sfu/confab/internal/testserver"
	"github.com/confab-sfu/confab/room"
	"github.com/confab-sfu/confab/web"
)

// sessionPage uses session.js alone, as a page of its own would: it joins
// the room named in ?room=, shows what it receives, and records what it is
// told. Served by the test only.
const sessionPage = `<!doctype html>
<meta charset="utf-8"><title>session.js alone</title>
<body>
<script type="module">
import { Session } from '/static/js/session.js';
const room = new URLSearchParams(location.search).get('room');
const session = new Session({ url: 'ws://' + location.host + '/ws', room, name: 'headless' });
const seen = { statuses: [], joins: [], tracks: [], error: '' };
session.on('status', (s) => seen.statuses.push(s.state + (s.why ? ':' + s.why : '')));
session.on('joined', (w) => seen.joins.push(w.participant.id));
session.on('track', ({ info, track }) => {
  seen.tracks.push(info.kind + ' of ' + info.participant);
  // Received media is played, as a page would.
  const el = document.createElement(track.kind);
  el.muted = true;
  el.autoplay = true;
  el.srcObject = new MediaStream([track]);
  document.body.append(el);
});
// received counts, by the sender's name, the video frames decoded and the
// audio packets received on the current connection.
async function received() {
  const out = { me: session.me, frames: {}, audio: {} };
  if (!session.pc) return out;
  (await session.pc.getStats()).forEach((s) => {
    if (s.type !== 'inbound-rtp') return;
    const info = session.tracks.get(session.mids.get(s.mid));
    const member = info && session.members.get(info.participant);
    if (!member) return;
    if (s.kind === 'video') out.frames[member.name] = (out.frames[member.name] || 0) + (s.framesDecoded || 0);
    else out.audio[member.name] = (out.audio[member.name] || 0) + (s.packetsReceived || 0);
  });
  return out;
}
window.sessionTest = { session, seen, received };
session.connect().catch((e) => { seen.error = e.code || String(e); });
</script>`

// droppableServer serves the client, the test page and signaling for mgr,
// and can cut every WebSocket it has accepted, as a server restart or a
// broken network would.
type droppableServer struct {
	*httptest.Server
	mu       sync.Mutex
	sockets  []net.Conn
	accepted int
}

func newDroppableServer(t *testing.T, mgr *room.Manager) *droppableServer {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", mgr.ServeWS)
	mux.HandleFunc("GET /session-test", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, sessionPage)
	})
	mux.Handle("/", web.Handler())
	s := &droppableServer{Server: httptest.NewUnstartedServer(mux)}
	// A WebSocket takes its connection over from the HTTP server.
	s.Config.ConnState = func(c net.Conn, state http.ConnState) {
		if state != http.StateHijacked {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.sockets = append(s.sockets, c)
		s.accepted++
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// drop closes every WebSocket and says how many there were.
func (s *droppableServer) drop() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.sockets {
		_ = c.Close()
	}
	n := len(s.sockets)
	s.sockets = nil
	return n
}

func (s *droppableServer) acceptedSockets() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

// sessionState is what the test page saw.
type sessionState struct {
	Statuses []string       `json:"statuses"`
	Joins    []string       `json:"joins"`
	Tracks   []string       `json:"tracks"`
	Error    string         `json:"error"`
	Me       string         `json:"me"`
	Frames   map[string]int `json:"frames"`
	Audio    map[string]int `json:"audio"`
	SamePC   bool           `json:"samePC"`
	OldPC    string         `json:"oldPC"`
}

const sessionStateJS = `
const t = window.sessionTest;
if (!t) return {statuses: [], joins: [], tracks: [], error: 'no page yet', frames: {}, audio: {}};
const r = await t.received();
return {...t.seen, me: r.me, frames: r.frames, audio: r.audio,
  samePC: !!window.firstPC && window.firstPC === t.session.pc,
  oldPC: window.firstPC ? window.firstPC.connectionState : ''};`

func (b *browser) waitSession(tb *tab, what string, within time.Duration, cond func(sessionState) bool) sessionState {
	b.t.Helper()
	var s sessionState
	b.waitFor(tb.name+": "+what, within, func() (bool, string) {
		if err := tb.eval(sessionStateJS, &s); err != nil {
			return false, err.Error()
		}
		return cond(s), fmt.Sprintf("%+v", s)
	})
	return s
}

// TestBrowserSessionAlone: session.js on its own, in a page that imports
// nothing else, joins a room, plays a Go peer's video and sound, and after
// the server drops its WebSocket rejoins under a new id, with a new
// connection, and plays them again.
func TestBrowserSessionAlone(t *testing.T) {
	path := needBrowser(t)
	mgr, base := testserver.Start(t, room.Config{})
	goPresenter(t, base, "headless", "")
	srv := newDroppableServer(t, mgr)
	b := newBrowser(t, path, srv.URL)
	tb := b.tab("session")
	start := time.Now()
	tb.do(t, chromedp.Navigate(srv.URL+"/session-test?room=headless"))
	first := b.waitSession(tb, "plays the Go peer", 40*time.Second, func(s sessionState) bool {
		return len(s.Joins) == 1 && s.Frames["presenter"] > 30 && s.Audio["presenter"] > 0
	})
	t.Logf("session.js alone decodes > 30 frames of the Go peer %.1f s after opening the page", time.Since(start).Seconds())
	if strings.Join(first.Statuses, " ") != "connected" || first.Error != "" {
		t.Errorf("before the drop: statuses %v, error %q, want connected only", first.Statuses, first.Error)
	}
	var ok bool
	if err := tb.eval(`window.firstPC = window.sessionTest.session.pc; return true`, &ok); err != nil {
		t.Fatal(err)
	}

	if n := srv.drop(); n != 1 {
		t.Fatalf("the server held %d WebSockets, want 1", n)
	}
	dropped := time.Now()
	again := b.waitSession(tb, "rejoined, plays the Go peer again", 40*time.Second, func(s sessionState) bool {
		return len(s.Joins) == 2 && s.Me == s.Joins[1] && !s.SamePC && s.Frames["presenter"] > 30 && s.Audio["presenter"] > 0
	})
	t.Logf("rejoined and decoding again %.1f s after the drop", time.Since(dropped).Seconds())
	if again.Joins[1] == again.Joins[0] {
		t.Errorf("rejoined under the same id %s", again.Joins[0])
	}
	// A countdown, the attempt, then connected again.
	want := "connected reconnecting:lost reconnecting:lost connected"
	if got := strings.Join(again.Statuses, " "); got != want {
		t.Errorf("statuses %q, want %q", got, want)
	}
	if again.OldPC != "closed" {
		t.Errorf("the first connection is %q, want closed", again.OldPC)
	}
	if n := srv.acceptedSockets(); n != 2 {
		t.Errorf("the page opened %d WebSockets, want 2", n)
	}
}
