package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
)

// helloWindow is how long Start waits for the other nodes to answer its
// hello, so that the table is filled when Start returns. Answers come
// within a round trip; a node that misses it appears with its next
// heartbeat.
const helloWindow = 250 * time.Millisecond

// maxInflight bounds the request handlers running at once; more are
// refused with CodeBusy rather than queued without limit.
const maxInflight = 256

// Node is this process's member of the cluster.
type Node struct {
	cfg     Config
	log     *slog.Logger
	subj    subjects
	started time.Time
	emb     *embedded
	nc      *nats.Conn
	table   *table
	metrics *metrics
	seq     atomic.Uint64

	ctx    context.Context // canceled by Close: stops loops and handlers
	cancel context.CancelFunc
	loops  sync.WaitGroup // heartbeat loop and event delivery
	served sync.WaitGroup // request handlers

	// disconnectedAt is when the NATS connection was lost (UnixNano), 0
	// while connected.
	disconnectedAt atomic.Int64
	reannounce     chan struct{}
	connClosed     chan struct{}
	dropSeen       sync.Map // *nats.Subscription -> int: slow-consumer drops counted
	echoWarned     atomic.Int64

	mu       sync.Mutex
	closed   bool
	control  []*nats.Subscription
	rooms    map[*roomSub]struct{}
	handlers map[string]HandlerFunc
	inflight int
}

// Start joins the cluster: it starts the embedded server if configured,
// connects to NATS (retrying until ctx ends; wrong credentials fail at
// once), announces this node and collects the others' answers. ctx bounds
// the start only; the node runs until Close.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	n := &Node{
		cfg:        cfg,
		log:        cfg.Logger.With("node", cfg.NodeID),
		subj:       subjects{prefix: cfg.Subject},
		started:    time.Now(),
		table:      newTable(),
		reannounce: make(chan struct{}, 1),
		connClosed: make(chan struct{}),
		rooms:      map[*roomSub]struct{}{},
		handlers:   map[string]HandlerFunc{},
	}
	n.metrics = newMetrics(n)
	urls := cfg.URLs
	if cfg.Embed != nil {
		if n.emb, err = startEmbedded(ctx, cfg); err != nil {
			return nil, err
		}
		urls = []string{n.emb.clientURL}
	}
	if n.nc, err = n.connect(ctx, urls); err != nil {
		n.stopEmbedded()
		return nil, err
	}
	n.metrics.connected.Set(1)
	// Requests may come in as soon as the subscriptions exist (from nodes
	// that knew this ID before a restart), so their context comes first.
	n.ctx, n.cancel = context.WithCancel(context.Background())
	if err := n.subscribeControl(); err != nil {
		n.cancel()
		n.served.Wait()
		n.nc.Close()
		n.stopEmbedded()
		return nil, err
	}
	n.loops.Add(2)
	go func() {
		defer n.loops.Done()
		n.table.run(n.ctx.Done(), n.nodeUp, n.nodeDown)
	}()
	n.hello()
	select {
	case <-time.After(min(helloWindow, cfg.Heartbeat)):
	case <-ctx.Done():
	}
	go n.heartbeatLoop()
	n.log.Info("cluster: node started", "nats", n.nc.ConnectedUrlRedacted(), "nodes", n.table.count()+1)
	return n, nil
}

func (n *Node) subscribeControl() error {
	subs := []struct {
		subject string
		handle  nats.MsgHandler
	}{
		{n.subj.heartbeat(), n.onHeartbeat},
		{n.subj.hello(n.cfg.NodeID), n.onHeartbeat},
		{n.subj.request(n.cfg.NodeID), n.onRequest},
	}
	for _, s := range subs {
		sub, err := n.nc.Subscribe(s.subject, s.handle)
		if err != nil {
			return fmt.Errorf("cluster: subscribe %s: %w", s.subject, err)
		}
		n.control = append(n.control, sub)
	}
	// The server must know the subscriptions before anyone is told this
	// node exists, or the first requests to it find no responder.
	if err := n.nc.FlushTimeout(n.cfg.RequestTimeout); err != nil {
		return fmt.Errorf("cluster: flush subscriptions: %w", err)
	}
	return nil
}

// ID is this node's NodeID.
func (n *Node) ID() string { return n.cfg.NodeID }

