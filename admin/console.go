package admin

import (
	"embed"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
)

// The web console: a page and its script and style, embedded in the
// binary, served under /console/ by the admin listener.
//
// The page is served without the token, and that is safe because it holds
// no data: it is the same three files for everyone. Everything it shows it
// fetches from the JSON API with the token, which a person enters once
// and the browser keeps in sessionStorage (gone with the tab, never in a
// cookie, so no other site can make the browser send it: no CSRF). The
// answers carry a Content-Security-Policy that lets the page load only its
// own script and style and talk only to this listener, and forbids
// framing it; the script builds the page with DOM text nodes, never
// markup, so what an agent or a server chose (a tool name, arguments)
// cannot run as script.

// ConsolePath is where the console is served.
const ConsolePath = "/console/"

//go:embed console
var consoleFiles embed.FS

// consoleCSP lets the page load its own script and style and fetch from
// its own origin, nothing else.
const consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// consoleAsset is one embedded file, ready to serve.
type consoleAsset struct {
	body  []byte
	ctype string
}

// console serves the embedded files by exact name: no path is resolved
// against a directory, so no spelling reaches anything else.
type console map[string]consoleAsset

func newConsole() console {
	c := console{}
	sub, err := fs.Sub(consoleFiles, "console")
	if err != nil {
		panic("admin: console files: " + err.Error()) // the embed directive guarantees the directory
	}
	fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := fs.ReadFile(sub, p)
		ct := mime.TypeByExtension(path.Ext(p))
		if ct == "" {
			ct = "application/octet-stream"
		}
		c[p] = consoleAsset{body: b, ctype: ct}
		return nil
	})
	c[""] = c["index.html"]
	return c
}

// isConsole reports a path the console answers, token or not.
func isConsole(p string) bool {
	return p == strings.TrimSuffix(ConsolePath, "/") || strings.HasPrefix(p, ConsolePath)
}

func (c console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", consoleCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "the console is read with GET")
		return
	}
	if r.URL.Path+"/" == ConsolePath {
		http.Redirect(w, r, ConsolePath, http.StatusMovedPermanently)
		return
	}
	a, ok := c[strings.TrimPrefix(r.URL.Path, ConsolePath)]
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "no console file "+r.URL.Path)
		return
	}
	h.Set("Content-Type", a.ctype)
	h.Set("Content-Length", strconv.Itoa(len(a.body)))
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(a.body)
	}
}
