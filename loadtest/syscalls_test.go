package loadtest

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/needtool"
)

// childEnv makes the test binary a child that makes a known number of
// system calls on request (TestSyscallChild).
const childEnv = "CONFAB_LOADTEST_SYSCALL_CHILD"

const childSyscalls = 20000

// TestSyscallChild is not a test: run as a child (childEnv set), it says
// "ready", and on each line it reads makes childSyscalls getppid calls
// (never served from the vDSO), sleeps 1 ms twenty times (each a context
// switch) and says "done", until its input ends.
func TestSyscallChild(t *testing.T) {
	if os.Getenv(childEnv) == "" {
		t.Skip("the child of TestPerfCountsAChildsSyscalls")
	}
	in := bufio.NewScanner(os.Stdin)
	os.Stdout.WriteString("ready\n")
	for in.Scan() {
		for range childSyscalls {
			syscall.Getppid()
		}
		for range 20 {
			time.Sleep(time.Millisecond)
		}
		os.Stdout.WriteString("done\n")
	}
}

// child is a running TestSyscallChild.
type child struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

func startChild(t *testing.T) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSyscallChild$")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	t.Cleanup(func() {
		in.Close()
		_ = cmd.Wait()
	})
	c.expect(t, "ready")
	return c
}

func (c *child) expect(t *testing.T, line string) {
	t.Helper()
	if !c.out.Scan() || c.out.Text() != line {
		t.Fatalf("child said %q (%v), want %q", c.out.Text(), c.out.Err(), line)
	}
}

// work has the child make its system calls and switches, and waits.
func (c *child) work(t *testing.T) {
	t.Helper()
	if _, err := io.WriteString(c.in, "go\n"); err != nil {
		t.Fatal(err)
	}
	c.expect(t, "done")
}

// TestPerfCountsAChildsSyscalls: perf stat attached to a child counts
// the child's 20,000 system calls (plus a few hundred of the Go runtime's
// and the pipe's) and its context switches.
func TestPerfCountsAChildsSyscalls(t *testing.T) {
	perf := needtool.Path(t, "perf", "linux-perf")
	c := startChild(t)
	p, err := startPerf(perf, c.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	c.work(t)
	counts, err := p.stop()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("perf: %.0f system calls, %.0f context switches", counts.syscalls, counts.switches)
	if counts.syscalls < childSyscalls || counts.syscalls > childSyscalls*1.25 {
		t.Errorf("perf counted %.0f system calls, want %d and a few more", counts.syscalls, childSyscalls)
	}
	if counts.switches < 10 {
		t.Errorf("perf counted %.0f context switches, want at least 10 of the 20 sleeps", counts.switches)
	}
	if _, err := startPerf(perf, 1<<30); err == nil {
		t.Error("perf attached to a process that does not exist")
	}
}

// TestProcCountsAChildsSwitches: without perf, the switches of every
// thread of the child are read from /proc.
func TestProcCountsAChildsSwitches(t *testing.T) {
	c := startChild(t)
	before, err := procSwitches(c.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	c.work(t)
	after, err := procSwitches(c.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if after-before < 10 {
		t.Errorf("/proc says %d context switches, want at least 10 of the 20 sleeps", after-before)
	}
	if _, err := procSwitches(1 << 30); err == nil {
		t.Error("switches read for a process that does not exist")
	}
}

func TestParsePerf(t *testing.T) {
	for _, c := range []struct {
		name, out string
		want      perfCounts
		ok        bool
	}{
		{"counts", "765353,,raw_syscalls:sys_enter,499582029,100.00,,\n1040,,context-switches,499582029,100.00,,\n", perfCounts{765353, 1040}, true},
		{"idle process", "<not counted>,,raw_syscalls:sys_enter,0,100.00,,\n<not counted>,,context-switches,0,100.00,,\n", perfCounts{}, true},
		{"unknown event", "event syntax error: 'raw_syscalls:sys_enter'\n", perfCounts{}, false},
		{"one event missing", "10,,context-switches,1,100.00,,\n", perfCounts{}, false},
		{"not supported", "<not supported>,,raw_syscalls:sys_enter,0,100.00,,\n1,,context-switches,1,100.00,,\n", perfCounts{}, false},
	} {
		got, err := parsePerf(c.out)
		if (err == nil) != c.ok || (c.ok && got != c.want) {
			t.Errorf("%s: %+v, %v; want %+v, ok %v", c.name, got, err, c.want, c.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "perf stat") {
			t.Errorf("%s: error %q does not say it was perf", c.name, err)
		}
	}
}
