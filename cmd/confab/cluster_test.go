package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/needtool"

	"github.com/confab-sfu/confab/internal/wait"
	"github.com/confab-sfu/confab/signal"
	"github.com/confab-sfu/confab/signal/client"
	"github.com/confab-sfu/confab/signal/client/clip"
	natsserver "github.com/nats-io/nats-server/v2/server"
)

func TestClusterFlags(t *testing.T) {
	env := map[string]string{"CONFAB_NATS": "nats://127.0.0.1:4222,nats://127.0.0.1:4223", "CONFAB_NODE_ID": "eu-1"}
	c, err := parseConfig([]string{"-nats-user", "confab", "-nats-password", "pw", "-advertise-url", "https://eu-1.example.org/"},
		func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	cc := c.roomConfig(nil).Cluster
	if cc == nil || len(cc.URLs) != 2 || cc.NodeID != "eu-1" || cc.User != "confab" || cc.Password != "pw" ||
		cc.AdvertiseURL != "https://eu-1.example.org/" || cc.Embed != nil {
		t.Fatalf("cluster config: %+v", cc)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "confab.yaml")
	yaml := "nats-embed: true\nnats-listen: 127.0.0.1:0\nnats-cluster-listen: 0.0.0.0:6222\nnats-routes: [10.0.0.1:6222, 10.0.0.2:6222]\nnats-token: t0ken\n"
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = parseConfig([]string{"-config", file}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cc = c.roomConfig(nil).Cluster
	if cc == nil || cc.Embed == nil || cc.Embed.Listen != "127.0.0.1:0" || cc.Embed.ClusterListen != "0.0.0.0:6222" ||
		len(cc.Embed.Routes) != 2 || cc.Token != "t0ken" || cc.Embed.ClusterName != "confab" {
		t.Fatalf("embedded cluster config from the file: %+v %+v", cc, cc.Embed)
	}
	if c, _ := parseConfig(nil, func(string) string { return "" }); c == nil || c.roomConfig(nil).Cluster != nil {
		t.Fatal("without -nats or -nats-embed there must be no cluster")
	}
	bad := [][]string{
		{"-nats", "nats://127.0.0.1:4222", "-nats-embed"},
		{"-nats-routes", "10.0.0.1:6222"},
		{"-nats-embed", "-nats-routes", "10.0.0.1:6222"},
		{"-nats-embed", "-nats-creds", "user.creds"},
		{"-node-id", "n1"},
		{"-nats-password", "pw"},
		{"-nats", "nats://127.0.0.1:4222", "-nats-tls-cert", "c.pem"},
		{"-nats", "nats://127.0.0.1:4222", "-nats-token", "t", "-nats-user", "u"},
	}
	for _, args := range bad {
		if _, err := parseConfig(args, func(string) string { return "" }); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

// natsWithPassword runs a NATS server in the test that wants a user and
// password, and returns its URL.
func natsWithPassword(t *testing.T, user, pass string) string {
	t.Helper()
	s, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: natsserver.RANDOM_PORT, NoSigs: true, NoLog: true,
		Username: user, Password: pass})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	return "nats://" + s.Addr().String()
}

// TestClusterWrongNATSPasswordFailsToStart: NATS refuses a node with the
// wrong password, and the server says so rather than starting alone.
func TestClusterWrongNATSPasswordFailsToStart(t *testing.T) {
	url := natsWithPassword(t, "confab", "right")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := run(ctx, []string{"-listen", "127.0.0.1:0", "-log-level", "error", "-nats", url,
		"-nats-user", "confab", "-nats-password", "wrong"}, io.Discard, func(string) { t.Error("the server started") })
	if err == nil || !strings.Contains(err.Error(), "join the cluster") || !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Fatalf("start with a wrong NATS password: %v", err)
	}
	t.Logf("refused: %v", err)
	serverURL, stop := startRun(t, "-nats", url, "-nats-user", "confab", "-nats-password", "right", "-node-id", "ok-1")
	if serverURL == "" {
		t.Fatal("no URL")
	}
	if err := stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

// natsServerBinary finds the nats-server program (CI installs Debian's).
func natsServerBinary(t *testing.T) string {
	return needtool.Path(t, "nats-server", "nats-server", "/usr/sbin/nats-server")
}

func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startProcess runs cmd until the test ends (then interrupts it, and
// kills it if it does not stop in time).
func startProcess(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
}

var printedURL = regexp.MustCompile(`Open (\S+) in a browser`)

// startConfab runs the binary as one node and returns the URL it prints.
func startConfab(t *testing.T, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"-listen", "127.0.0.1:0", "-ice-interfaces", "lo", "-ice-loopback",
		"-ice-allowed-cidrs", "127.0.0.0/8", "-log-level", "warn"}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	var logMu sync.Mutex
	cmd.Stderr = writerFunc(func(b []byte) (int, error) {
		logMu.Lock()
		defer logMu.Unlock()
		return logs.Write(b)
	})
	startProcess(t, cmd)
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := printedURL.FindStringSubmatch(sc.Text()); m != nil {
				urls <- m[1]
			}
		}
	}()
	select {
	case u := <-urls:
		return u
	case <-time.After(30 * time.Second):
		logMu.Lock()
		defer logMu.Unlock()
		t.Fatalf("confab %v printed no URL; its log:\n%s", args, logs.String())
	}
	return ""
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// packetCounts counts the packets a participant receives, by publisher
// and kind.
type packetCounts struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *packetCounts) onTrack(rt *client.RemoteTrack) {
	key := rt.Info.Participant + "/" + rt.Info.Kind
	go func() {
		for {
			if _, _, err := rt.Track.ReadRTP(); err != nil {
				return
			}
			c.mu.Lock()
			c.n[key]++
			c.mu.Unlock()
		}
	}()
}

