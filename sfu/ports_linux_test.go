package sfu

import (
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
)

// recordingNet is the operating system's network that keeps the UDP
// sockets it opens.
type recordingNet struct {
	*stdnet.Net
	mu    sync.Mutex
	conns []*net.UDPConn
}

func (n *recordingNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, laddr)
	if u, ok := c.(*net.UDPConn); ok {
		n.mu.Lock()
		n.conns = append(n.conns, u)
		n.mu.Unlock()
	}
	return c, err
}

func socketBuffer(t *testing.T, c *net.UDPConn, opt int) int {
	t.Helper()
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var size int
	var optErr error
	if err := raw.Control(func(fd uintptr) { size, optErr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, opt) }); err != nil {
		t.Fatal(err)
	}
	if optErr != nil {
		t.Fatal(optErr)
	}
	return size
}

func sysctlInt(t *testing.T, name string) int {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/net/core/" + name)
	if err != nil {
		t.Skipf("cannot read %s: %v", name, err)
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return v
}

// TestUDPMuxBuffers: the shared UDP port gets kernel buffers of
// udpMuxBufferBytes (as far as net.core.rmem_max and wmem_max allow), not
// the default that overflowed under load in the cluster benchmark.
func TestUDPMuxBuffers(t *testing.T) {
	rmemMax, wmemMax := sysctlInt(t, "rmem_max"), sysctlInt(t, "wmem_max")
	if min(rmemMax, wmemMax) <= sysctlInt(t, "rmem_default") {
		t.Skipf("net.core.rmem_max %d and wmem_max %d leave no room above the default", rmemMax, wmemMax)
	}
	sn, err := stdnet.NewNet()
	if err != nil {
		t.Fatal(err)
	}
	rec := &recordingNet{Net: sn}
	l, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.LocalAddr().(*net.UDPAddr).Port
	l.Close()
	cfg := &Config{Loopback: true, UDPPort: port, Net: rec}
	cfg.setDefaults()
	mux, _, err := listenUDPMux(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer mux.Close()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.conns) == 0 {
		t.Fatal("the mux opened no socket")
	}
	// Linux reports twice what was set (its bookkeeping overhead).
	wantRead, wantWrite := 2*min(udpMuxBufferBytes, rmemMax), 2*min(udpMuxBufferBytes, wmemMax)
	for _, c := range rec.conns {
		if got := socketBuffer(t, c, syscall.SO_RCVBUF); got < wantRead {
			t.Errorf("%s: receive buffer %d bytes, want %d", c.LocalAddr(), got, wantRead)
		}
		if got := socketBuffer(t, c, syscall.SO_SNDBUF); got < wantWrite {
			t.Errorf("%s: send buffer %d bytes, want %d", c.LocalAddr(), got, wantWrite)
		}
	}
}
