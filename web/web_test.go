package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRoutes(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	cases := []struct {
		path, wantType, wantBody string
		status                   int
	}{
		{"/", "text/html", "Start a new meeting", 200},
		{"/r/standup", "text/html", "Join meeting", 200},
		{"/r/any-room.name_1", "text/html", "room.js", 200},
		{"/static/js/room.js", "text/javascript", "RTCPeerConnection", 200},
		{"/static/js/signaling.js", "text/javascript", "class Signaling", 200},
		{"/static/app.css", "text/css", ".tile", 200},
		{"/static/nope.js", "", "", 404},
		{"/r/", "", "", 404},
		{"/elsewhere", "", "", 404},
	}
	for _, c := range cases {
		resp, err := http.Get(srv.URL + c.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("%s: status %d, want %d", c.path, resp.StatusCode, c.status)
			continue
		}
		if c.status != 200 {
			continue
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, c.wantType) {
			t.Errorf("%s: content type %q, want %s", c.path, ct, c.wantType)
		}
		if !strings.Contains(string(body), c.wantBody) {
			t.Errorf("%s: body lacks %q", c.path, c.wantBody)
		}
		if resp.Header.Get("Cache-Control") != "no-cache" {
			t.Errorf("%s: cache control %q", c.path, resp.Header.Get("Cache-Control"))
		}
	}
	resp, err := http.Post(srv.URL+"/", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /: status %d", resp.StatusCode)
	}
}
