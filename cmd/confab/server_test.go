package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/confab-sfu/confab/signal"
	"nhooyr.io/websocket"
)

// selfSigned writes a certificate for 127.0.0.1 and returns its files and pool.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "confab test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	kb, _ := x509.MarshalECPrivateKey(key)
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// startRun runs the server binary's run() and returns its URL and a stop
// function that waits for a clean shutdown.
func startRun(t *testing.T, args ...string) (string, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	urls := make(chan string, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, append([]string{"-listen", "127.0.0.1:0", "-ice-interfaces", "lo", "-ice-loopback",
			"-ice-allowed-cidrs", "127.0.0.0/8", "-log-level", "error"}, args...), io.Discard, func(u string) { urls <- u })
	}()
	select {
	case u := <-urls:
		return u, func() error { cancel(); return <-errc }
	case err := <-errc:
		cancel()
		t.Fatalf("server did not start: %v", err)
	}
	return "", nil
}

func TestServerOverTLSWithOriginCheckReadinessAndShutdown(t *testing.T) {
	cert, key, pool := selfSigned(t)
	url, stop := startRun(t, "-tls-cert", cert, "-tls-key", key)
	if url[:8] != "https://" {
		t.Fatalf("printed URL %q is not https", url)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := hc.Get(url + "readyz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("readyz: %v %v", resp, err)
	}
	resp.Body.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := signal.Dial(ctx, url, signal.WithHTTPClient(hc))
	if err != nil {
		t.Fatalf("dial wss: %v", err)
	}
	defer c.Close()
	if w, err := c.Join(ctx, "secure", "ada", ""); err != nil || w.Participant == nil {
		t.Fatalf("join over wss: %v", err)
	}
	// A page from another site may not open the signaling socket.
	if _, err := signal.Dial(ctx, url, signal.WithHTTPClient(hc), signal.WithHeader(http.Header{"Origin": {"https://evil.example"}})); err == nil {
		t.Fatal("a foreign Origin was let in")
	}
	// Shutdown tells the participant and closes with 1001.
	if err := stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	sawBye := false
	for m := range c.Messages() {
		if m.Type == signal.TypeBye && m.Code == signal.CodeShuttingDown {
			sawBye = true
		}
	}
	if !sawBye || c.CloseStatus() != websocket.StatusGoingAway {
		t.Fatalf("bye %v, close %d", sawBye, c.CloseStatus())
	}
}

func TestConnectionsPerIPAreLimited(t *testing.T) {
	url, stop := startRun(t, "-max-conns-per-ip", "2")
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 0; i < 2; i++ {
		c, err := signal.Dial(ctx, url)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		defer c.Close()
	}
	if c, err := signal.Dial(ctx, url); err == nil {
		c.Close()
		t.Fatal("a third connection from one address was accepted")
	}
}
