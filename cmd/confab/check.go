package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/confab-sfu/confab/signal"
	"github.com/confab-sfu/confab/signal/client"
	"github.com/pion/webrtc/v4"
	"nhooyr.io/websocket"
)

// errChecksFailed makes `confab check` exit 1 when a check failed.
var errChecksFailed = errors.New("some checks failed")

// checkOptions configure `confab check`.
type checkOptions struct {
	base    string        // the server's base URL
	timeout time.Duration // per check
	api     client.APIOptions
}

// runCheck is "confab check": the /check page's checks (without camera
// and microphone) from this machine to a server, each printed with its
// result. It fails when any check failed.
func runCheck(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("confab check", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	base := fs.String("url", "", "the server's base URL, e.g. https://meet.example.org (required)")
	timeout := fs.Duration("timeout", 10*time.Second, "how long each check may take")
	loopback := fs.Bool("loopback", false, "use only the loopback interface (a server on this machine)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fmt.Fprintln(stdout, "Usage: confab check -url https://host [-timeout 10s]")
			fs.PrintDefaults()
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	u, err := url.Parse(*base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("-url %q: want the server's base URL, like https://meet.example.org", *base)
	}
	return checkServer(ctx, checkOptions{base: strings.TrimSuffix(*base, "/"), timeout: *timeout, api: client.APIOptions{Loopback: *loopback}}, stdout)
}

// checkLine is one check's result.
type checkLine struct {
	ok, skip bool
	text     string
}

// checkServer runs the checks and prints one line each.
func checkServer(ctx context.Context, o checkOptions, stdout io.Writer) error {
	failed := false
	print := func(title string, l checkLine) {
		mark := "FAIL"
		switch {
		case l.skip:
			mark = "skip"
		case l.ok:
			mark = "ok  "
		default:
			failed = true
		}
		fmt.Fprintf(stdout, "%s %-24s %s\n", mark, title, l.text)
	}
	print("Server reachable", checkWebSocket(ctx, o))
	cfg, err := fetchCheckConfig(ctx, o)
	if err != nil {
		print("Check endpoint", checkLine{text: err.Error()})
		return errChecksFailed
	}
	print("Media over UDP", checkICE(ctx, o, "udp", nil))
	if cfg.TCP {
		print("Media over TCP", checkICE(ctx, o, "tcp", nil))
	} else {
		print("Media over TCP", checkLine{skip: true, text: "not offered by this server (-ice-tcp-port)"})
	}
	udp, tcp := turnByTransport(cfg.ICEServers)
	for _, g := range []struct {
		title   string
		servers []webrtc.ICEServer
	}{{"TURN over UDP", udp}, {"TURN over TCP/TLS", tcp}} {
		if len(g.servers) == 0 {
			print(g.title, checkLine{skip: true, text: "not configured on this server"})
			continue
		}
		print(g.title, checkICE(ctx, o, "relay", g.servers))
	}
	if failed {
		return errChecksFailed
	}
	return nil
}

// checkWebSocket opens the signaling WebSocket and closes it.
func checkWebSocket(ctx context.Context, o checkOptions) checkLine {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	ws := "ws" + strings.TrimPrefix(o.base, "http") + "/ws"
	c, _, err := websocket.Dial(ctx, ws, &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {o.base}}})
	if err != nil {
		return checkLine{text: fmt.Sprintf("the WebSocket %s could not be opened: %v", ws, err)}
	}
	c.Close(websocket.StatusNormalClosure, "check done")
	return checkLine{ok: true, text: "the signaling WebSocket opens"}
}

type checkConfig struct {
	ICEServers []signal.ICEServer `json:"iceServers"`
	TCP        bool               `json:"tcp"`
}

func fetchCheckConfig(ctx context.Context, o checkOptions) (checkConfig, error) {
	var cfg checkConfig
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.base+"/check/config", nil)
	if err != nil {
		return cfg, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return cfg, fmt.Errorf("GET /check/config: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return cfg, fmt.Errorf("GET /check/config: %s (a Confab server older than the connection check?)", res.Status)
	}
	return cfg, json.NewDecoder(res.Body).Decode(&cfg)
}

var turnTCP = regexp.MustCompile(`(?i)^turns:|transport=tcp`)

// turnByTransport splits the TURN URLs into those over UDP and those over
// TCP or TLS, each with its credentials.
func turnByTransport(servers []signal.ICEServer) (udp, tcp []webrtc.ICEServer) {
	for _, s := range servers {
		for _, u := range s.URLs {
			if !strings.HasPrefix(strings.ToLower(u), "turn") {
				continue
			}
			is := webrtc.ICEServer{URLs: []string{u}, Username: s.Username, Credential: s.Credential}
			if turnTCP.MatchString(u) {
				tcp = append(tcp, is)
			} else {
				udp = append(udp, is)
			}
		}
	}
	return udp, tcp
}
