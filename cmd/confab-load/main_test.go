package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/confab-sfu/confab/internal/testserver"
	"github.com/confab-sfu/confab/loadtest"
	"github.com/confab-sfu/confab/room"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestMeetingWritesReports(t *testing.T) {
	_, url := testserver.Start(t, room.Config{})
	dir := t.TempDir()
	jsonFile, htmlFile := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.html")
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"-url", url, "-scenario", "meeting", "-participants", "3", "-duration", "2s",
		"-ramp", "0", "-json", jsonFile, "-html", htmlFile, "-server-pid", strconv.Itoa(os.Getpid())}, &out, &errOut)
	if err != nil {
		t.Fatalf("run: %v\n%s%s", err, out.String(), errOut.String())
	}
	if errOut.Len() != 0 {
		t.Errorf("not a terminal, yet stderr got %q", errOut.String())
	}
	for _, want := range []string{"scenario meeting: 3/3 peers joined", "join time", "loss after repair 0.000 %", "p0-0", "p0-2", "server:",
		"forwarding delay, video (publisher send to subscriber read): p50", "forwarding delay, audio",
		fmt.Sprintf("server pid %d over", os.Getpid()), "context switches"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	b, err := os.ReadFile(jsonFile)
	if err != nil {
		t.Fatal(err)
	}
	var rep loadtest.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("JSON report: %v", err)
	}
	if rep.Joined != 3 || len(rep.Subscribers) != 3 || rep.Packets == 0 || len(rep.JoinSamples) != 3 {
		t.Errorf("JSON report: %+v", rep)
	}
	if sc := rep.ServerSyscalls; sc == nil || sc.PID != os.Getpid() || sc.PacketsOut <= 0 || sc.SwitchesPerPacket <= 0 {
		t.Errorf("JSON report, server system calls: %+v", sc)
	}
	// Three publishers in one room: every track is told apart by its
	// publisher's id, so the packets find their sends (all of them on an
	// idle machine; one delayed past the 3 s window would not).
	for kind, d := range map[string]loadtest.DelayStats{"video": rep.Delay.Video, "audio": rep.Delay.Audio} {
		if d.Matched == 0 || float64(d.Matched) < 0.9*float64(d.Packets) || d.Millis.P50 <= 0 {
			t.Errorf("JSON report, %s forwarding delay: %+v", kind, d)
		}
	}
	page, err := os.ReadFile(htmlFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"forwarding delay, video p50 / p95 / p99", "server system calls / context switches per forwarded packet"} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("HTML report lacks %q", want)
		}
	}
	if !bytes.Contains(page, []byte("<svg")) || bytes.Contains(page, []byte("<script")) || bytes.Contains(page, []byte("http://")) {
		t.Errorf("HTML report is not a self-contained page with charts")
	}
}

// Two nodes: a room on each (-spread rooms), the per-node table, and the
// nodes in the JSON and HTML reports.
func TestTwoNodes(t *testing.T) {
	_, a := testserver.Start(t, room.Config{})
	_, b := testserver.Start(t, room.Config{})
	dir := t.TempDir()
	jsonFile, htmlFile := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.html")
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"-url", a + ", " + b, "-scenario", "meeting", "-participants", "2", "-rooms", "2",
		"-spread", "rooms", "-reconnect", "-video=false", "-duration", "2s", "-ramp", "0", "-json", jsonFile, "-html", htmlFile}, &out, &errOut)
	if err != nil {
		t.Fatalf("run: %v\n%s%s", err, out.String(), errOut.String())
	}
	for _, want := range []string{"scenario meeting: 4/4 peers joined", "rejoins from", a + "  ", b + "  ", "2/2"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	b2, err := os.ReadFile(jsonFile)
	if err != nil {
		t.Fatal(err)
	}
	var rep loadtest.Report
	if err := json.Unmarshal(b2, &rep); err != nil {
		t.Fatalf("JSON report: %v", err)
	}
	if len(rep.Nodes) != 2 || rep.Nodes[0].URL != a || rep.Nodes[1].Joined != 2 || rep.Nodes[1].Packets == 0 {
		t.Errorf("JSON nodes: %+v", rep.Nodes)
	}
	page, err := os.ReadFile(htmlFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(page, []byte(`id="nodes"`)) || !bytes.Contains(page, []byte(b)) {
		t.Error("the HTML report has no nodes table")
	}
}

func TestFailedJoinsExitNonZero(t *testing.T) {
	// A port nothing listens on: every join fails, and says so.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	var out, errOut bytes.Buffer
	err = run(context.Background(), []string{"-url", "http://" + addr, "-scenario", "lecture", "-viewers", "2", "-duration", "1s", "-ramp", "0"}, &out, &errOut)
	if err == nil {
		t.Fatal("run succeeded without a server")
	}
	if !strings.Contains(out.String(), "failed: presenter-0:") || !strings.Contains(out.String(), "0/3 peers joined") {
		t.Errorf("the failures are not reported:\n%s", out.String())
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-layer", "huge"},
		{"-loopback", "maybe"},
		{"-url", "not a url"},
		{"-scenario", "party"},
		{"-scenario", "meeting", "-participants", "1"},
		{"-spread", "diagonal"},
		{"-url", "http://127.0.0.1:1,not a url"},
		{"-url", "http://127.0.0.1:1,http://127.0.0.1:1"},
		{"-url", "http://127.0.0.1:1,http://127.0.0.1:2", "-server-pid", "1"},
	} {
		var out, errOut bytes.Buffer
		if err := run(context.Background(), args, &out, &errOut); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}
