package room

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/confab-sfu/confab/room/load"
	"github.com/confab-sfu/confab/room/whip"
	"github.com/confab-sfu/confab/sfu"
	"github.com/confab-sfu/confab/signal"
	"github.com/prometheus/client_golang/prometheus"
)

// Admission control: a join, a publication or a WHIP/WHEP session that
// would push this node past its load limits (Config.Load, judged by
// room/load) is refused at once, so that the people already inside keep
// their media. What a newcomer would add is estimated from the room as it
// is: a join subscribes to every published track, a publication is sent
// to every other member here, a viewer receives audio and video. In a
// cluster a busy node hands a join to a node that is not busy
// (cluster_handoff.go). While loaded, before refusing anything, the node
// sheds: it caps video layers and pauses video shown in hidden tabs.

// whipTracks is what a WHIP publisher or a WHEP viewer is assumed to
// bring or take before its offer is read: audio and video.
const whipTracks = 2

var metricRefused = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "confab_admission_refused_total",
	Help: "Joins, publications and WHIP/WHEP sessions refused or handed to another node because this node is at its load limits, by kind and outcome."},
	[]string{"kind", "outcome"})

var metricShedSteps = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "confab_shed_steps_total",
	Help: "Load shedding steps taken: cap_medium, cap_low, pause_background, and their undoing (restore_layers, resume_background)."},
	[]string{"step"})

func init() { prometheus.MustRegister(metricRefused, metricShedSteps) }

// busyError refuses what this node has no room for: server_busy over
// signaling, 503 with Retry-After over HTTP.
type busyError struct {
	retry time.Duration
}

func (e *busyError) Error() string {
	return fmt.Sprintf("the server is full right now; try again in %d s", e.seconds())
}

func (e *busyError) seconds() int { return int(math.Ceil(e.retry.Seconds())) }

// RetryAfter is the wait package whip puts in Retry-After.
func (e *busyError) RetryAfter() time.Duration { return e.retry }

// signal is the refusal on the wire.
func (e *busyError) signal() *signal.Error {
	return &signal.Error{Code: signal.CodeServerBusy, Message: e.Error(), RetryAfter: e.seconds()}
}

// newLoadMonitor makes the Manager's load monitor (started once the
// cluster, if any, is joined).
func (m *Manager) newLoadMonitor() *load.Monitor {
	cfg := m.cfg.Load
	cfg.Streams = m.loadStreams
	cfg.Out = sfu.ForwardedTotals
	cfg.OnLevel = func(from, to load.Level, _ load.Reading) { m.shed(from, to) }
	if cfg.Logger == nil {
		cfg.Logger = m.log
	}
	return load.New(cfg)
}

// loadStreams counts the streams this node forwards: to its own
// participants and viewers, and relayed to other nodes.
func (m *Manager) loadStreams() int {
	n := m.forwardedStreams()
	if m.cl != nil {
		n += m.cl.links.layersOut()
	}
	return n
}

// Busy reports whether this node is over its load limits: it refuses new
// joins, publications and viewers, and /readyz says not ready.
func (m *Manager) Busy() bool { return m.mon.Level() >= load.Over }

// Load is this node's latest load reading and level.
func (m *Manager) Load() (load.Reading, load.Level) { return m.mon.Reading(), m.mon.Level() }

// busy is the refusal of a node at its limits.
func (m *Manager) busy() *busyError { return &busyError{retry: m.mon.RetryAfter()} }

// admitJoin reserves what a join into the named room adds (a subscription
// to each of its tracks) until release; refused, it says where to go
// instead (another node) or how long to wait.
func (m *Manager) admitJoin(name string) (release func(), refusal *signal.Error) {
	release, ok := m.mon.Reserve(m.roomTracks(name))
	if ok {
		return release, nil
	}
	if url := m.handoffURL(); url != "" {
		metricRefused.WithLabelValues("join", "handoff").Inc()
		m.log.Info("join handed to another node", "room", name, "url", url)
		return nil, &signal.Error{Code: signal.CodeRedirect, URL: url,
			Message: "this server is full; join through " + url}
	}
	metricRefused.WithLabelValues("join", "busy").Inc()
	m.log.Info("join refused: server busy", "room", name)
	return nil, m.busy().signal()
}

