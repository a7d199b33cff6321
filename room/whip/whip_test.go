package whip

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/confab-sfu/confab/room/access"
	"github.com/confab-sfu/confab/room/addrlimit"
	"github.com/confab-sfu/confab/room/turn"
	"github.com/confab-sfu/confab/sfu"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeConference admits or refuses as told and records what it was asked.
type fakeConference struct {
	mu        sync.Mutex
	refuse    error // returned by NewPublisher and NewViewer
	answerErr error // returned by the sessions' Answer
	sessions  []*fakeSession
}

type fakeSession struct {
	id        string
	req       Request
	answerErr error
	mu        sync.Mutex
	ended     string // the reason, once ended
	once      sync.Once
}

func (c *fakeConference) admit(req Request, prefix string) (Session, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.refuse != nil {
		return nil, c.refuse
	}
	s := &fakeSession{id: fmt.Sprintf("%s%d", prefix, len(c.sessions)), req: req, answerErr: c.answerErr}
	c.sessions = append(c.sessions, s)
	return s, nil
}

func (c *fakeConference) NewPublisher(req Request) (Session, error) { return c.admit(req, "P") }
func (c *fakeConference) NewViewer(req Request) (Session, error)    { return c.admit(req, "V") }

func (c *fakeConference) last() *fakeSession {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sessions[len(c.sessions)-1]
}

func (s *fakeSession) ID() string { return s.id }

func (s *fakeSession) Answer(_ context.Context, offer string) (string, error) {
	if s.answerErr != nil {
		return "", s.answerErr
	}
	return "answer to " + offer, nil
}

func (s *fakeSession) End(reason string) {
	s.once.Do(func() {
		s.mu.Lock()
		s.ended = reason
		s.mu.Unlock()
		s.req.Ended()
	})
}

func (s *fakeSession) endedWith() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ended
}

var secret = []byte("a whip test secret, long enough")

