package turn

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	pionturn "github.com/pion/turn/v5"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestServerRefusesBadCredentialsAndForeignPeers: a wrong password gets no
// allocation, and the relay will not forward to addresses other than the
// allowed ones (it is not an open proxy).
func TestServerRefusesBadCredentialsAndForeignPeers(t *testing.T) {
	ts, err := Start(ServerConfig{Listen: "127.0.0.1:0", RelayIP: "127.0.0.1", Secret: "right"})
	if err != nil {
		t.Fatal(err)
	}
	defer ts.Close()
	user := strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10) + ":someone"
	if err := allocate(ts.Addr(), user, "wrong password", "127.0.0.1"); err == nil {
		t.Fatal("allocation with a wrong password succeeded")
	}
	good := Credentials{Secret: "right", URLs: []string{"x"}}.For("someone", time.Now())
	if err := allocate(ts.Addr(), good.Username, good.Credential, "127.0.0.1"); err != nil {
		t.Fatalf("allocation with good credentials: %v", err)
	}
	if err := allocate(ts.Addr(), good.Username, good.Credential, "10.1.2.3"); err == nil {
		t.Fatal("permission to relay to a foreign address granted")
	}
	stale := Credentials{Secret: "right", URLs: []string{"x"}, TTL: time.Second}.For("someone", time.Now().Add(-time.Hour))
	if err := allocate(ts.Addr(), stale.Username, stale.Credential, "127.0.0.1"); err == nil {
		t.Fatal("allocation with expired credentials succeeded")
	}
}

func TestStartRefusesBadConfig(t *testing.T) {
	for what, c := range map[string]ServerConfig{
		"no secret":      {Listen: "127.0.0.1:0", RelayIP: "127.0.0.1"},
		"no relay IP":    {Listen: "127.0.0.1:0", Secret: "s"},
		"a bad listener": {Listen: "127.0.0.1:99999", RelayIP: "127.0.0.1", Secret: "s"},
	} {
		if ts, err := Start(c); err == nil {
			_ = ts.Close()
			t.Errorf("%s: started", what)
		}
	}
}

// allocate allocates a relay on the TURN server at addr and asks for
// permission to reach peerIP.
func allocate(addr, user, pass, peerIP string) error {
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer conn.Close()
	c, err := pionturn.NewClient(&pionturn.ClientConfig{STUNServerAddr: addr, TURNServerAddr: addr, Username: user, Password: pass,
		Conn: conn, RTO: 200 * time.Millisecond})
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Listen(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	relay, err := c.AllocateWithContext(ctx)
	if err != nil {
		return fmt.Errorf("allocate: %w", err)
	}
	defer relay.Close()
	if err := c.CreatePermission(&net.UDPAddr{IP: net.ParseIP(peerIP), Port: 9}); err != nil {
		return fmt.Errorf("permission for %s: %w", peerIP, err)
	}
	return nil
}
