package admin

import (
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/cache"
	"github.com/keyvalue-go/keyvalue/lock"
	"github.com/keyvalue-go/keyvalue/session"
)

// Options configure the handler. Client and Authorize are required.
type Options struct {
	// Client is the connection the Server page reports on.
	Client *keyvalue.Client
	// Caches, Sessions and Locks are the components the pages show (any
	// may be empty). Cache names and session prefixes must be distinct.
	Caches   []*cache.Backend
	Sessions []*session.Store
	Locks    *lock.Locker

	// Authorize decides every request (pages, assets, actions): false
	// refuses it. It must not be nil: put the page behind the
	// application's own login, e.g. func(r) bool { return
	// userFrom(r).IsAdmin }.
	Authorize func(*http.Request) bool
	// Challenge, if not empty, makes a refused request a 401 with this
	// WWW-Authenticate header (`Basic realm="keyvalue"`, say) instead of
	// a 403.
	Challenge string
	// Who names the operator in the action log; by default the Basic auth
	// user name, else the remote address.
	Who func(*http.Request) string
	// ReadOnly hides every action and refuses every POST.
	ReadOnly bool
	// Logger receives one record per action; nil means slog.Default().
	Logger *slog.Logger

	// Refresh is how often the Server page reloads itself (default 5 s;
	// negative: never).
	Refresh time.Duration
	// Pings is how many PINGs the Server page's latency line sends
	// (default 5).
	Pings int
	// SurveyInterval is how old a cache's survey (entry count, largest
	// tag indexes) may get before a page view starts a new one in the
	// background (default 30 s).
	SurveyInterval time.Duration
	// MaxLockKeys bounds the keys the Locks page walks (default 10,000).
	MaxLockKeys int
}

// handler serves the pages.
type handler struct {
	o        Options
	log      *slog.Logger
	caches   map[string]*cacheView
	cacheOrd []string
	sessions map[string]*session.Store
	sessOrd  []string
	pages    map[string]*template.Template
	static   http.Handler
	mux      *http.ServeMux
	now      func() time.Time
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// New returns the operations page's handler. Mount it under any path with
// http.StripPrefix: links are made from the prefix a request arrived
// with.
func New(o Options) (http.Handler, error) {
	if o.Client == nil {
		return nil, errors.New("admin: Options.Client is nil: pass the *keyvalue.Client the application uses")
	}
	if o.Authorize == nil {
		return nil, errors.New("admin: Options.Authorize is nil: every request needs an authorization decision (the application's login, or keyvalue serve's token)")
	}
	if o.Refresh == 0 {
		o.Refresh = 5 * time.Second
	}
	if o.Pings <= 0 {
		o.Pings = 5
	}
	if o.SurveyInterval <= 0 {
		o.SurveyInterval = 30 * time.Second
	}
	if o.MaxLockKeys <= 0 {
		o.MaxLockKeys = 10000
	}
	h := &handler{o: o, log: o.Logger, caches: map[string]*cacheView{}, sessions: map[string]*session.Store{}, now: time.Now}
	if h.log == nil {
		h.log = slog.Default()
	}
	for i, b := range o.Caches {
		if b == nil {
			return nil, fmt.Errorf("admin: Options.Caches[%d] is nil", i)
		}
		if h.caches[b.Name()] != nil {
			return nil, fmt.Errorf("admin: two caches are named %q", b.Name())
		}
		h.caches[b.Name()] = &cacheView{b: b}
		h.cacheOrd = append(h.cacheOrd, b.Name())
	}
	for i, s := range o.Sessions {
		if s == nil {
			return nil, fmt.Errorf("admin: Options.Sessions[%d] is nil", i)
		}
		if h.sessions[s.Prefix()] != nil {
			return nil, fmt.Errorf("admin: two session stores have the prefix %q", s.Prefix())
		}
		h.sessions[s.Prefix()] = s
		h.sessOrd = append(h.sessOrd, s.Prefix())
	}
	var err error
	if h.pages, err = parsePages(); err != nil {
		return nil, err
	}
	static, _ := fs.Sub(staticFS, "static")
	h.static = http.StripPrefix("/static/", http.FileServerFS(static))

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", h.serverPage)
	mux.Handle("GET /static/", h.static)
	mux.HandleFunc("GET /caches/{name}", h.cachePage)
	mux.HandleFunc("POST /caches/{name}/flush-tags", h.flushTags)
	mux.HandleFunc("POST /caches/{name}/flush", h.flushAll)
	mux.HandleFunc("POST /caches/{name}/gc", h.collectGarbage)
	mux.HandleFunc("POST /caches/{name}/remove", h.removeEntry)
	mux.HandleFunc("GET /sessions/{prefix}", h.sessionsPage)
	mux.HandleFunc("POST /sessions/{prefix}/revoke", h.revokeSession)
	mux.HandleFunc("POST /sessions/{prefix}/revoke-user", h.revokeUser)
	mux.HandleFunc("GET /locks", h.locksPage)
	mux.HandleFunc("POST /locks/release", h.releaseLock)
	h.mux = mux
	return h.secure(http.NewCrossOriginProtection().Handler(mux)), nil
}

// maxForm bounds a request body (a list of tags is the longest form).
const maxForm = 256 << 10

// contentSecurityPolicy allows this handler's own styles and script and
// nothing else: no inline script, no foreign origin, no framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// secure sets the security headers, decides authorization and applies
// ReadOnly before next sees the request.
func (h *handler) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", contentSecurityPolicy)
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-store")
		if !h.o.Authorize(r) {
			if h.o.Challenge != "" {
				hd.Set("WWW-Authenticate", h.o.Challenge)
				http.Error(w, "401 unauthorized: sign in to see the keyvalue operations page", http.StatusUnauthorized)
				return
			}
			http.Error(w, "403 forbidden: you may not see the keyvalue operations page", http.StatusForbidden)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if h.o.ReadOnly {
				http.Error(w, "403 forbidden: this operations page is read-only", http.StatusForbidden)
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		}
		next.ServeHTTP(w, r)
	})
}

// who names the operator for the action log.
func (h *handler) who(r *http.Request) string {
	if h.o.Who != nil {
		if w := h.o.Who(r); w != "" {
			return w
		}
	}
	if u, _, ok := r.BasicAuth(); ok && u != "" {
		return u
	}
	return r.RemoteAddr
}

// logAction records an action: who did what to which component, with how
// many keys it touched and its error if it failed.
func (h *handler) logAction(r *http.Request, action, component string, err error, attrs ...any) {
	attrs = append([]any{"who", h.who(r), "remote", r.RemoteAddr, "component", component}, attrs...)
	if err != nil {
		h.log.Warn("keyvalue admin: "+action+" failed", append(attrs, "error", err)...)
		return
	}
	h.log.Info("keyvalue admin: "+action, attrs...)
}

// base is the path prefix the handler is mounted under: what
// http.StripPrefix removed from the request's path.
func base(r *http.Request) string {
	uri := r.RequestURI
	if i := strings.IndexByte(uri, '?'); i >= 0 {
		uri = uri[:i]
	}
	if p := r.URL.EscapedPath(); strings.HasSuffix(uri, p) {
		return uri[:len(uri)-len(p)]
	}
	return ""
}

// cacheView is a cache with its latest survey.
type cacheView struct {
	b    *cache.Backend
	mu   sync.Mutex
	s    *survey // the latest survey that succeeded; nil before the first
	last *survey // the latest survey that ended
	on   *survey // the survey under way, if any
}
