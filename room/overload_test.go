package room_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/wait"
	"github.com/confab-sfu/confab/room"
	"github.com/confab-sfu/confab/room/load"
	"github.com/confab-sfu/confab/signal"
	"github.com/confab-sfu/confab/signal/client"
	"go.uber.org/goleak"
)

// quickLoad samples often and holds a level briefly, so tests see the
// node's level follow what they do within a second.
func quickLoad(lim load.Limits, cpu func() float64) load.Config {
	return load.Config{Limits: lim, Every: 50 * time.Millisecond, Hold: 200 * time.Millisecond,
		RetryAfter: 3 * time.Second, CPU: cpu}
}

// readyz returns the status of base's /readyz and its Retry-After.
func readyz(base string) (int, string) {
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

// postOffer POSTs a (dummy) offer to a WHIP or WHEP endpoint: refusals by
// load come before the offer is used.
func postOffer(t *testing.T, url string) (int, string, string) {
	t.Helper()
	resp, err := http.Post(url, "application/sdp", strings.NewReader("v=0\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After"), string(body)
}

// busyCode is the signaling refusal in err, if any.
func busyCode(err error) (code string, retry int) {
	var se *signal.Error
	if errors.As(err, &se) {
		return se.Code, se.RetryAfter
	}
	return "", 0
}

// lostAfter counts the packets missing from each track a peer received
// since index from[track] (sequence gaps), and how many arrived.
func lostAfter(p *testPeer, from map[string]int) (lost, got int) {
	for id, rc := range p.rec.snapshot() {
		seqs := rc.seqs[min(from[id], len(rc.seqs)):]
		for i := 1; i < len(seqs); i++ {
			if gap := int(seqs[i] - seqs[i-1]); gap > 1 && gap < 1000 {
				lost += gap - 1
			}
		}
		got += len(seqs)
	}
	return lost, got
}

func seqMarks(p *testPeer) map[string]int {
	out := map[string]int{}
	for id, rc := range p.rec.snapshot() {
		out[id] = len(rc.seqs)
	}
	return out
}

// TestOverloadRefusesNewcomersAndKeepsMembersMedia: a node whose
// forwarded streams reach -max-streams refuses a join and a publication
// (server_busy with retryAfter), WHIP and WHEP (503 with Retry-After) and
// says not ready, while its members keep receiving without loss; once a
// member leaves it is ready again and admits the newcomer, who receives.
func TestOverloadRefusesNewcomersAndKeepsMembersMedia(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// ada's audio and video to two others: 4 streams, the limit.
	_, url := startServer(t, room.Config{Load: quickLoad(load.Limits{Streams: 4}, nil)})
	ada := join(t, ctx, url, "hall", "ada")
	grace := join(t, ctx, url, "hall", "grace")
	linus := join(t, ctx, url, "hall", "linus")
	fromAda := map[string][]*source{ada.ID(): publish(t, ctx, ada, "ada", "audio", "video")}
	for _, p := range []*testPeer{grace, linus} {
		wait.Until(t, 20*time.Second, "ada's media reaches the others", func() (bool, string) { return checkTracks(p, 25, fromAda) })
	}
	wait.Until(t, 10*time.Second, "/readyz says busy", func() (bool, string) {
		st, retry := readyz(url)
		return st == http.StatusServiceUnavailable && retry == "3", fmt.Sprintf("status %d, Retry-After %q", st, retry)
	})
	marks := map[*testPeer]map[string]int{grace: seqMarks(grace), linus: seqMarks(linus)}

	_, err := client.Join(ctx, client.Params{URL: url, Room: "hall", Name: "dora"})
	if code, retry := busyCode(err); code != signal.CodeServerBusy || retry != 3 {
		t.Fatalf("a join over the limit: %v (code %q, retryAfter %d), want server_busy, 3", err, code, retry)
	}
	_, err = grace.Publish(ctx, signal.SourceMicrophone, newSource(t, "audio", "grace").track)
	if code, _ := busyCode(err); code != signal.CodeServerBusy {
		t.Fatalf("a publication over the limit: %v, want server_busy", err)
	}
	for _, kind := range []string{"whip", "whep"} {
		st, retry, body := postOffer(t, url+"/"+kind+"/hall")
		if st != http.StatusServiceUnavailable || retry != "3" || !strings.Contains(body, "full") {
			t.Fatalf("%s over the limit: %d, Retry-After %q, %q; want 503, 3", kind, st, retry, body)
		}
	}
	// The members inside lost nothing and kept receiving.
	for p, from := range marks {
		wait.Until(t, 10*time.Second, "members keep receiving", func() (bool, string) {
			_, got := lostAfter(p, from)
			return got >= 100, fmt.Sprintf("%d packets since the refusals", got)
		})
		if lost, got := lostAfter(p, from); lost > 0 {
			t.Errorf("a member lost %d of %d packets while newcomers were refused", lost, got+lost)
		}
	}
	if !metricsHave(t, url, `confab_admission_refused_total{kind="join",outcome="busy"}`) {
		t.Error("refused joins are not counted")
	}

	if err := linus.Leave(); err != nil {
		t.Fatal(err)
	}
	wait.Until(t, 10*time.Second, "/readyz ready again", func() (bool, string) {
		st, _ := readyz(url)
		return st == http.StatusOK, fmt.Sprintf("status %d", st)
	})
	dora := join(t, ctx, url, "hall", "dora")
	wait.Until(t, 20*time.Second, "the newcomer receives ada", func() (bool, string) { return checkTracks(dora, 25, fromAda) })
	for _, p := range []*testPeer{ada, grace, dora} {
		_ = p.Leave()
		p.rec.wg.Wait()
	}
}

// metricsHave reports whether base's /metrics has a sample named so.
func metricsHave(t *testing.T, base, sample string) bool {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return strings.Contains(string(body), sample+" ")
}

// TestOverloadCPUFlipsReadinessAndAdmission: the CPU reading (through the
// monitor's CPU seam) over -max-cpu refuses joins and makes the node not
// ready; back under, joins are admitted again.
func TestOverloadCPUFlipsReadinessAndAdmission(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var cpu atomic.Uint64 // per mille
	mgr, url := startServer(t, room.Config{Load: quickLoad(load.Limits{CPU: 0.5},
		func() float64 { return float64(cpu.Load()) / 1000 })})
	join(t, ctx, url, "lab", "ada")
	cpu.Store(600)
	wait.For(t, 5*time.Second, "the node is busy", mgr.Busy)
	if st, _ := readyz(url); st != http.StatusServiceUnavailable {
		t.Fatalf("/readyz %d while busy", st)
	}
	_, err := client.Join(ctx, client.Params{URL: url, Room: "lab", Name: "grace"})
	if code, _ := busyCode(err); code != signal.CodeServerBusy {
		t.Fatalf("join while the CPU is over its limit: %v", err)
	}
	cpu.Store(100)
	wait.For(t, 5*time.Second, "the node is no longer busy", func() bool { return !mgr.Busy() })
	if st, _ := readyz(url); st != http.StatusOK {
		t.Fatalf("/readyz %d once idle", st)
	}
	join(t, ctx, url, "lab", "grace")
}

// TestOverloadShedsLayersAndBackgroundVideo: under pressure the node caps
// video at the medium layer and pauses video shown in a hidden tab; more
// loaded, it caps at the low layer; once the load falls, everyone gets
// what they asked for again. Each step is counted.
func TestOverloadShedsLayersAndBackgroundVideo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var cpu atomic.Uint64 // per mille
	mgr, url := startServer(t, room.Config{Load: quickLoad(load.Limits{CPU: 0.5},
		func() float64 { return float64(cpu.Load()) / 1000 })})
	startSimulcastPublisher(t, ctx, url, "shed")
	front := joinSubscriber(t, ctx, url, "shed", "front", nil)
	back := joinSubscriber(t, ctx, url, "shed", "back", nil)
	var id string
	wait.For(t, 10*time.Second, "the camera is announced", func() bool { id = back.videoTrackID(); return id != "" })
	subscribe(t, ctx, back, signal.Subscription{TrackID: id, Background: true})
	waitWidth(t, front, 1280, 15*time.Second, "the foreground subscriber gets the high layer")
	waitWidth(t, back, 1280, 15*time.Second, "a hidden tab is served while the node is idle")

	cpu.Store(400) // 80 % of the limit: pressure
	wait.For(t, 5*time.Second, "pressure", func() bool { _, l := mgr.Load(); return l == load.Pressure })
	waitWidth(t, front, 640, 10*time.Second, "pressure caps at the medium layer")
	wait.Until(t, 10*time.Second, "the hidden tab's video pauses", func() (bool, string) {
		d := back.decision(id)
		return d.Current == "", fmt.Sprintf("decision %+v", d)
	})
	paused := back.video.media()
	cpu.Store(470) // 94 %: high
	waitWidth(t, front, 320, 10*time.Second, "high load caps at the low layer")
	if got := back.video.media(); got > paused+30 { // what was in flight
		t.Errorf("paused background video went on: %d packets after the pause, %d before", got, paused)
	}

	before := back.video.media()
	cpu.Store(0)
	waitWidth(t, front, 1280, 15*time.Second, "the high layer is back once the load falls")
	wait.Until(t, 15*time.Second, "the hidden tab's video is back", func() (bool, string) {
		got := back.video.media()
		return got > before+30 && back.video.lastWidth() == 1280, fmt.Sprintf("%d packets since, width %d", got-before, back.video.lastWidth())
	})
	for _, step := range []string{"cap_medium", "cap_low", "pause_background", "restore_layers", "resume_background"} {
		if !metricsHave(t, url, `confab_shed_steps_total{step="`+step+`"}`) {
			t.Errorf("shed step %s is not counted", step)
		}
	}
}
