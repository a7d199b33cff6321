package room

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/confab-sfu/confab/sfu"
	"github.com/confab-sfu/confab/signal"
)

// Relay links between this node and the others: at most one link per
// other node and direction (sfu.RelayOut to it, sfu.RelayIn from it),
// opened when the first track is asked for and closed when the last one
// stops. The sending node offers; the offer travels as a request to the
// receiving node, its answer as the reply.

// relayMaintainEvery is how often links are brought in line: layers that
// appeared at the origin are added, tracks nobody here claims are stopped.
const relayMaintainEvery = time.Second

// relayOfferTimeout bounds the exchange of one offer and its answer.
const relayOfferTimeout = 10 * time.Second

type relayLinks struct {
	c  *clusterNode
	mu sync.Mutex
	// out and in by the other node's id.
	out map[string]*outLink
	in  map[string]*inLink
	// closing counts links being closed in the background.
	closing sync.WaitGroup
}

// outLink sends tracks to one node.
type outLink struct {
	id    string // names the link to the other node
	node  string
	ro    *sfu.RelayOut
	wants map[sfu.TrackID]*outWant
}

// outWant is what the other node asked of one track.
type outWant struct {
	recv   *sfu.Receiver
	layers []int
}

// inLink receives tracks from one node.
type inLink struct {
	id string
	ri *sfu.RelayIn
}

func newRelayLinks(c *clusterNode) *relayLinks {
	return &relayLinks{c: c, out: map[string]*outLink{}, in: map[string]*inLink{}}
}

// serveWant relays what another node asked of one of this node's tracks.
func (l *relayLinks) serveWant(_ context.Context, from string, req wantRequest) (any, error) {
	layers, err := checkLayers(req.Layers)
	if err != nil {
		return nil, err
	}
	if len(layers) == 0 {
		l.stop(from, req.Track)
		return struct{}{}, nil
	}
	recv := l.c.m.localTrack(req.Room, req.Track)
	if recv == nil {
		return nil, codedError{signal.Errorf(signal.CodeUnknownTrack, "no track %q of room %q here", req.Track, req.Room)}
	}
	link, err := l.outTo(from)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	w := link.wants[req.Track]
	if w == nil {
		w = &outWant{recv: recv}
		link.wants[req.Track] = w
		recv.OnClose(func() { l.forget(link, req.Track, recv) })
	}
	w.layers = layers
	l.mu.Unlock()
	if err := link.ro.Send(recv, effectiveLayers(layers, recv.Layers())); err != nil {
		l.forget(link, req.Track, recv)
		return nil, fmt.Errorf("relay track %s to %s: %w", req.Track, from, err)
	}
	return struct{}{}, nil
}

