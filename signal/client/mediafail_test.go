package client_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/testserver"
	"github.com/confab-sfu/confab/room"
	"github.com/confab-sfu/confab/signal"
	"github.com/confab-sfu/confab/signal/client"
	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
)

// cuttableNet is the real network whose UDP sockets can be cut: while cut,
// everything sent is lost and everything arriving is dropped, as when a
// path between client and server goes dark. TCP (the WebSocket) is not
// affected.
type cuttableNet struct {
	*stdnet.Net
	dark atomic.Bool
}

func newCuttableNet(t *testing.T) *cuttableNet {
	t.Helper()
	n, err := stdnet.NewNet()
	if err != nil {
		t.Fatal(err)
	}
	return &cuttableNet{Net: n}
}

func (n *cuttableNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	return &cuttableConn{UDPConn: c, dark: &n.dark}, nil
}

type cuttableConn struct {
	transport.UDPConn
	dark *atomic.Bool
}

func (c *cuttableConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.UDPConn.ReadFrom(b)
		if err != nil || !c.dark.Load() {
			return n, addr, err
		}
	}
}

func (c *cuttableConn) ReadFromUDP(b []byte) (int, *net.UDPAddr, error) {
	for {
		n, addr, err := c.UDPConn.ReadFromUDP(b)
		if err != nil || !c.dark.Load() {
			return n, addr, err
		}
	}
}

func (c *cuttableConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if c.dark.Load() {
		return len(b), nil
	}
	return c.UDPConn.WriteTo(b, addr)
}

func (c *cuttableConn) WriteToUDP(b []byte, addr *net.UDPAddr) (int, error) {
	if c.dark.Load() {
		return len(b), nil
	}
	return c.UDPConn.WriteToUDP(b, addr)
}

// TestReconnectAfterMediaFailure: the media path goes dark while the
// WebSocket stays up. Ada's connection fails, she says goodbye on the
// WebSocket (Bob sees her leave at once) and rejoins; once the path is
// back, Bob receives her again.
func TestReconnectAfterMediaFailure(t *testing.T) {
	n := testserver.StartNode(t, room.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	path := newCuttableNet(t)
	api, err := client.NewAPI(client.APIOptions{Loopback: true, Net: path, ICETimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	bobGot := newReceived()
	bob := join(t, ctx, n.URL, "r", "bob", func(p *client.Params) { p.OnTrack = bobGot.onTrack })
	ada := join(t, ctx, n.URL, "r", "ada", func(p *client.Params) {
		p.API = api
		p.Reconnect = &client.Reconnect{}
	})
	publishClips(t, ctx, ada, "ada", nil)
	firstID := ada.ID()
	bobGot.mediaFrom(t, "bob receives ada", firstID, 30, signal.SourceMicrophone)

	cut := time.Now()
	path.dark.Store(true)
	if ev := nextEvent(t, ada, "reconnecting", isType(client.TypeReconnecting)); ev.Code != client.CauseMediaFailed {
		t.Errorf("reconnecting because %q, want %s", ev.Code, client.CauseMediaFailed)
	}
	failed := time.Since(cut)
	nextEvent(t, bob, "ada leaves", func(m *signal.Message) bool {
		return m.Type == signal.TypeParticipantLeft && m.Participant.ID == firstID
	})
	path.dark.Store(false)
	nextEvent(t, ada, "reconnected", isType(client.TypeReconnected))
	at := bobGot.mediaFrom(t, "bob receives ada again", ada.ID(), 30, signal.SourceMicrophone)
	if ada.ID() == firstID || ada.URL() != n.URL {
		t.Errorf("after the rejoin: id %s (first %s), url %s", ada.ID(), firstID, ada.URL())
	}
	if rc := ada.Reconnections(); len(rc) != 1 || rc[0].Cause != client.CauseMediaFailed {
		t.Errorf("reconnections %+v", rc)
	}
	t.Logf("path cut: the connection failed after %v (ICE timeout 2 s), bob received ada again %v after the cut", failed.Round(time.Millisecond), at.Sub(cut).Round(time.Millisecond))
}