// Nodes lists the other live nodes, sorted by ID.
func (n *Node) Nodes() []NodeInfo { return n.table.list() }

// Node returns what is known of a live node.
func (n *Node) Node(id string) (NodeInfo, bool) { return n.table.get(id) }

// Connected reports whether the NATS connection is up right now.
func (n *Node) Connected() bool { return n.nc.IsConnected() }

// ClientURL is the embedded server's client URL ("" with external NATS).
func (n *Node) ClientURL() string {
	if n.emb == nil {
		return ""
	}
	return n.emb.clientURL
}

// RouteURL is the embedded server's route URL, what other nodes list in
// EmbedConfig.Routes ("" with external NATS or without ClusterListen).
func (n *Node) RouteURL() string {
	if n.emb == nil {
		return ""
	}
	return n.emb.routeURL
}

// Collector exposes this node's metrics for a prometheus.Registerer.
func (n *Node) Collector() prometheus.Collector { return n.metrics }

// Close leaves the cluster: it says bye (so the others drop this node at
// once), stops every goroutine, waits for running request handlers
// (their context is canceled), closes the connection and shuts the
// embedded server down. It is safe to call more than once.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	control := n.control
	rooms := n.rooms
	n.rooms = map[*roomSub]struct{}{}
	n.mu.Unlock()

	n.cancel()
	n.loops.Wait()
	for _, s := range control {
		_ = s.Unsubscribe()
	}
	for rs := range rooms {
		rs.stop()
	}
	// Running handlers end (their context is canceled) and reply; the
	// bye's flush then makes sure the server has taken those replies
	// before the connection, and an embedded server, go away. The
	// heartbeat loop has stopped, so no heartbeat can follow the bye.
	n.served.Wait()
	err := n.sayBye()
	n.nc.Close()
	select {
	case <-n.connClosed:
	case <-time.After(n.cfg.RequestTimeout):
	}
	n.stopEmbedded()
	n.log.Info("cluster: node closed")
	return err
}

func (n *Node) sayBye() error {
	if !n.nc.IsConnected() {
		return nil // nobody to tell; the others time this node out
	}
	if err := n.publish(n.subj.heartbeat(), "", kindBye, n.heartbeatData()); err != nil {
		return fmt.Errorf("cluster: bye: %w", err)
	}
	if err := n.nc.FlushTimeout(time.Second); err != nil {
		return fmt.Errorf("cluster: bye: %w", err)
	}
	return nil
}

func (n *Node) stopEmbedded() {
	if n.emb != nil {
		n.emb.shutdown()
	}
}

func (n *Node) isClosed() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.closed
}

// publish sends one envelope. reply is the NATS reply subject, or "".
func (n *Node) publish(subject, room, kind string, data any) error {
	body, err := encodeEnvelope(n.cfg.NodeID, room, kind, n.seq.Add(1), data)
	if err != nil {
		return err
	}
	if !n.nc.IsConnected() {
		return ErrNotConnected
	}
	if err := n.nc.Publish(subject, body); err != nil {
		return natsError(err)
	}
	n.metrics.out.WithLabelValues(kind).Inc()
	return nil
}

// natsError maps nats.go's errors onto this package's.
func natsError(err error) error {
	switch {
	case errors.Is(err, nats.ErrConnectionClosed):
		return ErrClosed
	case errors.Is(err, nats.ErrReconnectBufExceeded), errors.Is(err, nats.ErrConnectionReconnecting):
		return ErrNotConnected
	case errors.Is(err, nats.ErrMaxPayload):
		return fmt.Errorf("%w: %w", ErrBadArgument, err)
	}
	return err
}

func (n *Node) nodeUp(info NodeInfo) {
	n.log.Info("cluster: node up", "peer", info.ID, "url", info.URL)
	if n.cfg.OnNodeUp != nil {
		n.cfg.OnNodeUp(info)
	}
}

func (n *Node) nodeDown(info NodeInfo, reason DownReason) {
	n.log.Warn("cluster: node down", "peer", info.ID, "reason", string(reason),
		"silent_for", time.Since(info.LastSeen).Round(time.Millisecond))
	if n.cfg.OnNodeDown != nil {
		n.cfg.OnNodeDown(info, reason)
	}
}
