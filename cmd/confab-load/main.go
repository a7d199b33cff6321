// Command confab-load fills a Confab server's rooms with synthetic
// participants (real pion PeerConnections sending VP8 and Opus) and reports
// what they received.
//
//	go run ./cmd/confab-load -url http://127.0.0.1:8080 -scenario lecture -viewers 50 -duration 30s
//
// Several comma-separated -url nodes spread the participants over them
// (-spread); -reconnect makes them rejoin through the others when one dies.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/confab-sfu/confab/loadtest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "confab-load:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("confab-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := loadtest.Config{}
	fs.StringVar(&cfg.URL, "url", "http://127.0.0.1:8080", "server base URL, or several comma-separated nodes to spread the participants over")
	fs.StringVar(&cfg.Scenario, "scenario", "meeting", "meeting (everyone publishes), lecture (one presenter, receive-only viewers) or churn (a meeting where one participant leaves and another joins every second)")
	fs.IntVar(&cfg.Participants, "participants", 4, "meeting: participants per room")
	fs.IntVar(&cfg.Viewers, "viewers", 20, "lecture: viewers per room")
	fs.IntVar(&cfg.Rooms, "rooms", 1, "rooms")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long media flows after everyone joined")
	fs.Float64Var(&cfg.Ramp, "ramp", 10, "joins per second (0: all at once)")
	fs.BoolVar(&cfg.Video, "video", true, "publish video (audio is always published)")
	fs.BoolVar(&cfg.Simulcast, "simulcast", true, "publish video as three simulcast layers")
	fs.StringVar(&cfg.Layer, "layer", "auto", "subscriber layer policy: auto, low, medium or high (WebSocket viewers; WHEP viewers get what their bandwidth allows)")
	fs.StringVar(&cfg.ViewerProtocol, "viewer-protocol", "ws", "lecture: viewers join over the signaling WebSocket (ws) or as WHEP players (whep)")
	fs.StringVar(&cfg.PresenterProtocol, "presenter-protocol", "ws", "lecture: the presenter publishes over the WebSocket (ws) or WHIP (whip)")
	fs.StringVar(&cfg.Spread, "spread", loadtest.SpreadParticipants, "with several nodes: participants (round robin in joining order; a lecture's presenter on the first node, viewers over all) or rooms (each room on one node)")
	fs.IntVar(&cfg.ServerPID, "server-pid", 0, "the server's process id, when it runs on this machine: count its system calls and context switches per forwarded packet during the media (perf stat, else /proc: switches only)")
	fs.BoolVar(&cfg.Reconnect, "reconnect", false, "WebSocket participants rejoin through the other nodes when their connection is lost (counted in the report)")
	loopback := fs.String("loopback", "auto", "restrict ICE to loopback: auto (when every URL host is loopback), true or false")
	jsonOut := fs.String("json", "", "write the full report as JSON to this file")
	htmlOut := fs.String("html", "", "write a self-contained HTML report with charts to this file")
	verbose := fs.Bool("v", false, "log what the peers (and pion below them) report to stderr, from level info")
	err := fs.Parse(args)
	if err != nil {
		return err
	}
	if cfg.Loopback, err = loopbackICE(cfg.URL, *loopback); err != nil {
		return err
	}
	switch cfg.Layer {
	case "auto", "low", "medium", "high":
	default:
		return fmt.Errorf("-layer %q: want auto, low, medium or high", cfg.Layer)
	}
	if *verbose {
		cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		cfg.Progress = stderr // a live line only on a terminal
	}
	rep, runErr := loadtest.Run(ctx, cfg)
	if rep != nil {
		// Files first: the table may go to a pipe that closes early.
		if *jsonOut != "" {
			b, _ := json.MarshalIndent(rep, "", "  ")
			if err := os.WriteFile(*jsonOut, b, 0o644); err != nil {
				return fmt.Errorf("write %s: %w", *jsonOut, err)
			}
		}
		if *htmlOut != "" {
			f, err := os.Create(*htmlOut)
			if err != nil {
				return err
			}
			werr := loadtest.WriteHTML(f, rep)
			if cerr := f.Close(); werr == nil {
				werr = cerr
			}
			if werr != nil {
				return fmt.Errorf("write %s: %w", *htmlOut, werr)
			}
		}
		printReport(stdout, rep)
	}
	return runErr
}

