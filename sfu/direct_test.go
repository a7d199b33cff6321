package sfu

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"testing"

	"github.com/confab-sfu/confab/internal/wait"

	"github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/crypto/selfsign"
	"github.com/pion/rtcp"
	"github.com/pion/srtp/v3"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The keys the server derives from what the DTLS handshake lets it see
// (its ServerHello and the key log) are the ones the DTLS exporter gives
// the other side, for every SRTP profile and for PRFs on SHA-256 and
// SHA-384.
func TestKeyCaptureMatchesTheDTLSExporter(t *testing.T) {
	cert, err := selfsign.GenerateSelfSigned()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		suite   dtls.CipherSuiteID
		profile dtls.SRTPProtectionProfile
	}{
		{dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, dtls.SRTP_AEAD_AES_128_GCM},
		{dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, dtls.SRTP_AES128_CM_HMAC_SHA1_80},
		{dtls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, dtls.SRTP_AEAD_AES_256_GCM},
		{dtls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, dtls.SRTP_AEAD_AES_128_GCM},
	} {
		t.Run(fmt.Sprintf("%s/%d", dtls.CipherSuiteName(c.suite), c.profile), func(t *testing.T) {
			k := &keyCapture{}
			client := dtlsHandshake(t, cert, c.suite, c.profile, k)
			got := k.outKeys()
			if got == nil {
				t.Fatal("no keys captured")
			}
			if k.master != nil {
				t.Error("the master secret is kept after the keys were derived")
			}
			profile := srtp.ProtectionProfile(c.profile)
			kl, _ := profile.KeyLen()
			sl, _ := profile.SaltLen()
			st, ok := client.ConnectionState()
			if !ok {
				t.Fatal("no connection state")
			}
			m, err := st.ExportKeyingMaterial("EXTRACTOR-dtls_srtp", nil, 2*(kl+sl))
			if err != nil {
				t.Fatal(err)
			}
			if got.profile != profile || !bytes.Equal(got.key, m[kl:2*kl]) || !bytes.Equal(got.salt, m[2*kl+sl:]) {
				t.Fatalf("derived %v %x %x, exporter gives server key %x salt %x", got.profile, got.key, got.salt, m[kl:2*kl], m[2*kl+sl:])
			}
			if !bytes.Equal(got.inKey, m[:kl]) || !bytes.Equal(got.inSalt, m[2*kl:2*kl+sl]) {
				t.Fatalf("derived the peer's key %x salt %x, exporter gives client key %x salt %x", got.inKey, got.inSalt, m[:kl], m[2*kl:2*kl+sl])
			}
		})
	}
}

// dtlsHandshake runs a DTLS handshake over loopback UDP, the server side
// reporting to k; it returns the client's connection.
func dtlsHandshake(t *testing.T, cert tls.Certificate, suite dtls.CipherSuiteID, profile dtls.SRTPProtectionProfile, k *keyCapture) *dtls.Conn {
	t.Helper()
	sc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server, err := dtls.ServerWithOptions(sc, cc.LocalAddr(), dtls.WithCertificates(cert), dtls.WithCipherSuites(suite),
		dtls.WithSRTPProtectionProfiles(profile), dtls.WithKeyLogWriter(k), dtls.WithServerHelloMessageHook(k.serverHello))
	if err != nil {
		t.Fatal(err)
	}
	client, err := dtls.ClientWithOptions(cc, sc.LocalAddr(), dtls.WithCertificates(cert), dtls.WithCipherSuites(suite),
		dtls.WithSRTPProtectionProfiles(profile), dtls.WithInsecureSkipVerify(true))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close(); _ = server.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	errs := make(chan error, 1)
	go func() { errs <- server.HandshakeContext(ctx) }()
	if err := client.HandshakeContext(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	return client
}

// Over the batched shared port, forwarded packets skip pion's send path:
// the server encrypts them with the keys it derived and queues them on
// the socket itself, and the subscribers decrypt every one of them
// (TestNACKAnsweredFromTheCache covers repairs on this path).
func TestDirectSendDeliversMedia(t *testing.T) {
	checkLeaks(t)
	rp := newRealPath(t, 2)
	for _, d := range rp.downs {
		if d.peer.direct.Load() == nil {
			t.Fatal("a subscriber on the shared port has no direct route")
		}
	}
	before, rtcpBefore := testutil.ToFloat64(metricDirectPackets), testutil.ToFloat64(metricDirectRTCP)
	var got [2]int
	for i, w := range rp.watches {
		got[i] = w.count()
	}
	fwd, _ := rp.measure(t, 200)
	if direct := testutil.ToFloat64(metricDirectPackets) - before; direct < float64(fwd) {
		t.Fatalf("%v of %d forwarded packets went the direct way", direct, fwd)
	}
	// The subscribers' feedback is read on the spot too: a report (in a
	// compound with a source description, as browsers send it) and a
	// receiver estimate from each reach their DownTrack and send path.
	for i, d := range rp.downs {
		d.mu.Lock()
		ssrc := d.ssrc
		d.mu.Unlock()
		err := rp.subs[i].pc.WriteRTCP([]rtcp.Packet{
			&rtcp.ReceiverReport{SSRC: 1, Reports: []rtcp.ReceptionReport{{SSRC: ssrc, TotalLost: uint32(7 + i)}}},
			&rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{{Source: 1, Items: []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: "sub"}}}}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := rp.subs[i].pc.WriteRTCP([]rtcp.Packet{&rtcp.ReceiverEstimatedMaximumBitrate{SenderSSRC: 1, Bitrate: float32(500_000 + 1000*i), SSRCs: []uint32{ssrc}}}); err != nil {
			t.Fatal(err)
		}
	}
	for i, d := range rp.downs {
		wait.Until(t, patience, fmt.Sprintf("subscriber %d's report and estimate", i), func() (bool, string) {
			lost, remb := d.lost.Load(), d.peer.send.remb.Load()
			return lost == uint32(7+i) && remb == int64(500_000+1000*i), fmt.Sprintf("lost %d, estimate %d", lost, remb)
		})
	}
	if taken := testutil.ToFloat64(metricDirectRTCP) - rtcpBefore; taken < float64(2*len(rp.downs)) {
		t.Fatalf("%v RTCP datagrams taken directly, want the %d sent", taken, 2*len(rp.downs))
	}
	for i, w := range rp.watches {
		d := rp.downs[i]
		wait.For(t, patience, fmt.Sprintf("subscriber %d decrypting what was sent", i), func() bool {
			return uint64(w.count()) >= d.Stats().Packets-5 && w.count() >= got[i]+100
		})
	}
}
