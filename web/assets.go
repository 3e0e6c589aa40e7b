package web

import (
	"bytes"
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// The dashboard's files. Everything it loads comes from here: it works with
// no network beyond the admin listener.
//
//go:embed assets
var assetFS embed.FS

// buildTime stands for the modification time of embedded files (embed keeps
// none), so browsers can revalidate.
var buildTime = time.Unix(0, 0)

func (h *handler) index(w http.ResponseWriter, r *http.Request) {
	b, err := assetFS.ReadFile("assets/index.html")
	if err != nil {
		h.error(w, r, http.StatusInternalServerError, "dashboard missing from the build")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, "index.html", buildTime, bytes.NewReader(b))
}

func (h *handler) assets(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/assets/")
	clean := path.Clean("/" + name)[1:]
	if clean != name || name == "" || strings.HasPrefix(path.Base(name), ".") {
		h.error(w, r, http.StatusNotFound, "not found")
		return
	}
	b, err := fs.ReadFile(assetFS, "assets/"+name)
	if err != nil {
		h.error(w, r, http.StatusNotFound, "not found")
		return
	}
	switch path.Ext(name) {
	case ".js":
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	case ".css":
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
	default:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	}
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, path.Base(name), buildTime, bytes.NewReader(b))
}
