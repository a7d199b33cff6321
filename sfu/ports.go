package sfu

import (
	"fmt"
	"net"
	"strconv"

	"github.com/confab-sfu/confab/sfu/pionlog"
	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
)

// udpMuxBufferBytes sizes the kernel buffers of the shared UDP port. It
// carries every participant's media and feedback: with the default
// (about 200 KiB) a node that waits a few milliseconds for a core drops
// datagrams there, the publishers' media among them, and every viewer
// sees the loss (docs/benchmarks.md, the cluster benchmark). The kernel
// caps it at net.core.rmem_max and wmem_max.
const udpMuxBufferBytes = 4 << 20

// listenUDPMux opens the one UDP port all ICE traffic shares (ICE UDP mux),
// when cfg.UDPPort asks for it; nil otherwise. Its sockets batch their
// sends unless cfg says not to; their network is returned then.
func listenUDPMux(cfg *Config) (ice.UDPMux, *batchNet, error) {
	if cfg.UDPPort == 0 {
		return nil, nil, nil
	}
	opts := []ice.UDPMuxFromPortOption{ice.UDPMuxFromPortWithInterfaceFilter(cfg.AllowsInterface),
		ice.UDPMuxFromPortWithNetworks(ice.NetworkTypeUDP4),
		ice.UDPMuxFromPortWithReadBufferSize(udpMuxBufferBytes),
		ice.UDPMuxFromPortWithWriteBufferSize(udpMuxBufferBytes),
		ice.UDPMuxFromPortWithLogger(pionlog.Factory(cfg.Logger).NewLogger("udp-mux"))}
	if cfg.IncludeLoopback {
		// Without it the mux skips loopback addresses, and a server
		// restricted to "lo" would have no candidate at all.
		opts = append(opts, ice.UDPMuxFromPortWithLoopback())
	}
	var batch *batchNet
	switch {
	case cfg.Net != nil:
		opts = append(opts, ice.UDPMuxFromPortWithNet(cfg.Net))
	case !cfg.NoUDPBatch:
		n, err := newBatchNet()
		if err != nil {
			return nil, nil, fmt.Errorf("prepare batched udp sockets: %w", err)
		}
		batch = n
		opts = append(opts, ice.UDPMuxFromPortWithNet(n))
	}
	m, err := ice.NewMultiUDPMuxFromPort(cfg.UDPPort, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("listen on udp port %d: %w", cfg.UDPPort, err)
	}
	return m, batch, nil
}

// tcpMuxBacklog is how many ICE-TCP connections may wait to be matched to
// their PeerConnection.
const tcpMuxBacklog = 64

// listenTCPMux opens the one TCP port ICE-TCP uses (for clients on networks
// that block UDP), when cfg.TCPPort asks for it; nil otherwise.
func listenTCPMux(cfg *Config) (ice.TCPMux, error) {
	if cfg.TCPPort == 0 {
		return nil, nil
	}
	host := ""
	if cfg.Loopback {
		host = "127.0.0.1"
	}
	ln, err := net.Listen("tcp4", net.JoinHostPort(host, strconv.Itoa(cfg.TCPPort)))
	if err != nil {
		return nil, fmt.Errorf("listen on tcp port %d: %w", cfg.TCPPort, err)
	}
	tcpMux := webrtc.NewICETCPMux(pionlog.Factory(cfg.Logger).NewLogger("ice-tcp"), ln, tcpMuxBacklog)
	return tcpMux, nil
}
