package web_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/confab-sfu/confab/signal"
	"github.com/confab-sfu/confab/signal/client"
)

// encodingsJS reports which simulcast encodings the page's camera sender
// has active, as "rid:on" pairs.
const encodingsJS = `const s = window.confab.pc.getSenders().find(s => s.track && s.track.kind === 'video');
return s ? s.getParameters().encodings.map(e => e.rid + ':' + (e.active ? 'on' : 'off')).join(' ') : ''`

// Dynacast in Chromium: when the only viewer of a browser's camera watches
// its low layer, the page stops encoding the two others; asked for the
// top layer, it starts it again.
func TestBrowserDynacast(t *testing.T) {
	path := needBrowser(t)
	base := startServer(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	b := newBrowser(t, path, base)
	pub := b.join(base, "dyn", "pub")
	b.joined(pub)

	api, err := client.NewAPI(client.APIOptions{Loopback: true})
	if err != nil {
		t.Fatal(err)
	}
	var packets videoCounter
	viewer, err := client.Join(ctx, client.Params{URL: base, Room: "dyn", Name: "viewer", API: api, OnTrack: packets.onTrack})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = viewer.Leave(); packets.wait() }()
	trackID := ""
	b.waitFor("the page's camera announced", 20*time.Second, func() (bool, string) {
		for _, tr := range viewer.Tracks() {
			if tr.Kind == "video" {
				trackID = tr.ID
			}
		}
		return trackID != "", fmt.Sprintf("tracks %v", viewer.Tracks())
	})
	ask := func(layer string) {
		if _, err := viewer.Client().Request(ctx, &signal.Message{Type: signal.TypeSubscribe,
			Subscriptions: []signal.Subscription{{TrackID: trackID, MaxLayer: layer}}}); err != nil {
			t.Fatalf("subscribe %s: %v", layer, err)
		}
	}
	encodings := func() string {
		var s string
		if err := pub.eval(encodingsJS, &s); err != nil {
			return err.Error()
		}
		return s
	}

	ask(signal.LayerLow)
	b.waitFor("the page to encode only its low layer", 20*time.Second, func() (bool, string) {
		e := encodings()
		return e == "l:on m:off h:off", e
	})
	// Paused means paused: the top layer's frame count stops, and the
	// viewer keeps receiving the low one.
	b.settles("the page stops encoding its top layer", 15*time.Second, 8, func() (int, error) {
		s, err := pub.snapshot()
		return s.Sent["h"], err
	})
	n := packets.n.Load()
	b.waitFor("the viewer keeps receiving", 10*time.Second, func() (bool, string) {
		return packets.n.Load() > n+30, fmt.Sprintf("%d packets", packets.n.Load()-n)
	})

	ask(signal.LayerHigh)
	b.waitFor("the page to encode its top layer again", 10*time.Second, func() (bool, string) {
		e := encodings()
		return e == "l:on m:off h:on", e
	})
}