func serve(t *testing.T, conf Conference, cfg Config) string {
	t.Helper()
	h := New(conf, cfg)
	mux := http.NewServeMux()
	mux.HandleFunc("/whip/", h.ServeWHIP)
	mux.HandleFunc("/whep/", h.ServeWHEP)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

func token(t *testing.T, room string, role access.Role) string {
	t.Helper()
	tok, err := access.Mint(secret, access.TokenParams{Room: room, Identity: "id-" + string(role), Role: role, TTL: time.Hour}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type reply struct {
	status int
	body   string
	header http.Header
}

func do(t *testing.T, method, url, ctype, tok, body string) reply {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, string(b), resp.Header}
}

// Requests refused from their headers never reach the conference, and
// each gets its status.
func TestRefusalsBeforeTheConference(t *testing.T) {
	conf := &fakeConference{}
	base := serve(t, conf, Config{AuthSecret: secret})
	speaker, viewer := token(t, "stage", access.Speaker), token(t, "stage", access.Viewer)
	cases := []struct {
		what, method, path, ctype, tok, body string
		want                                 int
		challenge                            string
	}{
		{"no token", "POST", "/whip/stage", "application/sdp", "", "v=0", 401, challengeMissing},
		{"a bad token", "POST", "/whip/stage", "application/sdp", "garbage", "v=0", 401, challengeInvalid},
		{"a token for another room", "POST", "/whip/other", "application/sdp", speaker, "v=0", 401, challengeInvalid},
		{"a viewer publishing", "POST", "/whip/stage", "application/sdp", viewer, "v=0", 403, ""},
		{"not SDP", "POST", "/whip/stage", "application/json", speaker, "{}", 415, ""},
		{"a hidden character in ?name=", "POST", "/whip/stage?name=a%E2%80%AEb", "application/sdp", speaker, "v=0", 400, ""},
		{"an unknown ?source=", "POST", "/whep/stage?source=webcam", "application/sdp", viewer, "v=0", 400, ""},
		{"a bad room name", "POST", "/whip/.hidden", "application/sdp", speaker, "v=0", 404, ""},
		{"an empty session", "DELETE", "/whip/stage/", "", speaker, "", 404, ""},
		{"an unknown session", "DELETE", "/whip/stage/Wnosuchsession", "", speaker, "", 404, ""},
		{"a PATCH of an unknown session", "PATCH", "/whip/stage/Wnosuchsession", "", speaker, "", 404, ""},
		{"a GET", "GET", "/whip/stage", "", speaker, "", 405, ""},
		{"too big", "POST", "/whip/stage", "application/sdp", speaker, strings.Repeat("a", maxOffer+1), 413, ""},
	}
	for _, c := range cases {
		r := do(t, c.method, base+c.path, c.ctype, c.tok, c.body)
		if r.status != c.want {
			t.Errorf("%s: %d (%s), want %d", c.what, r.status, strings.TrimSpace(r.body), c.want)
		}
		if got := r.header.Get("WWW-Authenticate"); got != c.challenge {
			t.Errorf("%s: WWW-Authenticate %q, want %q", c.what, got, c.challenge)
		}
		if r.header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s: no CORS headers", c.what)
		}
	}
	if r := do(t, "GET", base+"/whip/stage", "", "", ""); !strings.Contains(r.header.Get("Allow"), "POST") {
		t.Errorf("a GET's Allow: %q", r.header.Get("Allow"))
	}
	if r := do(t, "OPTIONS", base+"/whep/stage/Vx", "", "", ""); r.status != 204 || r.header.Get("Allow") != "DELETE, PATCH, OPTIONS" {
		t.Errorf("OPTIONS of a session: %d Allow %q", r.status, r.header.Get("Allow"))
	}
	if len(conf.sessions) != 0 {
		t.Fatalf("the conference was asked %d times", len(conf.sessions))
	}
}

// The conference's refusals are answered with the status of their kind,
// and a failed negotiation ends its session.
func TestConferenceRefusals(t *testing.T) {
	conf := &fakeConference{}
	base := serve(t, conf, Config{})
	for _, c := range []struct {
		refuse error
		want   int
	}{
		{fmt.Errorf("%w: nothing is being published", ErrNotFound), 404},
		{fmt.Errorf("%w: room is full", ErrUnavailable), 503},
		{fmt.Errorf("%w: removed", ErrForbidden), 403},
		{errors.New("disk on fire"), 500},
	} {
		conf.mu.Lock()
		conf.refuse = c.refuse
		conf.mu.Unlock()
		if r := do(t, "POST", base+"/whep/hall", "application/sdp", "", "v=0"); r.status != c.want || !strings.Contains(r.body, c.refuse.Error()) {
			t.Errorf("refused with %v: %d (%s), want %d", c.refuse, r.status, r.body, c.want)
		}
	}
	conf.refuse, conf.answerErr = nil, fmt.Errorf("%w: %w", ErrBadOffer, sfu.ErrInvalidSDP)
	if r := do(t, "POST", base+"/whip/hall", "application/sdp", "", "not sdp"); r.status != 400 {
		t.Errorf("a bad offer: %d, want 400", r.status)
	}
	if s := conf.last(); !strings.HasPrefix(s.endedWith(), "negotiation failed") {
		t.Errorf("the session of a failed negotiation ended with %q", s.endedWith())
	}
}

// A session is created with a secret URL, handed what the request said, and
// ended by a DELETE with its creator's token only; its address's place is
// given back when it ends, however it ends.
func TestSessionLifecycle(t *testing.T) {
	conf := &fakeConference{}
	ice := turn.ICE{TURN: turn.Credentials{URLs: []string{"turn:127.0.0.1:3478"}, Secret: "t"}}
	base := serve(t, conf, Config{AuthSecret: secret, ICE: ice, Addrs: addrlimit.New(1)})
	speaker := token(t, "stage", access.Speaker)
	r := do(t, "POST", base+"/whip/stage?name=OBS", "application/sdp; charset=utf-8", speaker, "v=0 offer")
	if r.status != 201 || r.body != "answer to v=0 offer" || r.header.Get("Content-Type") != "application/sdp" ||
		r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("POST: %d %q %v", r.status, r.body, r.header)
	}
	s := conf.last()
	if s.req.Room != "stage" || s.req.Name != "OBS" || s.req.Identity != "id-speaker" || s.req.Role != access.Speaker {
		t.Errorf("the conference was asked %+v", s.req)
	}
	loc := r.header.Get("Location")
	// The secret is random: it may contain the public id's letters by chance
	// (once "P0"), never the id as its own path segment.
	if !strings.HasPrefix(loc, "/whip/stage/W") || strings.Contains(loc, "/"+s.id) || r.header.Get("ETag") != `"`+s.id+`"` {
		t.Errorf("Location %q ETag %q", loc, r.header.Get("ETag"))
	}
	if link := r.header.Get("Link"); !strings.Contains(link, `<turn:127.0.0.1:3478>; rel="ice-server"; username="`) ||
		!strings.Contains(link, ":"+s.id+`"`) {
		t.Errorf("Link %q: want TURN credentials for the session", link)
	}
	if r := do(t, "POST", base+"/whep/stage", "application/sdp", token(t, "stage", access.Viewer), "v=0"); r.status != 429 {
		t.Errorf("a second session from the address: %d, want 429", r.status)
	}
	for _, c := range []struct {
		what, method, path, tok string
		want                    int
	}{
		{"without the token", "DELETE", loc, "", 401},
		{"with another token", "DELETE", loc, token(t, "stage", access.Moderator), 403},
		{"of the other kind", "DELETE", strings.Replace(loc, "/whip/", "/whep/", 1), speaker, 404},
		{"in another room", "DELETE", strings.Replace(loc, "/stage/", "/other/", 1), speaker, 404},
		{"a PATCH", "PATCH", loc, speaker, 405},
	} {
		if r := do(t, c.method, base+c.path, "", c.tok, ""); r.status != c.want {
			t.Errorf("%s: %d, want %d", c.what, r.status, c.want)
		}
	}
	if s.endedWith() != "" {
		t.Fatalf("refused requests ended the session: %q", s.endedWith())
	}
	if r := do(t, "DELETE", base+loc, "", speaker, ""); r.status != 200 || s.endedWith() != "deleted by the client" {
		t.Fatalf("DELETE: %d, session ended %q", r.status, s.endedWith())
	}
	if r := do(t, "DELETE", base+loc, "", speaker, ""); r.status != 404 {
		t.Errorf("a second DELETE: %d, want 404", r.status)
	}
	// The place is free again; a session the conference ends frees it too.
	viewer := token(t, "stage", access.Viewer)
	r = do(t, "POST", base+"/whep/stage?source=camera&participant=P7", "application/sdp", viewer, "v=0")
	if r.status != 201 {
		t.Fatalf("after the DELETE: %d (%s)", r.status, r.body)
	}
	if v := conf.last(); v.req.Source != sfu.SourceCamera || v.req.Participant != "P7" {
		t.Errorf("WHEP request %+v", v.req)
	}
	conf.last().End("removed by a moderator")
	if r := do(t, "DELETE", base+r.header.Get("Location"), "", viewer, ""); r.status != 404 {
		t.Errorf("DELETE of a session the conference ended: %d, want 404", r.status)
	}
	if r := do(t, "POST", base+"/whep/stage", "application/sdp", viewer, "v=0"); r.status != 201 {
		t.Errorf("after the conference ended the session: %d, want 201", r.status)
	}
}