// loopbackICE says whether ICE keeps to loopback: mode auto, true or
// false; auto when every node of urls is on a loopback host.
func loopbackICE(urls, mode string) (bool, error) {
	var hosts []string
	for _, raw := range strings.Split(urls, ",") {
		u, err := url.Parse(strings.TrimSpace(raw))
		if err != nil || u.Host == "" {
			return false, fmt.Errorf("-url %q: want http(s)://host:port, comma-separated for several nodes", raw)
		}
		hosts = append(hosts, u.Hostname())
	}
	switch mode {
	case "auto":
		for _, h := range hosts {
			if h != "localhost" && h != "::1" && !strings.HasPrefix(h, "127.") {
				return false, nil
			}
		}
		return true, nil
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("-loopback %q: want auto, true or false", mode)
}

func printReport(w io.Writer, r *loadtest.Report) {
	fmt.Fprintf(w, "scenario %s: %d/%d peers joined, media for %.1f s\n", r.Scenario, r.Joined, r.Peers, r.Duration)
	if len(r.Refused) > 0 {
		fmt.Fprintf(w, "refused (server busy, not failures): %d joins\n", len(r.Refused))
	}
	fmt.Fprintf(w, "join time (WebSocket open to first RTP of every track): p50 %.0f ms, p95 %.0f ms, p99 %.0f ms, max %.0f ms\n",
		r.JoinMillis.P50, r.JoinMillis.P95, r.JoinMillis.P99, r.JoinMillis.Max)
	fmt.Fprintf(w, "sent %.0f kbit/s (all publishers); received %d packets, loss after repair %.3f %%, freezes (>500 ms) %d\n",
		r.SentKbps, r.Packets, r.LossPercent, r.Freezes)
	fmt.Fprintf(w, "video layers received (keyframe sizes) %v, as the server reported %v\n", r.Layers, r.ServerLayers)
	printAdaptation(w, r)
	printDelay(w, "video", r.Delay.Video)
	printDelay(w, "audio", r.Delay.Audio)
	printSyscalls(w, r.ServerSyscalls)
	if r.Churn > 0 {
		fmt.Fprintf(w, "churn: %d leave/join cycles\n", r.Churn)
	}
	if r.Reconnects > 0 {
		fmt.Fprintf(w, "rejoins: %d; welcome after the loss p50 %.0f ms, max %.0f ms; media again p50 %.0f ms, max %.0f ms\n",
			r.Reconnects, r.ReconnectMillis.P50, r.ReconnectMillis.Max, r.ResumeMillis.P50, r.ResumeMillis.Max)
	}
	if n, sum, most := eventCounts(r); n > 0 {
		fmt.Fprintf(w, "room events (signaling, not negotiation) per WebSocket peer: mean %.1f, most %d\n", float64(sum)/float64(n), most)
	}
	if r.Server.Available {
		fmt.Fprintf(w, "server: %.2f CPU-s (%.3f per 1000 packets out, %.0f packets out per CPU-s), %.0f packets in, %.0f packets out, %.1f MB out\n",
			r.Server.CPUSeconds, r.Server.CPUPer1000, r.Server.PacketsPerCPUSecond, r.Server.PacketsIn, r.Server.PacketsOut, r.Server.BytesOut/1e6)
		fmt.Fprintf(w, "server: %.0f keyframe requests from subscribers, %.0f sent to publishers\n", r.Server.PLIsReceived, r.Server.PLIsSent)
		fmt.Fprintf(w, "server: %.0f MiB resident (%+.1f MiB over the run, %.2f MiB per peer), %.0f goroutines\n",
			r.Server.RSSBytes/(1<<20), r.Server.RSSGrowth/(1<<20), r.Server.RSSPerPeer/(1<<20), r.Server.Goroutines)
	} else {
		fmt.Fprintln(w, "server: no /metrics (figures absent)")
	}
	if len(r.Nodes) > 1 {
		printNodes(w, r.Nodes)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "peer\ttracks\tpackets\tlost\tkbit/s\tfreezes\tfull media ms\tswitches\tpadding\tlayers\t")
	for _, s := range r.Subscribers {
		full := "-"
		if s.FullMediaMillis >= 0 {
			full = fmt.Sprintf("%.0f", s.FullMediaMillis)
		}
		fmt.Fprintf(tw, "%s\t%d/%d\t%d\t%d\t%.0f\t%d\t%s\t%d\t%d\t%s\t\n", s.Name, s.Tracks, s.Expected, s.Packets, s.Lost, s.BitrateKbps, s.Freezes,
			full, s.Switches, s.Padding, strings.Join(s.Layers, ","))
	}
	_ = tw.Flush()
	for _, f := range r.Failures {
		fmt.Fprintln(w, "failed:", f)
	}
}

// printAdaptation shows how the server's bandwidth allocation served the
// subscribers: how soon they had full media, pauses and resumes, padding.
func printAdaptation(w io.Writer, r *loadtest.Report) {
	fmt.Fprintf(w, "full media (every track on its layer, then 99 %% of the video published) after joining: p50 %.0f ms, p95 %.0f ms, max %.0f ms; never: %d\n",
		r.FullMediaMillis.P50, r.FullMediaMillis.P95, r.FullMediaMillis.Max, r.NotFull)
	perTrack := 0.0
	if r.ForwardedTracks > 0 {
		perTrack = float64(r.Switches) / float64(r.ForwardedTracks)
	}
	fmt.Fprintf(w, "pauses and resumes for bandwidth: %d over %d forwarded tracks (%.2f per track, most %d); keyframe requests to publishers %d\n",
		r.Switches, r.ForwardedTracks, perTrack, r.MaxSwitches, r.KeyframeRequests)
	fmt.Fprintf(w, "padding (bandwidth probes): %d packets, %.2f %% of %d media packets\n", r.PaddingPackets, r.PaddingPercent, r.MediaPackets)
	var parts []string
	if kbps, ok := r.DeliveredKbps(0, 40); ok {
		parts = append(parts, fmt.Sprintf("first 40 s %.1f Mbit/s", kbps/1000))
	}
	if kbps, ok := r.DeliveredKbps(60, math.Inf(1)); ok {
		parts = append(parts, fmt.Sprintf("from 60 s on %.1f Mbit/s", kbps/1000))
	}
	if len(parts) > 0 {
		fmt.Fprintf(w, "media delivered to all subscribers, from the first join: %s\n", strings.Join(parts, ", "))
	}
}

// printDelay shows the forwarding delay of one kind of track.
func printDelay(w io.Writer, kind string, d loadtest.DelayStats) {
	if d.Packets == 0 {
		return
	}
	fmt.Fprintf(w, "forwarding delay, %s (publisher send to subscriber read): p50 %.2f ms, p95 %.2f ms, p99 %.2f ms, max %.1f ms; %d of %d packets matched",
		kind, d.Millis.P50, d.Millis.P95, d.Millis.P99, d.Millis.Max, d.Matched, d.Packets)
	if d.Repairs > 0 {
		fmt.Fprintf(w, ", %d repairs apart (p50 %.1f ms)", d.Repairs, d.RepairMillis.P50)
	}
	fmt.Fprintln(w)
}

// printSyscalls shows the server's system calls and context switches per
// forwarded packet, if they were counted.
func printSyscalls(w io.Writer, s *loadtest.SyscallStats) {
	if s == nil {
		return
	}
	calls := "n/a"
	if s.SyscallsCounted {
		calls = fmt.Sprintf("%.2f", s.SyscallsPerPacket)
	}
	fmt.Fprintf(w, "server pid %d over %.1f s of media, %.0f packets out, %.0f per CPU-second: system calls per forwarded packet %s, context switches %.3f (%s)\n",
		s.PID, s.Seconds, s.PacketsOut, s.PacketsPerCPUSecond, calls, s.SwitchesPerPacket, s.Source)
	if s.Note != "" {
		fmt.Fprintln(w, "server counts:", s.Note)
	}
}

// printNodes shows what each node served.

// printNodes shows what each node served, and what it relayed to and from
// the other nodes of a cluster (rates over the time between the scrapes).
func printNodes(w io.Writer, nodes []loadtest.NodeStats) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "node\tjoined\tjoin p50 ms\tjoin p95 ms\tpackets received\tlost\tkbit/s\trejoins from\trejoins to\t"+
		"server CPU-s\tpackets out\tCPU µs per packet out\trelay out kbit/s\trelay in kbit/s\t")
	for _, n := range nodes {
		cpu, out, perPacket, relayOut, relayIn := "-", "-", "-", "-", "-"
		if s := n.Server; s.Available {
			cpu, out = fmt.Sprintf("%.2f", s.CPUSeconds), fmt.Sprintf("%.0f", s.PacketsOut)
			perPacket = fmt.Sprintf("%.1f", s.CPUPer1000*1000)
			if s.Seconds > 0 {
				relayOut = fmt.Sprintf("%.0f", s.Relay.BytesOut*8/1000/s.Seconds)
				relayIn = fmt.Sprintf("%.0f", s.Relay.BytesIn*8/1000/s.Seconds)
			}
		}
		fmt.Fprintf(tw, "%s\t%d/%d\t%.0f\t%.0f\t%d\t%d\t%.0f\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t\n", n.URL, n.Joined, n.Participants,
			n.JoinMillis.P50, n.JoinMillis.P95, n.Packets, n.Lost, n.ReceivedKbps, n.RejoinsFrom, n.RejoinsTo, cpu, out, perPacket, relayOut, relayIn)
	}
	_ = tw.Flush()
}

// eventCounts sums the room events of the WebSocket subscribers (WHEP
// viewers have no signaling).
func eventCounts(r *loadtest.Report) (n, sum, most int) {
	for _, s := range r.Subscribers {
		if s.Events > 0 {
			n++
			sum += s.Events
			most = max(most, s.Events)
		}
	}
	return n, sum, most
}
