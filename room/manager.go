// Package room is the conference: rooms by name, their participants, the
// tracks they publish and who receives them, moderation, lectures, and the
// binding of each participant's signaling connection to its media
// connection. Room events reach only that room's members. It reaches the
// media plane through the small interfaces of media.go (package sfu
// implements them); access tokens (room/access), TURN (room/turn),
// per-address budgets (room/addrlimit) and the HTTP side of WHIP and WHEP
// (room/whip) are packages of their own, which cmd/confab wires. With
// Config.Cluster the server is one node of a cluster and a room spans the
// nodes its members connect to (cluster_*.go, over room/cluster).
package room

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/confab-sfu/confab/room/addrlimit"
	"github.com/confab-sfu/confab/room/cluster"
	"github.com/confab-sfu/confab/room/turn"
	"github.com/confab-sfu/confab/sfu"
	"github.com/confab-sfu/confab/signal"
	"github.com/prometheus/client_golang/prometheus"
	"nhooyr.io/websocket"
)

// Config holds the conference limits and the media plane settings.
type Config struct {
	// SFU configures the media plane when Engine is nil.
	SFU sfu.Config
	// Engine is a media plane to share; NewManager creates one from SFU when nil.
	Engine *sfu.Engine
	// MaxParticipants per room (default 100).
	MaxParticipants int
	// MaxRooms on this server (default 1000).
	MaxRooms int
	// MaxTracksPerParticipant limits what one participant publishes (default 8).
	MaxTracksPerParticipant int
	// ICE are the STUN servers and TURN credentials handed to clients in
	// welcome.
	ICE turn.ICE
	// Conn configures each signaling WebSocket.
	Conn signal.ConnOptions
	// JoinTimeout closes sockets that do not join in time (default 10 s).
	JoinTimeout time.Duration
	// Addrs limits the signaling connections one client address holds (nil:
	// no limit). WHIP and WHEP sessions count against the same Limiter.
	Addrs *addrlimit.Limiter
	// LayersInterval is the least time between two layer reports to one
	// participant (default 500 ms).
	LayersInterval time.Duration
	// AuthSecret, when set, makes every join present an access token signed
	// with it (HS256, see access.Mint). Without it rooms are open.
	AuthSecret []byte
	// Cluster, when set, makes this server one node of a cluster over
	// NATS (room/cluster): a room spans every node its members connect
	// to, and media crosses between nodes on relay links. NewManager
	// joins the cluster (its OnNodeDown is wrapped, its Load filled in
	// when nil). nil: a single server, and nothing of the cluster runs.
	Cluster *cluster.Config
	Logger  *slog.Logger
}

func (c *Config) setDefaults() {
	if c.MaxParticipants <= 0 {
		c.MaxParticipants = 100
	}
	if c.MaxRooms <= 0 {
		c.MaxRooms = 1000
	}
	if c.MaxTracksPerParticipant <= 0 {
		c.MaxTracksPerParticipant = 8
	}
	if c.JoinTimeout <= 0 {
		c.JoinTimeout = 10 * time.Second
	}
	if c.LayersInterval <= 0 {
		c.LayersInterval = 500 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Conn.Logger == nil {
		c.Conn.Logger = c.Logger
	}
}

// Errors of joining.
var (
	ErrRoomFull     = errors.New("room is full")
	ErrTooManyRooms = errors.New("too many rooms")
	ErrShutdown     = errors.New("server is shutting down")
	ErrRemoved      = errors.New("a moderator removed you from this room")
	// ErrPublishRevoked refuses a WHIP publisher whose identity a
	// moderator moved to a role that may not publish.
	ErrPublishRevoked = errors.New("a moderator took your permission to publish in this room")
)

// Manager owns the rooms of one server.
type Manager struct {
	cfg     Config
	engine  *sfu.Engine
	ownsEng bool
	log     *slog.Logger
	cl      *clusterNode // nil on a single server

	mu       sync.Mutex
	rooms    map[string]*Room
	closing  bool
	sessions sync.WaitGroup
	conns    map[*session]struct{}

	httpMu       sync.Mutex
	httpSessions map[*httpSession]struct{} // WHIP publishers and WHEP viewers

	checks checkLimits // connection checks (check.go)
}

var (
	metricRooms = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "confab_rooms", Help: "Rooms with at least one participant."})
	metricParticipants = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "confab_participants", Help: "Joined participants."})
	metricJoins = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "confab_joins_total", Help: "Join attempts by outcome."}, []string{"result"})
	metricSignalErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "confab_signal_errors_total", Help: "Signaling errors sent to clients, by code."}, []string{"code"})
)

func init() {
	prometheus.MustRegister(metricRooms, metricParticipants, metricJoins, metricSignalErrors)
}

// NewManager creates a Manager and, unless cfg.Engine is set, its media plane.
func NewManager(cfg Config) (*Manager, error) {
	cfg.setDefaults()
	m := &Manager{cfg: cfg, engine: cfg.Engine, log: cfg.Logger, rooms: map[string]*Room{}, conns: map[*session]struct{}{},
		httpSessions: map[*httpSession]struct{}{}}
	if m.engine == nil {
		if cfg.SFU.Logger == nil {
			cfg.SFU.Logger = cfg.Logger
		}
		e, err := sfu.NewEngine(cfg.SFU)
		if err != nil {
			return nil, fmt.Errorf("start media plane: %w", err)
		}
		m.engine = e
		m.ownsEng = true
	}
	if cfg.Cluster != nil {
		cl, err := startCluster(m, *cfg.Cluster)
		if err != nil {
			if m.ownsEng {
				_ = m.engine.Close()
			}
			return nil, err
		}
		m.cl = cl
	}
	return m, nil
}

