// Package web serves Confab's browser client: plain HTML, CSS and ES
// modules embedded in the binary, so the server needs nothing on disk and
// there is no build step.
//
// Routes: "/" the landing page, "/r/{room}" a meeting (the link is the
// invitation), "/watch/{room}" a bare WHEP player for embedding, "/check"
// the connection check, "/static/..." the assets. docs/web-client.md describes the
// client and its automation contract.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/confab-sfu/confab/signal"
)

//go:embed static
var files embed.FS

// contentTypes is explicit rather than from the mime package, which reads
// the system's mime.types and may call JavaScript something a browser
// refuses to run as a module.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
}

// pagePolicy allows only this origin's scripts, styles and WebSocket, and
// media from the camera, the screen and the PeerConnection.
const pagePolicy = "default-src 'self'; connect-src 'self' ws: wss:; media-src 'self' blob: mediastream:; " +
	"img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

// watchPolicy is the player's: it fetches WHEP from this origin only and
// may be embedded by any site.
const watchPolicy = "default-src 'self'; connect-src 'self'; media-src 'self' blob: mediastream:; " +
	"img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors *; form-action 'none'"

// pagePolicies are the pages whose policies differ from pagePolicy.
var pagePolicies = map[string]struct{ csp, permissions string }{
	"watch.html": {watchPolicy, "camera=(), microphone=(), display-capture=()"},
}

// asset is one embedded file, ready to serve.
type asset struct {
	name  string
	body  []byte
	ctype string
	etag  string
}

// Handler serves the client.
func Handler() http.Handler {
	assets, err := load(files)
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", assets["index.html"])
	mux.HandleFunc("GET /r/{room}", func(w http.ResponseWriter, r *http.Request) {
		// The rule of docs/protocol.md, checked here too so that a
		// mistyped link gets a 404 rather than a page that cannot join.
		if !signal.ValidRoomName(r.PathValue("room")) {
			http.NotFound(w, r)
			return
		}
		assets["room.html"].ServeHTTP(w, r)
	})
	mux.HandleFunc("GET /watch/{room}", func(w http.ResponseWriter, r *http.Request) {
		if !signal.ValidRoomName(r.PathValue("room")) {
			http.NotFound(w, r)
			return
		}
		assets["watch.html"].ServeHTTP(w, r)
	})
	mux.Handle("GET /check", assets["check.html"])
	mux.HandleFunc("GET /static/{file...}", func(w http.ResponseWriter, r *http.Request) {
		a, ok := assets[r.PathValue("file")]
		if !ok || strings.HasSuffix(a.name, ".html") {
			http.NotFound(w, r)
			return
		}
		a.ServeHTTP(w, r)
	})
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/static/favicon.svg", http.StatusMovedPermanently)
	})
	return mux
}

// load reads every embedded file under static/ and computes its ETag.
func load(fsys fs.FS) (map[string]*asset, error) {
	sub, err := fs.Sub(fsys, "static")
	if err != nil {
		return nil, fmt.Errorf("open embedded static tree: %w", err)
	}
	assets := map[string]*asset{}
	err = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ctype, ok := contentTypes[path.Ext(p)]
		if !ok {
			return fmt.Errorf("embedded file %s: no content type for its extension", p)
		}
		body, err := fs.ReadFile(sub, p)
		if err != nil {
			return fmt.Errorf("read embedded file %s: %w", p, err)
		}
		sum := sha256.Sum256(body)
		assets[p] = &asset{name: p, body: body, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, page := range []string{"index.html", "room.html", "watch.html", "check.html"} {
		if assets[page] == nil {
			return nil, fmt.Errorf("embedded page %s is missing", page)
		}
	}
	return assets, nil
}

// ServeHTTP sends the file. Assets carry no content hash in their names
// (there is no build step), so browsers revalidate every time and get a
// 304 by ETag while nothing changed.
func (a *asset) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	if strings.HasSuffix(a.name, ".html") {
		if p, ok := pagePolicies[a.name]; ok {
			h.Set("Content-Security-Policy", p.csp)
			h.Set("Permissions-Policy", p.permissions)
		} else {
			h.Set("Content-Security-Policy", pagePolicy)
			h.Set("Permissions-Policy", "camera=(self), microphone=(self), display-capture=(self)")
		}
	}
	// ServeContent answers If-None-Match and Range; the zero time leaves
	// validation to the ETag.
	http.ServeContent(w, r, a.name, time.Time{}, bytes.NewReader(a.body))
}
