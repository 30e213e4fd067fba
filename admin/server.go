package admin

import (
	"context"
	"net/http"
	"time"

	"github.com/keyvalue-go/keyvalue/internal/serverstatus"
)

// serverTimeout bounds the Server page's checks.
const serverTimeout = 10 * time.Second

type serverData struct {
	Lines []serverstatus.Line
	At    time.Time
	Took  time.Duration
}

func (h *handler) serverPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), serverTimeout)
	defer cancel()
	cfg := h.o.Client.Config()
	start := h.now()
	var lines []serverstatus.Line
	if err := h.o.Client.Connect(ctx); err != nil {
		lines = []serverstatus.Line{{Name: "endpoint", Value: cfg.String()}, {Name: "connect", Value: "FAILED: " + err.Error(), Failed: true}}
	} else {
		lines = append([]serverstatus.Line{{Name: "endpoint", Value: cfg.String()}}, serverstatus.Check(ctx, h.o.Client, cfg, h.o.Pings)...)
	}
	p := h.newPage(r, "Server", "server", "", serverData{Lines: lines, At: start, Took: time.Since(start)})
	if h.o.Refresh > 0 {
		p.Refresh = max(1, int(h.o.Refresh/time.Second))
	}
	h.render(w, http.StatusOK, "server", p)
}
