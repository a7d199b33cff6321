package room

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/confab-sfu/confab/room/addrlimit"

	"github.com/confab-sfu/confab/sfu"
	"github.com/confab-sfu/confab/signal"
)

// Connection checks (docs/operations.md, "Troubleshooting"): the /check
// page and `confab check` ask GET /check/config for what a participant
// would get (ICE servers with fresh TURN credentials, whether ICE over TCP
// is offered), then POST a data-channel-only offer to
// /check/ice?transport=udp|tcp|relay and connect to the answer, which holds
// only that transport's candidates. No room is joined and no media flows.
// Each address may run checkBurst checks, then one per checkRefill; a
// running check counts against -max-conns-per-ip like a WebSocket, and at
// most maxChecks run at once.
const (
	checkLifetime = 20 * time.Second
	checkBurst    = 12
	checkRefill   = 5 * time.Second
	maxChecks     = 64
	checkGather   = 5 * time.Second
)

// checkConfig is GET /check/config's body.
type checkConfig struct {
	ICEServers []signal.ICEServer `json:"iceServers"`
	// TCP says whether the server accepts ICE over TCP (-ice-tcp-port).
	TCP bool `json:"tcp"`
}

// checkBucket is one address's allowance of checks.
type checkBucket struct {
	tokens float64
	at     time.Time
}

// checkLimits rate-limits checks per address and counts those running.
type checkLimits struct {
	mu      sync.Mutex
	buckets map[string]*checkBucket
	running int
}

// take spends one check of ip's allowance, if it has one left.
func (c *checkLimits) take(ip string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.buckets == nil {
		c.buckets = map[string]*checkBucket{}
	}
	for k, b := range c.buckets { // forget addresses whose allowance is full again
		if now.Sub(b.at) > checkBurst*checkRefill {
			delete(c.buckets, k)
		}
	}
	b, ok := c.buckets[ip]
	if !ok {
		b = &checkBucket{tokens: checkBurst, at: now}
		c.buckets[ip] = b
	}
	b.tokens = min(checkBurst, b.tokens+now.Sub(b.at).Seconds()/checkRefill.Seconds())
	b.at = now
	if b.tokens < 1 || c.running >= maxChecks {
		return false
	}
	b.tokens--
	c.running++
	return true
}

func (c *checkLimits) done() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.running--
}

// ServeCheck serves /check/config and /check/ice.
func (m *Manager) ServeCheck(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	switch {
	case r.URL.Path == "/check/config" && r.Method == http.MethodGet:
		w.Header().Set("Content-Type", "application/json")
		cfg := checkConfig{ICEServers: m.cfg.ICE.For("check-"+sfu.NewID("C"), time.Now()), TCP: m.engine.Config().TCPPort != 0}
		_ = json.NewEncoder(w).Encode(cfg)
	case r.URL.Path == "/check/ice" && r.Method == http.MethodPost:
		m.serveCheckICE(w, r)
	case r.URL.Path == "/check/config" || r.URL.Path == "/check/ice":
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	default:
		http.NotFound(w, r)
	}
}

// serveCheckICE answers one check's offer.
func (m *Manager) serveCheckICE(w http.ResponseWriter, r *http.Request) {
	transport := r.URL.Query().Get("transport")
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/sdp") {
		http.Error(w, "the offer must be application/sdp", http.StatusUnsupportedMediaType)
		return
	}
	ip := addrlimit.OfRequest(r)
	m.mu.Lock()
	closing := m.closing
	m.mu.Unlock()
	// A running check holds a place in the address's budget, like a
	// WebSocket: a flood of checks cannot hold more than the budget.
	if closing || !m.checks.take(ip, time.Now()) {
		http.Error(w, "too many connection checks from your address; try again in a minute", http.StatusTooManyRequests)
		return
	}
	if !m.cfg.Addrs.Reserve(ip) {
		m.checks.done()
		http.Error(w, "too many connection checks from your address; try again in a minute", http.StatusTooManyRequests)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, signal.MaxSDPBytes+1))
	if err != nil || len(body) > signal.MaxSDPBytes {
		m.cfg.Addrs.Release(ip)
		m.checks.done()
		http.Error(w, "the offer is too large or could not be read", http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), checkGather)
	defer cancel()
	answer, done, err := m.engine.AnswerCheck(ctx, string(body), transport, checkLifetime)
	if err != nil {
		m.cfg.Addrs.Release(ip)
		m.checks.done()
		status := http.StatusBadRequest
		if errors.Is(err, sfu.ErrCheckUnavailable) {
			status = http.StatusNotFound
		}
		http.Error(w, err.Error(), status)
		return
	}
	go func() {
		<-done
		m.cfg.Addrs.Release(ip)
		m.checks.done()
	}()
	m.log.Debug("connection check", "transport", transport, "remote", r.RemoteAddr)
	w.Header().Set("Content-Type", "application/sdp")
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
}
