package load

import (
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a Monitor.
type Config struct {
	// Limits to judge against; the zero value judges nothing (the node is
	// never over), see Defaults.
	Limits Limits
	// Every is the sampling interval (default 500 ms); CPU and rates are
	// averaged over Window (default 2 s).
	Every, Window time.Duration
	// Hold is the least time a level lasts before the node is judged
	// less loaded (default 5 s), see Judge.
	Hold time.Duration
	// RetryAfter is the wait refused clients are told to take (default
	// 10 s).
	RetryAfter time.Duration
	// Streams counts the streams forwarded now (required).
	Streams func() int
	// Out returns the packets and bytes forwarded since the process
	// started; nil: rates are not measured.
	Out func() (packets, bytes uint64)
	// CPU, when set, is read instead of the process's CPU time: the
	// share of the machine's CPUs in use, 0..1 (a node that knows better,
	// and tests that need a loaded node).
	CPU func() float64
	// OnLevel is called when the level changes, from the sampling
	// goroutine, in order.
	OnLevel func(from, to Level, r Reading)
	Logger  *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Every <= 0 {
		c.Every = 500 * time.Millisecond
	}
	if c.Window < c.Every {
		c.Window = max(4*c.Every, 2*time.Second)
	}
	if c.Hold <= 0 {
		c.Hold = 5 * time.Second
	}
	if c.RetryAfter <= 0 {
		c.RetryAfter = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// sample is one point of the counters averaged over the window.
type sample struct {
	at             time.Time
	cpu            time.Duration
	packets, bytes uint64
}

// Monitor samples a node's load every Config.Every, keeps its level and
// admits new work against its limits. Stop ends its goroutine.
type Monitor struct {
	cfg   Config
	cores float64

	mu       sync.Mutex
	judge    Judge
	reading  Reading
	reserved int      // streams admitted but not forwarded yet
	window   []sample // oldest first, spanning about cfg.Window

	started  atomic.Bool
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// New makes a Monitor that has sampled nothing yet (the node reads as
// idle): Start starts it.
func New(cfg Config) *Monitor {
	cfg.setDefaults()
	return &Monitor{cfg: cfg, cores: float64(runtime.GOMAXPROCS(0)), judge: Judge{Hold: cfg.Hold},
		stop: make(chan struct{}), done: make(chan struct{})}
}

// Start takes a first sample and samples from then on until Stop.
func (m *Monitor) Start() {
	if m.started.Swap(true) {
		return
	}
	m.Sample()
	go m.run()
}

// Start makes a Monitor and starts it.
func Start(cfg Config) *Monitor {
	m := New(cfg)
	m.Start()
	return m
}

func (m *Monitor) run() {
	defer close(m.done)
	t := time.NewTicker(m.cfg.Every)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.Sample()
		}
	}
}

// Stop ends the sampling and waits for it; a Monitor never started just
// stops. Later calls do nothing.
func (m *Monitor) Stop() {
	m.stopOnce.Do(func() {
		close(m.stop)
		if m.started.Load() {
			<-m.done
		}
	})
}

// Sample measures the node now, judges it and reports a level change.
func (m *Monitor) Sample() {
	now := time.Now()
	s := sample{at: now, cpu: processCPU()}
	if m.cfg.Out != nil {
		s.packets, s.bytes = m.cfg.Out()
	}
	streams := m.cfg.Streams()
	m.mu.Lock()
	m.window = append(m.window, s)
	for len(m.window) > 2 && now.Sub(m.window[1].at) >= m.cfg.Window {
		m.window = m.window[1:]
	}
	r := Reading{Streams: streams}
	if first := m.window[0]; len(m.window) > 1 {
		secs := now.Sub(first.at).Seconds()
		r.CPU = min((s.cpu-first.cpu).Seconds()/secs/m.cores, 1)
		r.PacketsOut = float64(s.packets-first.packets) / secs
		r.BitrateOut = float64(s.bytes-first.bytes) * 8 / secs
	}
	if m.cfg.CPU != nil {
		r.CPU = m.cfg.CPU()
	}
	m.reading = r
	ratio := m.cfg.Limits.Ratio(r)
	from := m.judge.Level()
	to, changed := m.judge.Update(ratio, now)
	m.mu.Unlock()
	observe(r, ratio, to, m.cfg.Limits)
	if !changed {
		return
	}
	levelChanges.WithLabelValues(to.String()).Inc()
	m.cfg.Logger.Info("load level changed", "from", from.String(), "to", to.String(), "ratio", round2(ratio),
		"cpu", round2(r.CPU), "streams", r.Streams, "bitrateOut", int64(r.BitrateOut))
	if m.cfg.OnLevel != nil {
		m.cfg.OnLevel(from, to, r)
	}
}

func round2(x float64) float64 { return float64(int64(x*100+0.5)) / 100 }

// Level is the node's level at the latest sample.
func (m *Monitor) Level() Level {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.judge.Level()
}

// Reading is the latest sample.
func (m *Monitor) Reading() Reading {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reading
}

// Limits are the limits the node is judged against.
func (m *Monitor) Limits() Limits { return m.cfg.Limits }

// RetryAfter is the wait refused clients are told to take.
func (m *Monitor) RetryAfter() time.Duration { return m.cfg.RetryAfter }

// Admits reports whether extra streams would be admitted now (Reserve
// without keeping the place: for work whose streams come later).
func (m *Monitor) Admits(extra int) bool {
	release, ok := m.Reserve(extra)
	if ok {
		release()
	}
	return ok
}

// Reserve admits extra streams (see Limits.Admits), judged on the streams
// forwarded now plus those admitted and not yet forwarded, so that joins
// arriving together cannot all take the last place. An admitted caller
// calls release once its streams exist (or it gave up).
func (m *Monitor) Reserve(extra int) (release func(), ok bool) {
	live := m.cfg.Streams()
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.reading
	r.Streams = live + m.reserved
	if !m.cfg.Limits.Admits(r, m.judge.Level(), extra) {
		return nil, false
	}
	extra = max(extra, 0)
	m.reserved += extra
	var once sync.Once
	return func() {
		once.Do(func() {
			m.mu.Lock()
			m.reserved -= extra
			m.mu.Unlock()
		})
	}, true
}