// admitPublish checks an offer that publishes tracks (the offer lists
// every track of p): its new ones are sent to every other member here.
func (m *Manager) admitPublish(p *participant, listed int) *signal.Error {
	r := p.room
	r.mu.Lock()
	own := 0
	for _, t := range r.tracks {
		if t.owner == p {
			own++
		}
	}
	receivers := len(r.participants) - 1
	r.mu.Unlock()
	added := listed - own
	if added <= 0 || m.mon.Admits(added*receivers) {
		return nil
	}
	metricRefused.WithLabelValues("publish", "busy").Inc()
	p.log.Info("publication refused: server busy", "tracks", added)
	return m.busy().signal()
}

// admitHTTP reserves what a WHIP publisher (sent to every member here) or
// WHEP viewer (audio and video) adds, until release.
func (m *Manager) admitHTTP(kind whip.Kind, room string) (release func(), err error) {
	extra := whipTracks
	if kind == whip.WHIP {
		if r := m.Room(room); r != nil {
			extra *= r.size()
		}
	}
	release, ok := m.mon.Reserve(extra)
	if ok {
		return release, nil
	}
	metricRefused.WithLabelValues(string(kind), "busy").Inc()
	m.log.Info(string(kind)+" session refused: server busy", "room", room)
	return nil, fmt.Errorf("%w: %w", whip.ErrUnavailable, m.busy())
}

// roomTracks counts the tracks published in the named room (0 when it is
// not open here).
func (m *Manager) roomTracks(name string) int {
	r := m.Room(name)
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.tracks)
}

// shed applies a new load level to the media plane: pressure caps video
// at the medium layer and pauses video shown in hidden tabs, high (and
// over) caps it at the low layer; normal lifts it all.
func (m *Manager) shed(from, to load.Level) {
	before, after := shedFor(from), shedFor(to)
	m.engine.SetShed(after)
	for _, step := range shedSteps(before, after) {
		metricShedSteps.WithLabelValues(step).Inc()
	}
	m.log.Warn("load shedding", "level", to.String(), "maxLayer", signal.LayerName(after.MaxLayer),
		"pauseBackground", after.PauseBackground)
}

// shedFor is what a level holds back.
func shedFor(l load.Level) sfu.Shed {
	switch {
	case l >= load.High:
		return sfu.Shed{MaxLayer: 0, PauseBackground: true}
	case l == load.Pressure:
		return sfu.Shed{MaxLayer: 1, PauseBackground: true}
	}
	return sfu.NoShed
}

// shedSteps names the steps between two sheds, for the metrics.
func shedSteps(a, b sfu.Shed) []string {
	var steps []string
	for l := a.MaxLayer - 1; l >= b.MaxLayer; l-- {
		steps = append(steps, [...]string{"cap_low", "cap_medium"}[l])
	}
	if b.MaxLayer > a.MaxLayer {
		steps = append(steps, "restore_layers")
	}
	switch {
	case b.PauseBackground && !a.PauseBackground:
		steps = append(steps, "pause_background")
	case a.PauseBackground && !b.PauseBackground:
		steps = append(steps, "resume_background")
	}
	return steps
}

// ServeReady answers /readyz: 503 while shutting down or over the load
// limits (load balancers then send new users elsewhere), else 200.
func (m *Manager) ServeReady(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	switch {
	case !m.Ready():
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "shutting down\n")
	case m.Busy():
		w.Header().Set("Retry-After", strconv.Itoa(m.busy().seconds()))
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "busy: over its load limits\n")
	default:
		_, _ = io.WriteString(w, "ready\n")
	}
}
