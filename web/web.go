// Package web serves Confab's browser client: plain HTML, CSS and ES
// modules embedded in the binary, so the server needs nothing on disk and
// there is no build step.
//
// Routes: "/" the landing page, "/r/{room}" a meeting (the link is the
// invitation), "/static/..." the assets.
package web

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var files embed.FS

// Handler serves the client.
func Handler() http.Handler {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	static := http.StripPrefix("/static/", http.FileServerFS(sub))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", page(sub, "index.html"))
	mux.HandleFunc("GET /r/{room}", page(sub, "room.html"))
	mux.Handle("GET /static/", noCache(static))
	return mux
}

// page serves one HTML file. The room page is the same for every room: the
// room name comes from the URL, and the server validates it on join.
func page(fsys fs.FS, name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			http.Error(w, "missing page", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		_, _ = w.Write(b)
	}
}

// noCache makes browsers revalidate assets, which carry no content hash
// since there is no build step.
func noCache(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		h.ServeHTTP(w, r)
	})
}
