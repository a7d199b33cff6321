package cluster

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
)

// Kinds on the heartbeat subjects.
const (
	kindHeartbeat = "hb"
	kindBye       = "bye"
)

// heartbeat is the data of "hb" and "bye" envelopes.
type heartbeat struct {
	ID      string    `json:"id"`
	URL     string    `json:"url"`
	Started time.Time `json:"started"`
	Load    Load      `json:"load"`
}

func (n *Node) heartbeatData() heartbeat {
	hb := heartbeat{ID: n.cfg.NodeID, URL: n.cfg.AdvertiseURL, Started: n.started}
	if n.cfg.Load != nil {
		hb.Load = n.cfg.Load()
	}
	return hb
}

// heartbeatLoop announces this node every Heartbeat and sweeps the table
// often enough that a silent node is dropped within DeadAfter plus a
// fraction of it.
func (n *Node) heartbeatLoop() {
	defer n.loops.Done()
	beat := time.NewTicker(n.cfg.Heartbeat)
	defer beat.Stop()
	sweep := time.NewTicker(n.cfg.DeadAfter / 8)
	defer sweep.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-beat.C:
			if err := n.publish(n.subj.heartbeat(), "", kindHeartbeat, n.heartbeatData()); err != nil &&
				!errors.Is(err, ErrNotConnected) {
				n.log.Warn("cluster: heartbeat", "err", err)
			}
		case <-sweep.C:
			n.sweep(time.Now())
		case <-n.reannounce:
			n.hello()
		}
	}
}

// hello is a heartbeat that asks every node to answer at once with its
// own heartbeat on this node's hello subject.
func (n *Node) hello() {
	body, err := encodeEnvelope(n.cfg.NodeID, "", kindHeartbeat, n.seq.Add(1), n.heartbeatData())
	if err == nil {
		err = n.nc.PublishMsg(&nats.Msg{Subject: n.subj.heartbeat(), Reply: n.subj.hello(n.cfg.NodeID), Data: body})
	}
	if err != nil {
		n.log.Warn("cluster: hello", "err", natsError(err))
		return
	}
	n.metrics.out.WithLabelValues(kindHeartbeat).Inc()
}

// sweep drops silent nodes. While this node is cut off from NATS it
// hears no one, so the silence is its own (reason "disconnected"), and
// after DeadAfter cut off it drops everyone: after a partition the others
// come back through their heartbeats, and nobody is kept as a ghost.
func (n *Node) sweep(now time.Time) {
	cutoff := now.Add(-n.cfg.DeadAfter)
	at := n.disconnectedAt.Load()
	if at == 0 {
		n.table.expire(now, cutoff, DownSilent)
		return
	}
	if time.Unix(0, at).Before(cutoff) {
		cutoff = now
	}
	if dropped := n.table.expire(now, cutoff, DownDisconnected); dropped > 0 {
		n.log.Warn("cluster: cut off from NATS; nodes not heard from for DeadAfter are considered down",
			"dead_after", n.cfg.DeadAfter, "nodes", dropped, "remaining", n.table.count())
	}
}

// onHeartbeat handles heartbeats, hello answers and byes.
func (n *Node) onHeartbeat(msg *nats.Msg) {
	if isNoResponders(msg) {
		return // a hello that nobody heard (this node is alone so far)
	}
	env, ok := n.accept(msg.Subject, msg.Data, false)
	if !ok {
		return
	}
	var hb heartbeat
	if err := json.Unmarshal(env.Data, &hb); err != nil || hb.ID != env.Node || hb.Started.IsZero() {
		n.drop(DropParse, msg.Subject, "bad heartbeat data")
		return
	}
	switch env.Kind {
	case kindHeartbeat:
		n.metrics.in.WithLabelValues(kindHeartbeat).Inc()
		n.table.seen(NodeInfo{ID: hb.ID, URL: hb.URL, Started: hb.Started, Load: hb.Load, LastSeen: time.Now()})
		if msg.Reply != "" {
			n.answerHello(msg.Reply)
		}
	case kindBye:
		if !n.table.remove(hb.ID, hb.Started, n.cfg.DeadAfter) {
			n.drop(DropUnknownNode, msg.Subject, "bye from "+hb.ID)
			return
		}
		n.metrics.in.WithLabelValues(kindBye).Inc()
	default:
		n.drop(DropParse, msg.Subject, "kind "+env.Kind)
	}
}

func (n *Node) answerHello(reply string) {
	if err := n.publish(reply, "", kindHeartbeat, n.heartbeatData()); err != nil {
		n.log.Debug("cluster: answer hello", "err", err)
	}
}

// accept decodes an envelope and drops (counting why) what is malformed,
// of another version, or an echo of this node; with needKnown it also
// drops senders missing from the live-node table.
func (n *Node) accept(subject string, b []byte, needKnown bool) (Envelope, bool) {
	env, err := decodeEnvelope(b)
	if err != nil {
		n.drop(dropReason(err), subject, err)
		return Envelope{}, false
	}
	if env.Node == n.cfg.NodeID {
		n.drop(DropEcho, subject, env.Kind)
		return Envelope{}, false
	}
	if needKnown && !n.table.known(env.Node) {
		n.drop(DropUnknownNode, subject, env.Node)
		return Envelope{}, false
	}
	return env, true
}

// echoWarnEvery limits the warning about a duplicated NodeID.
const echoWarnEvery = time.Minute

// drop counts a dropped message; what is dropped is logged at debug
// level only, since anyone allowed on the subjects could flood the logs.
func (n *Node) drop(reason, subject string, detail any) {
	n.metrics.drop(reason)
	n.log.Debug("cluster: message dropped", "reason", reason, "subject", subject, "detail", detail)
	if reason != DropEcho {
		return
	}
	// NoEcho keeps this node's own messages away, so an echo is another
	// process configured with the same NodeID: worth a warning.
	now := time.Now().UnixNano()
	last := n.echoWarned.Load()
	if now-last > int64(echoWarnEvery) && n.echoWarned.CompareAndSwap(last, now) {
		n.log.Warn("cluster: a message carries this node's own ID: is NodeID configured twice?", "subject", subject)
	}
}

// isNoResponders tells the server's "no responders" status (sent to a
// reply subject when nobody subscribes to the subject published to) from
// a message.
func isNoResponders(msg *nats.Msg) bool {
	return len(msg.Data) == 0 && msg.Header.Get("Status") == "503"
}
