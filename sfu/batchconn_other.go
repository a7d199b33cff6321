//go:build !linux

package sfu

import (
	"net"
	"net/netip"

	"golang.org/x/net/ipv4"
)

// batchWriter sends a batch with x/net's WriteBatch (one packet per
// system call where the system has no sendmmsg).
type batchWriter struct{ pc *ipv4.PacketConn }

func newBatchWriter(c *net.UDPConn) batchWriter { return batchWriter{ipv4.NewPacketConn(c)} }

func (w batchWriter) writeBatch(ms []ipv4.Message) (int, error) { return w.pc.WriteBatch(ms, 0) }

// batchReader reads one datagram per system call.
type batchReader struct{}

func newBatchReader(*net.UDPConn) batchReader { return batchReader{} }

func (batchReader) read(c *net.UDPConn, p []byte) (int, netip.AddrPort, error) {
	return c.ReadFromUDPAddrPort(p)
}