func (c *packetCounts) get(publisher, kind string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[publisher+"/"+kind]
}

// TestClusterThreeConfabProcesses: three confab processes on one real
// nats-server process form a cluster; a meeting with one participant on
// each receives everyone's audio and simulcast video.
func TestClusterThreeConfabProcesses(t *testing.T) {
	natsBin := natsServerBinary(t)
	port := freeLoopbackPort(t)
	startProcess(t, exec.Command(natsBin, "-a", "127.0.0.1", "-p", strconv.Itoa(port)))
	natsURL := fmt.Sprintf("nats://127.0.0.1:%d", port)
	wait.For(t, 10*time.Second, "nats-server to listen", func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	bin := filepath.Join(t.TempDir(), "confab")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var urls []string
	for i := 1; i <= 3; i++ {
		urls = append(urls, startConfab(t, bin, "-nats", natsURL, "-node-id", fmt.Sprintf("proc%d", i)))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	api, err := client.NewAPI(client.APIOptions{Loopback: true})
	if err != nil {
		t.Fatal(err)
	}
	peers := make([]*client.Peer, 3)
	counts := make([]*packetCounts, 3)
	for i, u := range urls {
		counts[i] = &packetCounts{n: map[string]int{}}
		name := fmt.Sprintf("p%d", i+1)
		video, err := clip.NewVideoSource(name+"-cam", name, true, 0)
		if err != nil {
			t.Fatal(err)
		}
		p, err := client.Join(ctx, client.Params{URL: u, Room: "procs", Name: name, API: api, OnTrack: counts[i].onTrack,
			OnKeyframeRequest: func(string) { video.RequestKeyframe() }})
		if err != nil {
			t.Fatalf("%s joins through %s: %v", name, u, err)
		}
		t.Cleanup(func() { _ = p.Leave() })
		peers[i] = p
		audio, err := clip.NewAudioSource(name+"-mic", name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Publish(ctx, signal.SourceMicrophone, audio.Track()); err != nil {
			t.Fatal(err)
		}
		sender, err := p.Publish(ctx, signal.SourceCamera, video.Tracks()...)
		if err != nil {
			t.Fatal(err)
		}
		st, err := p.NewStamper(sender) // simulcast layers carry their mid and rid
		if err != nil {
			t.Fatal(err)
		}
		video.SetStamper(st)
		for _, run := range []func(context.Context){audio.Run, video.Run} {
			done := make(chan struct{})
			go func() { defer close(done); run(ctx) }()
			t.Cleanup(func() { cancel(); <-done })
		}
	}
	start := time.Now()
	for i, p := range peers {
		wait.Until(t, 30*time.Second, p.ID()+" receives the others", func() (bool, string) {
			for j, q := range peers {
				if i == j {
					continue
				}
				for _, kind := range []string{"audio", "video"} {
					if n := counts[i].get(q.ID(), kind); n < 50 {
						return false, fmt.Sprintf("%d %s packets from %s", n, kind, q.ID())
					}
				}
			}
			return true, ""
		})
	}
	t.Logf("three processes: everyone received everyone %v after publishing", time.Since(start).Round(time.Millisecond))
	// Each node's /metrics tells of the cluster and its relays.
	for i, u := range urls {
		body := scrape(t, u+"metrics")
		for _, want := range []string{
			"confab_cluster_nodes 3",
			"confab_cluster_connected 1",
			fmt.Sprintf(`confab_relay_tracks{direction="out",node="proc%d"} 2`, (i+1)%3+1),
			fmt.Sprintf(`confab_relay_tracks{direction="in",node="proc%d"} 2`, (i+1)%3+1),
			`confab_relay_bytes_total{direction="out"`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("proc%d's /metrics lacks %q", i+1, want)
			}
		}
	}
}

// scrape reads a /metrics page.
func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
