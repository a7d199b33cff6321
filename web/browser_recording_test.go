package web_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/confab-sfu/confab/internal/mediaprobe"
	"github.com/confab-sfu/confab/internal/testserver"
	"github.com/confab-sfu/confab/room"
	"github.com/confab-sfu/confab/room/access"
	"github.com/confab-sfu/confab/room/record"
)

// recordingView is what a page shows of the recording.
type recordingView struct {
	On     bool `json:"on"`
	Badge  bool `json:"badge"`
	Button bool `json:"button"`
}

// A moderator's page starts and stops recording with its button: both
// pages show the badge meanwhile, only the moderator has the button, and
// the Chromium participants' files decode.
func TestRecordBrowser(t *testing.T) {
	path := needBrowser(t)
	mediaprobe.Need(t)
	secret := []byte("recording-test-secret")
	dir := t.TempDir()
	_, base := testserver.Start(t, room.Config{AuthSecret: secret, RecordDir: dir})
	b := newBrowser(t, path, base)
	mod := b.open("mod", invite(base, "rec", mint(t, secret, "rec", "mod-1", "mod", access.Moderator)))
	spk := b.open("speaker", invite(base, "rec", mint(t, secret, "rec", "spk-1", "speaker", access.Speaker)))
	modID, spkID := b.joined(mod), b.joined(spk)
	b.receivesFrom(mod, 30, true, map[string]string{"speaker": spkID})
	b.receivesFrom(spk, 30, true, map[string]string{"mod": modID})

	view := func(tb *tab) recordingView { return evalT[recordingView](t, tb, `return window.confab.recording`) }
	if m, s := view(mod), view(spk); m.Badge || s.Badge || !m.Button || s.Button {
		t.Fatalf("before recording: moderator %+v, speaker %+v; want no badge, the button for the moderator only", m, s)
	}
	waitBadges := func(on bool) {
		b.waitFor("the recording badge on both pages", 10*time.Second, func() (bool, string) {
			m, s := view(mod), view(spk)
			return m.Badge == on && s.Badge == on && m.On == on && s.On == on, "moderator and speaker see the recording as they do"
		})
	}
	mod.do(t, chromedp.Click(chromedp.CSS("#record")))
	waitBadges(true)
	mod.screenshot(t, "recording-moderator.png")
	spk.screenshot(t, "recording-speaker.png")
	b.waitFor("both files to start", 15*time.Second, func() (bool, string) {
		m := browserManifest(dir)
		if m == nil {
			return false, "no manifest"
		}
		made := 0
		for _, f := range m.Files {
			if matches, _ := filepath.Glob(filepath.Join(dir, "*", "*", f.File)); len(matches) == 1 {
				made++
			}
		}
		return made == 2, "files made so far: fewer than 2"
	})
	select { // the files record for 5 s
	case <-time.After(5 * time.Second):
	case <-b.ctx.Done():
		t.Fatal(b.ctx.Err())
	}
	mod.do(t, chromedp.Click(chromedp.CSS("#record")))
	waitBadges(false)
	b.waitFor("the recording to be finished", 10*time.Second, func() (bool, string) {
		m := browserManifest(dir)
		return m != nil && m.EndedAt != nil, "the manifest has no end yet"
	})
	m := browserManifest(dir)
	if len(m.Files) != 2 {
		t.Fatalf("manifest %+v: want two files and an end", m)
	}
	paths, _ := filepath.Glob(filepath.Join(dir, "*", "*", record.ManifestName))
	for _, f := range m.Files {
		if f.State != record.FileDone || f.Video == nil || f.Audio == nil || f.DurationMS < 4000 {
			t.Errorf("file %+v: want a done camera file of audio and video, 4 s or more", f)
			continue
		}
		file := filepath.Join(filepath.Dir(paths[0]), f.File)
		p := mediaprobe.Probe(t, file)
		a, v := p.Only(t, "audio"), p.Only(t, "video")
		if a.CodecName != "opus" || v.Width == 0 || v.Seconds < 4 || a.Seconds < 4 {
			t.Errorf("%s: audio %+v, video %+v", f.File, a, v)
		}
		mediaprobe.Decodes(t, file)
		// A layer switch must not write one instant twice (a millisecond
		// apart), nor squeeze a keyframe that came late against its neighbours.
		if step, at := mediaprobe.SmallestStep(t, file, "video"); step < 0.010 {
			t.Errorf("%s: two video frames %.0f ms apart at %.3f s", f.File, step*1000, at)
		}
		t.Logf("%s (%s): %s %dx%d %.2f s, opus %.2f s, %d bytes", f.File, f.ParticipantID, v.CodecName, v.Width, v.Height, v.Seconds, a.Seconds, f.Bytes)
	}
}

// browserManifest reads the one recording's manifest under dir, if any.
func browserManifest(dir string) *record.Manifest {
	paths, _ := filepath.Glob(filepath.Join(dir, "*", "*", record.ManifestName))
	if len(paths) != 1 {
		return nil
	}
	m, err := record.ReadManifest(paths[0])
	if err != nil {
		return nil
	}
	return m
}
