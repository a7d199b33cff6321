package web_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"
)

// browserPage is one participant's page in any browser: a Chromium tab or a
// Firefox process. The assertions below work on either.
type browserPage interface {
	label() string
	// eval runs JavaScript (a function body, may await) and decodes its
	// JSON result into out.
	eval(js string, out any) error
	// console is the page's console log so far.
	console() string
	screenshot(t *testing.T, name string)
}

// pages watches a test's pages: it waits on their state and, on a
// failure, reports every one of them.
type pages struct {
	t   *testing.T
	reg *registry
}

type registry struct {
	mu   sync.Mutex
	list []browserPage
}

func newPages(t *testing.T) *pages { return &pages{t: t, reg: &registry{}} }

// in is the same pages for a subtest: failures fail t.
func (ps *pages) in(t *testing.T) *pages { return &pages{t: t, reg: ps.reg} }

func (ps *pages) add(p browserPage) {
	ps.reg.mu.Lock()
	defer ps.reg.mu.Unlock()
	ps.reg.list = append(ps.reg.list, p)
}

// snapshot is what a page shows and receives, from window.confab and
// getStats.
type snapshot struct {
	Me      string            `json:"me"`
	Status  map[string]any    `json:"status"`
	Frames  map[string]int    `json:"frames"` // participant (or "<participant>/screen") -> video frames decoded
	Audio   map[string]int    `json:"audio"`  // participant -> audio packets received
	Layers  map[string]any    `json:"layers"` // participant (or "<participant>/screen") -> the server's layer decision
	Sent    map[string]int    `json:"sent"`   // rid -> frames encoded by us
	Codecs  map[string]string `json:"codecs"` // participant (or "<participant>/screen") -> video codec received
	Tiles   []map[string]any  `json:"tiles"`
	Message string            `json:"message"`
}

// snapshotJS maps inbound-rtp entries to participants by their mid (or,
// in browsers whose stats have none, by their track).
const snapshotJS = `
const c = window.confab;
const out = {me: '', frames: {}, audio: {}, layers: {}, sent: {}, codecs: {}, tiles: [],
  message: (document.getElementById('prejoin-message').textContent + ' ' + document.getElementById('meeting-message').textContent).trim()};
if (!c) return out;
out.me = c.participantId; out.status = c.status(); out.tiles = c.tiles();
const key = (t) => t.source === 'screen' ? t.participant + '/screen' : t.participant;
for (const [id, d] of c.state.layers) { const t = c.state.tracks.get(id); if (t) out.layers[key(t)] = d; }
if (!c.pc) return out;
const midOf = new Map(c.pc.getTransceivers().filter(t => t.mid).map(t => [t.receiver.track.id, t.mid]));
const r = await c.pc.getStats();
r.forEach(s => {
  if (s.type === 'outbound-rtp' && s.kind === 'video') out.sent[s.rid || '-'] = s.framesEncoded || 0;
  if (s.type !== 'inbound-rtp') return;
  const id = c.state.mids.get(s.mid || midOf.get(s.trackIdentifier)); const info = id && c.state.tracks.get(id);
  if (!info) return;
  if (s.kind === 'video') {
    out.frames[key(info)] = (out.frames[key(info)] || 0) + (s.framesDecoded || 0);
    const codec = s.codecId && r.get(s.codecId);
    if (codec) out.codecs[key(info)] = codec.mimeType;
  } else out.audio[info.participant] = (out.audio[info.participant] || 0) + (s.packetsReceived || 0);
});
return out;`

func snapshotOf(p browserPage) (snapshot, error) {
	var s snapshot
	err := p.eval(snapshotJS, &s)
	return s, err
}

// tile returns the camera tile of a participant as the page lists it.
func (s snapshot) tile(participant string) (map[string]any, bool) {
	for _, tl := range s.Tiles {
		if tl["participant"] == participant && tl["source"] == "camera" {
			return tl, true
		}
	}
	return nil, false
}

