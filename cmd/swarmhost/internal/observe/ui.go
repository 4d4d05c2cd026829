package observe

import (
	"embed"
	"io/fs"
	"net/http"
)

// Paths of the status page, served by [Server.Handler] next to MetricsPath
// and StatusPath.
const (
	// PagePath is the status page: plain HTML, CSS and JavaScript embedded
	// in the binary that polls StatusPath once a second. It is read-only.
	PagePath = "/"
	// SchemaPath serves [StatusSchema].
	SchemaPath = "/status.schema.json"
	uiPrefix   = "/ui/"
)

// PageCSP is the Content-Security-Policy of the status page and its
// assets: everything from the daemon itself, nothing inline, no framing,
// no forms.
const PageCSP = "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; object-src 'none'"

//go:embed ui
var uiFiles embed.FS

// StatusSchema is the JSON Schema (draft 2020-12) of the document served on
// StatusPath, schema version [SchemaVersion]. A test checks a live daemon's
// document against it.
//
//go:embed status.schema.json
var StatusSchema []byte

// mountUI registers the status page, its assets and the schema on mux.
func (s *Server) mountUI(mux *http.ServeMux) {
	assets, err := fs.Sub(uiFiles, "ui")
	if err != nil {
		panic(err) // the embedded tree always has ui/
	}
	index, err := fs.ReadFile(assets, "index.html")
	if err != nil {
		panic(err)
	}
	files := http.StripPrefix(uiPrefix, http.FileServerFS(assets))
	mux.Handle("GET "+PagePath+"{$}", pageHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(index)
	})))
	mux.Handle("GET "+uiPrefix, pageHeaders(files))
	mux.Handle("GET "+SchemaPath, pageHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/schema+json")
		w.Write(StatusSchema)
	})))
}

// pageHeaders sets the security headers of the page and its assets.
func pageHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", PageCSP)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}
