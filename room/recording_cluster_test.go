package room_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/mediaprobe"
	"github.com/confab-sfu/confab/internal/testserver"
	"github.com/confab-sfu/confab/internal/wait"
	"github.com/confab-sfu/confab/room"
	"github.com/confab-sfu/confab/room/access"
	"github.com/confab-sfu/confab/room/record"
)

// In a cluster the recording runs where the moderator asked: a member of
// another node is recorded from the track relayed there, and is told the
// room is being recorded.
func TestRecordAcrossNodes(t *testing.T) {
	mediaprobe.Need(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dir := t.TempDir()
	nodes := testserver.StartCluster(t, 2, func(_ int, cfg *room.Config) {
		cfg.AuthSecret, cfg.RecordDir = testSecret, dir
	})
	mod := joinWithToken(t, ctx, nodes[0].URL, "x", "mod", modToken(t, "x", "mod"))
	pub := joinClipPublisher(t, ctx, nodes[1].URL, "x", "ada", mint(t, testSecret, "x", "ada", access.Speaker, time.Hour, time.Now()), nil)
	flowing(t, mod, pub.ID(), "across the nodes")
	if code := recordReq(t, ctx, mod, true); code != "" {
		t.Fatalf("start: %s", code)
	}
	waitRecordingEvent(t, true, mod, pub.testPeer)
	waitFile(t, dir, 1)
	select { // the file records for 4 s
	case <-time.After(4 * time.Second):
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	if code := recordReq(t, ctx, mod, false); code != "" {
		t.Fatalf("stop: %s", code)
	}
	waitRecordingEvent(t, false, mod, pub.testPeer)
	wait.Until(t, 10*time.Second, "the recording to be finished", func() (bool, string) {
		m := currentManifest(dir)
		return m != nil && m.EndedAt != nil, "no end yet"
	})
	m, recDir := onlyManifest(t, dir)
	if len(m.Files) != 1 || m.Files[0].ParticipantID != "ada" || m.Files[0].State != record.FileDone || m.Files[0].DurationMS < 3500 {
		t.Fatalf("files %+v: want ada's camera, 4 s", m.Files)
	}
	f := filepath.Join(recDir, m.Files[0].File)
	p := mediaprobe.Probe(t, f)
	p.Only(t, "audio")
	p.Only(t, "video")
	mediaprobe.Decodes(t, f)
}