// checkLayers validates asked layers and returns them sorted, once each.
func checkLayers(layers []int) ([]int, error) {
	out := slices.Clone(layers)
	for _, l := range out {
		if l < 0 || l > 2 {
			return nil, codedError{signal.Errorf(signal.CodeInvalidField, "layer %d is outside 0..2", l)}
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// effectiveLayers is what to send of asked layers: those the publisher
// sends now (a layer it does not send would be an empty section), or the
// lowest asked while none of them arrives yet.
func effectiveLayers(asked, present []int) []int {
	var out []int
	for _, l := range asked {
		if slices.Contains(present, l) {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		out = asked[:1]
	}
	return out
}

// localTrack finds a track published on this node in a room.
func (m *Manager) localTrack(room string, id sfu.TrackID) *sfu.Receiver {
	r := m.Room(room)
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.tracks[id]
	if t == nil || t.owner.node != "" {
		return nil
	}
	recv, _ := t.up.(*sfu.Receiver)
	return recv
}

// outTo returns the link to node, creating it.
func (l *relayLinks) outTo(node string) (*outLink, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if link := l.out[node]; link != nil {
		return link, nil
	}
	link := &outLink{id: sfu.NewID("L"), node: node, wants: map[sfu.TrackID]*outWant{}}
	ro, err := l.c.m.engine.NewRelayOut(sfu.RelayParams{
		Node:     node,
		Logger:   l.c.m.log,
		OnOffer:  func(o sfu.RelayOffer) { l.offer(link, o) },
		OnFailed: func(error) { l.dropOut(link) },
	})
	if err != nil {
		return nil, fmt.Errorf("relay to %s: %w", node, err)
	}
	link.ro = ro
	l.out[node] = link
	return link, nil
}

// offer hands a link's offer to its node and applies the answer; a link
// whose offer fails is closed (the node will ask again).
func (l *relayLinks) offer(link *outLink, o sfu.RelayOffer) {
	ctx, cancel := context.WithTimeout(context.Background(), relayOfferTimeout)
	defer cancel()
	var reply offerReply
	err := l.c.node.Request(ctx, link.node, reqOffer, offerRequest{Link: link.id, Offer: o}, &reply)
	if err == nil {
		err = link.ro.HandleAnswer(reply.Answer)
	}
	if err != nil && !errors.Is(err, sfu.ErrClosed) {
		l.c.m.log.Warn("cluster: relay offer failed", "node", link.node, "err", err)
		l.dropOut(link)
	}
}

// serveOffer applies a relay link's offer from another node.
func (l *relayLinks) serveOffer(ctx context.Context, from string, req offerRequest) (any, error) {
	if req.Link == "" {
		return nil, codedError{signal.Errorf(signal.CodeInvalidField, "relay offer without a link id")}
	}
	link, err := l.inFrom(from, req.Link)
	if err != nil {
		return nil, err
	}
	answer, err := link.ri.HandleOffer(ctx, req.Offer)
	if err != nil {
		return nil, fmt.Errorf("relay offer from %s: %w", from, err)
	}
	return offerReply{Answer: answer}, nil
}

// inFrom returns the link from node named id; a new id replaces (and
// closes) the node's earlier link.
func (l *relayLinks) inFrom(node, id string) (*inLink, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	old := l.in[node]
	if old != nil && old.id == id {
		return old, nil
	}
	link := &inLink{id: id}
	ri, err := l.c.m.engine.NewRelayIn(sfu.RelayParams{
		Node:     node,
		Logger:   l.c.m.log,
		OnTrack:  func(recv *sfu.Receiver) { l.c.m.relayArrived(node, recv) },
		OnFailed: func(error) { l.dropIn(node, link) },
	})
	if err != nil {
		return nil, fmt.Errorf("relay from %s: %w", node, err)
	}
	link.ri = ri
	l.in[node] = link
	if old != nil {
		l.closeLater(old.ri.Close)
	}
	return link, nil
}

// relayArrived gives a track relayed from node to the room that pulls it.
func (m *Manager) relayArrived(node string, recv *sfu.Receiver) {
	for _, r := range m.roomList() {
		if r.cl != nil && r.attachRelayed(node, recv) {
			return
		}
	}
	m.log.Debug("cluster: relayed track no room pulls", "node", node, "track", string(recv.ID()))
}

// relayedFrom returns the Receiver of a track node relays here, or nil.
func (l *relayLinks) relayedFrom(node string, id sfu.TrackID) *sfu.Receiver {
	l.mu.Lock()
	link := l.in[node]
	l.mu.Unlock()
	if link == nil {
		return nil
	}
	return link.ri.Receiver(id)
}

// stop ends the relay of a track to node; the link closes with its last.
func (l *relayLinks) stop(node string, id sfu.TrackID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	link := l.out[node]
	if link == nil {
		return
	}
	if w := link.wants[id]; w != nil {
		delete(link.wants, id)
		link.ro.Stop(w.recv)
	}
	l.closeIfIdleLocked(link)
}

// forget drops a want whose track ended or could not be sent.
func (l *relayLinks) forget(link *outLink, id sfu.TrackID, recv *sfu.Receiver) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if w := link.wants[id]; w != nil && w.recv == recv {
		delete(link.wants, id)
		link.ro.Stop(recv)
	}
	l.closeIfIdleLocked(link)
}

func (l *relayLinks) closeIfIdleLocked(link *outLink) {
	if len(link.wants) == 0 && l.out[link.node] == link {
		delete(l.out, link.node)
		l.closeLater(link.ro.Close)
	}
}

func (l *relayLinks) dropOut(link *outLink) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.out[link.node] == link {
		delete(l.out, link.node)
	}
	l.closeLater(link.ro.Close)
}

func (l *relayLinks) dropIn(node string, link *inLink) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.in[node] == link {
		delete(l.in, node)
	}
}

// closeLater closes a link in the background: Close waits for the link's
// goroutines, and callers hold locks.
func (l *relayLinks) closeLater(close func() error) {
	l.closing.Add(1)
	go func() {
		defer l.closing.Done()
		_ = close()
	}()
}

// closeNode closes the links with a node that is gone.
func (l *relayLinks) closeNode(node string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if link := l.out[node]; link != nil {
		delete(l.out, node)
		l.closeLater(link.ro.Close)
	}
	if link := l.in[node]; link != nil {
		delete(l.in, node)
		l.closeLater(link.ri.Close)
	}
}

// closeAll closes every link and waits for them.
func (l *relayLinks) closeAll() {
	l.mu.Lock()
	for node := range l.out {
		l.closeLater(l.out[node].ro.Close)
	}
	for node := range l.in {
		l.closeLater(l.in[node].ri.Close)
	}
	l.out, l.in = map[string]*outLink{}, map[string]*inLink{}
	l.mu.Unlock()
	l.closing.Wait()
}

// layersOut counts the layers this node relays to others.
func (l *relayLinks) layersOut() int {
	l.mu.Lock()
	links := make([]*sfu.RelayOut, 0, len(l.out))
	for _, link := range l.out {
		links = append(links, link.ro)
	}
	l.mu.Unlock()
	n := 0
	for _, ro := range links {
		n += ro.Stats().Layers
	}
	return n
}

// reapply sends the layers asked for that the publisher sends now: a
// layer it added since is relayed, one it dropped is not.
func (l *relayLinks) reapply() {
	type job struct {
		ro   *sfu.RelayOut
		recv *sfu.Receiver
		want []int
	}
	l.mu.Lock()
	var jobs []job
	for _, link := range l.out {
		for _, w := range link.wants {
			jobs = append(jobs, job{link.ro, w.recv, w.layers})
		}
	}
	l.mu.Unlock()
	for _, j := range jobs {
		eff := effectiveLayers(j.want, j.recv.Layers())
		if !slices.Equal(eff, j.ro.Sending(j.recv)) {
			_ = j.ro.Send(j.recv, eff) // a track that ended meanwhile is forgotten by its OnClose
		}
	}
}

// sweepOrphans tells the nodes that relay tracks no room here pulls (the
// room left, or forgot the track when its node's part expired) to stop.
func (l *relayLinks) sweepOrphans(stop <-chan struct{}) {
	l.mu.Lock()
	type orphan struct {
		node string
		id   sfu.TrackID
	}
	var orphans []orphan
	for node, link := range l.in {
		for _, recv := range link.ri.Receivers() {
			orphans = append(orphans, orphan{node, recv.ID()})
		}
	}
	l.mu.Unlock()
	rooms := l.c.m.roomList()
	for _, o := range orphans {
		claimed := false
		for _, r := range rooms {
			if r.cl != nil && r.claims(o.node, o.id) {
				claimed = true
				break
			}
		}
		if claimed {
			continue
		}
		select {
		case <-stop:
			return
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), pullTimeout)
		err := l.c.node.Request(ctx, o.node, reqWant, wantRequest{Track: o.id}, nil)
		cancel()
		if err != nil {
			l.c.m.log.Debug("cluster: stop an unclaimed relay", "node", o.node, "track", string(o.id), "err", err)
		}
	}
}
