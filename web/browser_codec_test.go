package web_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// onlyCodecJS makes Chromium a browser whose only video codec is the one
// kept (keep is a regexp source): its capabilities list nothing else, and
// it answers offers with nothing else, as Safari versions with H.264 only
// do. %s is the regexp.
const onlyCodecJS = `
(() => {
  const keep = (c) => !/^video\//i.test(c.mimeType) || /%s/i.test(c.mimeType) || /rtx|red|ulpfec/i.test(c.mimeType);
  for (const C of [RTCRtpSender, RTCRtpReceiver]) {
    const real = C.getCapabilities.bind(C);
    C.getCapabilities = (kind) => { const caps = real(kind); return caps && kind === 'video' ? {...caps, codecs: caps.codecs.filter(keep)} : caps; };
  }
  const srd = RTCPeerConnection.prototype.setRemoteDescription;
  RTCPeerConnection.prototype.setRemoteDescription = async function (d) {
    const r = await srd.call(this, d);
    if (d && d.type === 'offer') {
      for (const t of this.getTransceivers()) {
        if (t.receiver.track.kind === 'video' && !t.stopped) t.setCodecPreferences(RTCRtpReceiver.getCapabilities('video').codecs);
      }
    }
    return r;
  };
})();`

// joinOnly opens a participant whose browser has only the codec kept.
func (b *browser) joinOnly(base, roomName, name, keep string) *tab {
	b.t.Helper()
	tb := b.tab(name)
	if _, err := chromedp.Call(tb.ctx, page.AddScriptToEvaluateOnNewDocument,
		page.AddScriptToEvaluateOnNewDocumentParams{Source: fmt.Sprintf(onlyCodecJS, keep)}); err != nil {
		b.t.Fatal(err)
	}
	tb.do(b.t, chromedp.Navigate(fmt.Sprintf("%s/r/%s?name=%s&autojoin=1", base, roomName, name)))
	return tb
}

type codecState struct {
	Codec  string   `json:"codec"`
	Codecs []string `json:"codecs"`
}

func roomCodec(t *testing.T, tb *tab) codecState {
	t.Helper()
	return evalT[codecState](t, tb, `return {codec: window.confab.state.videoCodec, codecs: window.confab.state.videoCodecs}`)
}

// TestBrowserH264OnlyParticipant: an H.264-only browser (Safari's
// constraint) in a room of a VP8-capable one. The room switches to H.264:
// each decodes the other's video, as H.264; when it leaves, the room is on
// VP8 again. With no codec in common, each says which video it cannot play.
func TestBrowserH264OnlyParticipant(t *testing.T) {
	path := needBrowser(t)
	base := startServer(t, 0)
	b := newBrowser(t, path, base)

	ada := b.join(base, "codec-mix", "ada")
	adaID := b.joined(ada)
	if c := roomCodec(t, ada); c.Codec != "video/VP8" || len(c.Codecs) != 2 {
		t.Fatalf("ada before: %+v, want a VP8 room and both codecs", c)
	}
	safari := b.joinOnly(base, "codec-mix", "safari", "h264")
	safariID, at := b.joinedAt(safari)
	if c := roomCodec(t, safari); c.Codec != "video/H264" || len(c.Codecs) != 1 {
		t.Fatalf("safari: %+v, want an H.264 room and only H.264", c)
	}
	b.waitFor("ada's room codec H.264", 10*time.Second, func() (bool, string) {
		c := roomCodec(t, ada)
		return c.Codec == "video/H264", fmt.Sprintf("%+v", c)
	})
	s := b.decodesWithin(safari, at, map[string]string{"ada": adaID})
	if s.Codecs[adaID] != "video/H264" {
		t.Errorf("safari decodes ada's video as %q, want H.264", s.Codecs[adaID])
	}
	s = b.decodesWithin(ada, at, map[string]string{"safari": safariID})
	if s.Codecs[safariID] != "video/H264" {
		t.Errorf("ada decodes safari's video as %q, want H.264", s.Codecs[safariID])
	}
	safari.screenshot(t, "h264-only.png")
	safari.do(t, chromedp.Click(chromedp.CSS("#leave")))
	b.waitFor("ada's room codec back to VP8", 10*time.Second, func() (bool, string) {
		c := roomCodec(t, ada)
		return c.Codec == "video/VP8", fmt.Sprintf("%+v", c)
	})

	// Nothing in common: the room stays on VP8, and each page says which
	// video it cannot play.
	vp8 := b.joinOnly(base, "no-common", "vp8only", "vp8")
	vp8ID := b.joined(vp8)
	h264 := b.joinOnly(base, "no-common", "h264only", "h264")
	h264ID := b.joined(h264)
	for _, c := range []struct {
		tb   *tab
		from string
	}{{h264, vp8ID}, {vp8, h264ID}} {
		b.waitSnapshot(c.tb, "the other's video marked as one it cannot play", 15*time.Second, func(s snapshot) (bool, string) {
			tl, ok := s.tile(c.from)
			return ok && tl["undecodable"] == true, fmt.Sprintf("tile %v", tl)
		})
	}
	h264.screenshot(t, "h264-only-cannot-play-vp8.png")
	// Both still hear each other.
	b.receivesWithin(h264, 15*time.Second, -1, true, map[string]string{"vp8only": vp8ID})
}
