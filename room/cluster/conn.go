package cluster

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Reconnect backoff: from minBackoff doubling to maxBackoff, with jitter.
// maxBackoff stays well under DeadAfter so that a healed partition is
// noticed within about one heartbeat.
const (
	minBackoff     = 100 * time.Millisecond
	maxBackoff     = 2 * time.Second
	connectTimeout = 2 * time.Second
)

func backoff(attempt int) time.Duration {
	d := minBackoff << min(attempt, 5)
	d = min(d, maxBackoff)
	return d + rand.N(d/4+1)
}

// connect dials NATS, retrying failed dials until ctx ends. Errors a
// retry cannot cure (credentials refused, TLS, a missing creds file)
// return at once. After that, nats.go reconnects forever on its own.
func (n *Node) connect(ctx context.Context, urls []string) (*nats.Conn, error) {
	opts := n.natsOptions()
	server := strings.Join(urls, ",")
	for attempt := 0; ; attempt++ {
		nc, err := nats.Connect(server, opts...)
		if err == nil {
			return nc, nil
		}
		if !errors.Is(err, nats.ErrNoServers) {
			return nil, fmt.Errorf("cluster: connect to NATS %s: %w", redactURLs(urls), err)
		}
		n.log.Warn("cluster: NATS not reachable, retrying", "urls", redactURLs(urls), "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("cluster: connect to NATS %s: %w (last error: %w)", redactURLs(urls), ctx.Err(), err)
		case <-time.After(backoff(attempt)):
		}
	}
}

func (n *Node) natsOptions() []nats.Option {
	c := n.cfg
	opts := []nats.Option{
		nats.Name("confab " + c.NodeID),
		// This node never needs its own messages back.
		nats.NoEcho(),
		nats.Timeout(connectTimeout),
		nats.MaxReconnects(-1),
		nats.CustomReconnectDelay(backoff),
		// Keep retrying even if the credentials are refused for a while
		// (rotated on the server first); an operator sees it in the logs.
		nats.IgnoreAuthErrorAbort(),
		// Nothing is queued while disconnected: stale room events are
		// worse than lost ones, because state is re-announced anyway.
		nats.ReconnectBufSize(-1),
		// Notice a dead TCP connection within about DeadAfter.
		nats.PingInterval(max(c.DeadAfter/2, time.Second)),
		nats.MaxPingsOutstanding(2),
		nats.DisconnectErrHandler(n.onDisconnect),
		nats.ReconnectHandler(n.onReconnect),
		nats.ClosedHandler(func(*nats.Conn) { close(n.connClosed) }),
		nats.ErrorHandler(n.onAsyncError),
	}
	if c.Embed != nil {
		// The node lives and dies with its own embedded server: it must
		// not slip into another node's server when its own is gone.
		opts = append(opts, nats.IgnoreDiscoveredServers())
	}
	if c.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	}
	if c.User != "" || c.Password != "" {
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	}
	if c.Token != "" {
		opts = append(opts, nats.Token(c.Token))
	}
	if c.TLSCA != "" {
		opts = append(opts, nats.RootCAs(c.TLSCA))
	}
	if c.TLSCert != "" {
		opts = append(opts, nats.ClientCert(c.TLSCert, c.TLSKey))
	}
	return opts
}

func (n *Node) onDisconnect(_ *nats.Conn, err error) {
	if n.isClosed() {
		return
	}
	n.disconnectedAt.CompareAndSwap(0, time.Now().UnixNano())
	n.metrics.connected.Set(0)
	n.log.Warn("cluster: NATS connection lost, reconnecting", "err", err)
}

func (n *Node) onReconnect(nc *nats.Conn) {
	at := n.disconnectedAt.Swap(0)
	n.metrics.connected.Set(1)
	n.metrics.reconnects.Inc()
	down := time.Duration(0)
	if at != 0 {
		down = time.Since(time.Unix(0, at)).Round(time.Millisecond)
	}
	n.log.Info("cluster: NATS connection back", "url", nc.ConnectedUrlRedacted(), "down_for", down)
	// Announce at once: after a long cut the others have dropped this
	// node, and this node has dropped them; a hello mends both sides.
	select {
	case n.reannounce <- struct{}{}:
	default:
	}
}

func (n *Node) onAsyncError(_ *nats.Conn, sub *nats.Subscription, err error) {
	if errors.Is(err, nats.ErrSlowConsumer) && sub != nil {
		total, _ := sub.Dropped()
		prev, _ := n.dropSeen.Swap(sub, total)
		p, _ := prev.(int)
		if total > p {
			n.metrics.dropped.WithLabelValues(DropSlowConsumer).Add(float64(total - p))
		}
		n.log.Warn("cluster: messages dropped: a handler is too slow", "subject", sub.Subject, "dropped", total)
		return
	}
	n.log.Warn("cluster: NATS error", "err", err)
}

// redactURLs hides passwords and tokens embedded in URLs for logs.
func redactURLs(urls []string) string {
	out := make([]string, len(urls))
	for i, u := range urls {
		if at := strings.LastIndex(u, "@"); at >= 0 {
			scheme := ""
			if i := strings.Index(u, "://"); i >= 0 && i < at {
				scheme = u[:i+3]
			}
			u = scheme + "***@" + u[at+1:]
		}
		out[i] = u
	}
	return strings.Join(out, ",")
}
