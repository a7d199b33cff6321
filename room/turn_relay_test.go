package room_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/needtool"

	"github.com/confab-sfu/confab/internal/wait"
	"github.com/confab-sfu/confab/room"
	"github.com/confab-sfu/confab/room/turn"
	"github.com/confab-sfu/confab/signal/client"
	"github.com/pion/stun/v4"
	"github.com/pion/webrtc/v4"
)

// relayMeeting: a relay-only participant (only TURN candidates, as behind a
// firewall that blocks direct UDP) publishes and receives through the TURN
// server at turnURLs, using the credentials the server hands out in
// welcome; media flows both ways and its selected path is a relay.
func relayMeeting(t *testing.T, turnURLs []string, secret string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, url := startServer(t, room.Config{ICE: turn.ICE{TURN: turn.Credentials{URLs: turnURLs, Secret: secret, TTL: time.Hour}}})
	direct := join(t, ctx, url, "firewalled", "direct")
	relayed := joinWith(t, ctx, url, "firewalled", "relayed", client.APIOptions{Loopback: true},
		func(o *client.Params) { o.RelayOnly = true })
	if s := relayed.Welcome().ICEServers; len(s) == 0 || !strings.HasPrefix(s[len(s)-1].Username, strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)[:6]) {
		t.Fatalf("welcome ICE servers %+v: want TURN credentials expiring in an hour", s)
	}
	mediaBothWays(t, ctx, direct, relayed, "through the relay")
	pair, err := selectedPair(relayed.PeerConnection())
	if err != nil {
		t.Fatal(err)
	}
	if pair.Local.Typ != webrtc.ICECandidateTypeRelay {
		t.Fatalf("selected pair %s: the relay-only peer is not relayed", pair)
	}
	t.Logf("relayed path: %s", pair)
}

func selectedPair(pc *webrtc.PeerConnection) (*webrtc.ICECandidatePair, error) {
	sctp := pc.SCTP()
	var tr *webrtc.ICETransport
	if sctp != nil {
		tr = sctp.Transport().ICETransport()
	}
	if tr == nil {
		for _, s := range pc.GetSenders() {
			if s.Transport() != nil {
				tr = s.Transport().ICETransport()
				break
			}
		}
	}
	if tr == nil {
		return nil, fmt.Errorf("no ICE transport")
	}
	return tr.GetSelectedCandidatePair()
}

// TestEmbeddedTURNRelaysMedia: the embedded TURN server admits the
// server's time-limited credentials and relays media to the SFU.
func TestEmbeddedTURNRelaysMedia(t *testing.T) {
	const secret = "embedded turn secret"
	ts, err := turn.Start(turn.ServerConfig{Listen: "127.0.0.1:0", RelayIP: "127.0.0.1", Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	defer ts.Close()
	relayMeeting(t, ts.URLs("127.0.0.1")[:1], secret)
}

// TestCoturnRelaysMedia: the same through a real coturn from Debian's
// packages, configured with use-auth-secret, on loopback.
func TestCoturnRelaysMedia(t *testing.T) {
	bin := needtool.Path(t, "turnserver", "coturn")
	const secret = "coturn shared secret"
	port := freeUDPPort(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-n", "--no-cli", "--no-tls", "--no-dtls",
		"--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", "--listening-port="+strconv.Itoa(port),
		"--min-port=50000", "--max-port=50999", "--allow-loopback-peers",
		"--use-auth-secret", "--static-auth-secret="+secret, "--realm=confab.test",
		"--log-file=stdout", "--simple-log", "--no-stdout-log=false")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logs := make(chan string, 1000)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case logs <- sc.Text():
			default:
			}
		}
	}()
	defer func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			for len(logs) > 0 {
				t.Log("coturn:", <-logs)
			}
		}
	}()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	wait.Until(t, 10*time.Second, "coturn up", func() (bool, string) {
		err := stunBinding(addr)
		return err == nil, fmt.Sprint(err)
	})
	relayMeeting(t, []string{"turn:" + addr + "?transport=udp"}, secret)
}

func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// stunBinding asks the server at addr for this client's address: an
// answer means it is up.
func stunBinding(addr string) error {
	conn, err := net.Dial("udp4", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.Write(stun.MustBuild(stun.TransactionID, stun.BindingRequest).Raw); err != nil {
		return err
	}
	_ = conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	buf := make([]byte, 1500)
	n, err := conn.Read(buf)
	if err != nil {
		return err
	}
	var m stun.Message
	m.Raw = buf[:n]
	if err := m.Decode(); err != nil {
		return err
	}
	if m.Type != stun.BindingSuccess {
		return fmt.Errorf("stun answer %s", m.Type)
	}
	return nil
}