// waitFor polls cond until it holds; on timeout it prints every page's
// console log and state, and fails.
func (ps *pages) waitFor(what string, within time.Duration, cond func() (bool, string)) {
	ps.t.Helper()
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
	ps.report()
	ps.t.Fatalf("timed out after %v waiting for %s: %s", within, what, last)
}

// settles waits until value stays the same for samples consecutive
// readings (250 ms apart) and returns it: a counter that stopped. It fails
// if the value is still changing at the deadline.
func (ps *pages) settles(what string, within time.Duration, samples int, value func() (int, error)) int {
	ps.t.Helper()
	last, same := -1, 0
	ps.waitFor(what, within, func() (bool, string) {
		v, err := value()
		if err != nil {
			return false, err.Error()
		}
		if v == last {
			same++
		} else {
			last, same = v, 1
		}
		return same >= samples, fmt.Sprintf("still changing: %d, unchanged for %d of %d readings", v, same, samples)
	})
	return last
}

// holds checks cond at every reading (250 ms apart) for the whole of
// during, and fails at the first reading where it does not hold: for what
// must not happen (a retry, a reconnect).
func (ps *pages) holds(what string, during time.Duration, cond func() (bool, string)) {
	ps.t.Helper()
	end := time.Now().Add(during)
	for {
		if ok, msg := cond(); !ok {
			ps.report()
			ps.t.Fatalf("%s stopped holding: %s", what, msg)
		}
		if time.Now().After(end) {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// waitSnapshot waits until cond holds for the page's snapshot.
func (ps *pages) waitSnapshot(p browserPage, what string, within time.Duration, cond func(snapshot) (bool, string)) snapshot {
	ps.t.Helper()
	var s snapshot
	ps.waitFor(p.label()+": "+what, within, func() (bool, string) {
		var err error
		if s, err = snapshotOf(p); err != nil {
			return false, err.Error()
		}
		return cond(s)
	})
	return s
}

// report logs each page's console and state, for failures.
func (ps *pages) report() {
	ps.reg.mu.Lock()
	list := append([]browserPage(nil), ps.reg.list...)
	ps.reg.mu.Unlock()
	for _, p := range list {
		ps.t.Logf("console of %s:\n%s", p.label(), p.console())
		if s, err := snapshotOf(p); err == nil {
			js, _ := json.MarshalIndent(s, "", "  ")
			ps.t.Logf("state of %s: %s", p.label(), js)
		}
	}
}

// joined waits until the page has a participant id and returns it.
func (ps *pages) joined(p browserPage) string {
	ps.t.Helper()
	s := ps.waitSnapshot(p, "joined", 20*time.Second, func(s snapshot) (bool, string) {
		return s.Me != "", fmt.Sprintf("not joined; status %v, message %q", s.Status, s.Message)
	})
	return s.Me
}

// receivesFrom waits until the page decodes more than minFrames video
// frames from each participant named (and, with audio, receives their
// sound).
func (ps *pages) receivesFrom(p browserPage, minFrames int, audio bool, from map[string]string) snapshot {
	ps.t.Helper()
	return ps.receivesWithin(p, 40*time.Second, minFrames, audio, from)
}

// receivesWithin is receivesFrom with a deadline of its own.
func (ps *pages) receivesWithin(p browserPage, within time.Duration, minFrames int, audio bool, from map[string]string) snapshot {
	ps.t.Helper()
	return ps.waitSnapshot(p, fmt.Sprintf("decodes > %d frames from %v", minFrames, keys(from)), within, func(s snapshot) (bool, string) {
		for name, id := range from {
			if s.Frames[id] <= minFrames || (audio && s.Audio[id] <= 0) {
				return false, fmt.Sprintf("from %s: %d frames, %d audio packets", name, s.Frames[id], s.Audio[id])
			}
		}
		return true, ""
	})
}