// ServeWS upgrades a request to a signaling WebSocket and serves one
// participant on it until it leaves or the connection ends.
func (m *Manager) ServeWS(w http.ResponseWriter, r *http.Request) {
	addr := addrlimit.OfRequest(r)
	m.mu.Lock()
	if m.closing {
		m.mu.Unlock()
		http.Error(w, "server is shutting down", http.StatusServiceUnavailable)
		return
	}
	if !m.cfg.Addrs.Reserve(addr) {
		m.mu.Unlock()
		http.Error(w, "too many connections from your address", http.StatusTooManyRequests)
		return
	}
	m.sessions.Add(1)
	m.mu.Unlock()
	defer func() {
		m.cfg.Addrs.Release(addr)
		m.sessions.Done()
	}()
	// The server's read and write timeouts bound HTTP requests, not this
	// socket: net/http clears the connection's deadlines when the upgrade
	// hijacks it, and the socket's pings take over.
	conn, err := signal.Accept(w, r, m.cfg.Conn)
	if err != nil {
		m.log.Debug("websocket upgrade", "remote", r.RemoteAddr, "err", err)
		return
	}
	s := newSession(m, conn)
	m.mu.Lock()
	m.conns[s] = struct{}{}
	m.mu.Unlock()
	s.serve(r.Context())
	m.mu.Lock()
	delete(m.conns, s)
	m.mu.Unlock()
}

// Ready reports whether the server accepts new participants.
func (m *Manager) Ready() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return !m.closing
}

// join puts p into the named room, creating it if needed.
func (m *Manager) join(name string, p *participant) (*Room, error) {
	return m.enter(name, p.wantsLecture, true, func(r *Room) error { return r.add(p) })
}

// enter admits someone into the named room: admit runs once the room is
// ready (in a cluster: once the other nodes' parts of it are known). A
// room that does not exist is created when create is set (lecture says
// its kind, unless other nodes already have it), else ErrNoRoom.
func (m *Manager) enter(name string, lecture, create bool, admit func(*Room) error) (*Room, error) {
	m.mu.Lock()
	if m.closing {
		m.mu.Unlock()
		return nil, ErrShutdown
	}
	r, ok := m.rooms[name]
	if !ok {
		switch {
		case !create && m.cl == nil:
			m.mu.Unlock()
			return nil, errNoRoom
		case len(m.rooms) >= m.cfg.MaxRooms:
			m.mu.Unlock()
			return nil, ErrTooManyRooms
		}
		r = newRoom(m, name)
		r.lecture = lecture
		m.rooms[name] = r
		metricRooms.Inc()
	}
	// The room is reserved under the manager lock so that it cannot be
	// removed as empty until the entry is done.
	r.joining++
	m.mu.Unlock()
	r.awaitReady()
	err := admit(r)
	m.mu.Lock()
	r.joining--
	m.mu.Unlock()
	if err != nil {
		m.removeIfEmpty(r)
		return nil, err
	}
	return r, nil
}

// errNoRoom: a viewer asked for a room that does not exist.
var errNoRoom = errors.New("no such room")

// removeIfEmpty drops a room whose last participant left.
func (m *Manager) removeIfEmpty(r *Room) {
	m.mu.Lock()
	closed := false
	if m.rooms[r.name] == r && r.joining == 0 && r.empty() {
		delete(m.rooms, r.name)
		metricRooms.Dec()
		if r.cl != nil {
			r.cl.finalVersion = m.cl.nextVersion()
		}
		closed = true
	}
	m.mu.Unlock()
	if closed {
		// Outside the manager's lock: in a cluster, closing says so to
		// the other nodes and waits for the room's cluster loop.
		r.close()
		r.log.Info("room closed")
		// Its audience has nothing left to watch.
		for _, w := range r.takeWatchers() {
			w.End("the room closed")
		}
	}
}

// Room returns the named room, or nil.
func (m *Manager) Room(name string) *Room {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rooms[name]
}

// Counts returns the number of rooms and participants.
func (m *Manager) Counts() (rooms, participants int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.rooms {
		participants += r.size()
	}
	return len(m.rooms), participants
}

// newPeer creates a media connection on the engine.
func (m *Manager) newPeer(pp sfu.PeerParams) (Peer, error) {
	p, err := m.engine.NewPeer(pp)
	if err != nil {
		return nil, fmt.Errorf("create %s's media connection: %w", pp.ID, err)
	}
	return p, nil
}

// Engine is the media plane the rooms use.
func (m *Manager) Engine() *sfu.Engine { return m.engine }

// Close tells every participant the server is going away, waits (bounded
// by ctx) for their sessions to end, and releases the media plane.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	m.closing = true
	sessions := make([]*session, 0, len(m.conns))
	for s := range m.conns {
		sessions = append(sessions, s)
	}
	m.mu.Unlock()
	for _, s := range sessions {
		s.shutdown()
	}
	m.closeHTTPSessions()
	done := make(chan struct{})
	go func() {
		m.sessions.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("drain sessions: %w", ctx.Err())
	}
	m.mu.Lock()
	var left []*Room
	for name, r := range m.rooms {
		// Sessions that outlived the drain deadline, and rooms of viewers
		// only: stop them anyway.
		delete(m.rooms, name)
		metricRooms.Dec()
		if r.cl != nil {
			r.cl.finalVersion = m.cl.nextVersion()
		}
		left = append(left, r)
	}
	m.mu.Unlock()
	for _, r := range left {
		r.close()
	}
	if m.cl != nil {
		if cerr := m.cl.close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("leave the cluster: %w", cerr))
		}
	}
	if m.ownsEng {
		if cerr := m.engine.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close the media plane: %w", cerr))
		}
	}
	return err
}

// closeCodeShutdown is sent to participants when the server stops.
const closeCodeShutdown = websocket.StatusGoingAway
