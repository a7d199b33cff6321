package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// SyscallStats are the server's system calls and context switches during
// the media window, per packet it forwarded then (confab_packets_out_total),
// for a server on this machine (Config.ServerPID).
type SyscallStats struct {
	PID int `json:"pid"`
	// Source is "perf" (perf stat on raw_syscalls:sys_enter and
	// context-switches, every thread) or "proc" (no perf: voluntary and
	// nonvoluntary switches of the threads in /proc/PID/task; no system
	// calls).
	Source   string  `json:"source"`
	Seconds  float64 `json:"seconds"`
	Syscalls float64 `json:"syscalls"`
	// SyscallsCounted is false when only /proc could be read.
	SyscallsCounted   bool    `json:"syscallsCounted"`
	ContextSwitches   float64 `json:"contextSwitches"`
	PacketsOut        float64 `json:"packetsOut"`
	SyscallsPerPacket float64 `json:"syscallsPerPacket"`
	SwitchesPerPacket float64 `json:"contextSwitchesPerPacket"`
	// CPUSeconds is the server's CPU time in the window (its
	// process_cpu_seconds_total), PacketsPerCPUSecond what it forwarded
	// per CPU-second then: the forwarding cost without the joins'.
	CPUSeconds          float64 `json:"cpuSeconds"`
	PacketsPerCPUSecond float64 `json:"packetsPerCpuSecond"`
	// Note says why perf was not used, if it was not.
	Note string `json:"note,omitempty"`
}

// perfEvents are what perf stat counts: every system call entry, and
// every context switch of the process's threads.
const perfEvents = "raw_syscalls:sys_enter,context-switches"

// syscallProbe counts a server's system calls and switches from start to
// stop, with perf if it runs, else from /proc.
type syscallProbe struct {
	pid    int
	node   string
	start  time.Time
	before ServerStats
	perf   *perfStat // nil: /proc
	note   string
	procAt uint64 // switches at the start, from /proc
}

// startSyscallProbe starts counting for cfg.ServerPID; nil without one.
func startSyscallProbe(ctx context.Context, cfg Config) *syscallProbe {
	if cfg.ServerPID <= 0 {
		return nil
	}
	p := &syscallProbe{pid: cfg.ServerPID, node: cfg.nodes[0]}
	path, err := exec.LookPath("perf")
	if err == nil {
		p.perf, err = startPerf(path, p.pid)
	}
	if err != nil {
		p.note = err.Error()
		p.procAt, _ = procSwitches(p.pid)
	}
	p.start, p.before = time.Now(), scrapeServer(ctx, p.node)
	return p
}

// stop ends the count and divides it by the packets forwarded meanwhile.
func (p *syscallProbe) stop(ctx context.Context) *SyscallStats {
	if p == nil {
		return nil
	}
	after := scrapeServer(ctx, p.node)
	st := &SyscallStats{PID: p.pid, Seconds: time.Since(p.start).Seconds(), Note: p.note}
	if after.Available && p.before.Available {
		st.PacketsOut = after.PacketsOut - p.before.PacketsOut
		st.CPUSeconds = after.CPUSeconds - p.before.CPUSeconds
	}
	if p.perf != nil {
		st.Source = "perf"
		c, err := p.perf.stop()
		if err == nil {
			st.Syscalls, st.SyscallsCounted, st.ContextSwitches = c.syscalls, true, c.switches
		} else {
			st.Note = err.Error()
		}
	} else {
		st.Source = "proc"
		n, err := procSwitches(p.pid)
		if err != nil {
			st.Note = strings.TrimPrefix(st.Note+"; "+err.Error(), "; ")
		} else if n >= p.procAt {
			st.ContextSwitches = float64(n - p.procAt)
		}
	}
	if st.PacketsOut > 0 {
		st.SyscallsPerPacket = st.Syscalls / st.PacketsOut
		st.SwitchesPerPacket = st.ContextSwitches / st.PacketsOut
	}
	if st.CPUSeconds > 0 {
		st.PacketsPerCPUSecond = st.PacketsOut / st.CPUSeconds
	}
	return st
}

// perfStat is a perf stat attached to a process until stopped.
type perfStat struct {
	cmd    *exec.Cmd
	out    bytes.Buffer // perf writes its counts to stderr
	exited chan error
}

type perfCounts struct{ syscalls, switches float64 }

// startPerf attaches perf stat to pid; it fails if perf exits at once
// (no such process, no permission, events unknown).
func startPerf(path string, pid int) (*perfStat, error) {
	p := &perfStat{exited: make(chan error, 1)}
	p.cmd = exec.Command(path, "stat", "-x", ",", "-e", perfEvents, "-p", strconv.Itoa(pid))
	p.cmd.Stderr = &p.out
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("perf: %w", err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	// perf reports a bad pid or missing permission within moments.
	select {
	case err := <-p.exited:
		return nil, fmt.Errorf("perf stat -p %d ended at once (%v): %s", pid, err, strings.TrimSpace(p.out.String()))
	case <-time.After(200 * time.Millisecond):
	}
	return p, nil
}

// stop interrupts perf (it then prints its counts) and reads them.
func (p *perfStat) stop() (perfCounts, error) {
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return perfCounts{}, errors.New("perf stat did not stop on SIGINT")
	}
	return parsePerf(p.out.String())
}

// parsePerf reads perf stat -x , output: value,unit,event,...
func parsePerf(out string) (perfCounts, error) {
	var c perfCounts
	var got int
	for _, line := range strings.Split(out, "\n") {
		f := strings.Split(line, ",")
		if len(f) < 3 {
			continue
		}
		var dst *float64
		switch f[2] {
		case "raw_syscalls:sys_enter":
			dst = &c.syscalls
		case "context-switches":
			dst = &c.switches
		default:
			continue
		}
		// "<not counted>": the process did not run at all; "<not
		// supported>": the kernel cannot count it.
		if f[0] == "<not counted>" {
			got++
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return c, fmt.Errorf("perf stat: %s: %q", f[2], f[0])
		}
		*dst = v
		got++
	}
	if got != 2 {
		return c, fmt.Errorf("perf stat printed no counts for %s: %q", perfEvents, strings.TrimSpace(out))
	}
	return c, nil
}

// procSwitches adds up the voluntary and nonvoluntary context switches of
// every thread of pid (the process's own line counts its main thread
// only). Threads that ended are missing: Go keeps its threads.
func procSwitches(pid int) (uint64, error) {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	if len(tasks) == 0 {
		return 0, fmt.Errorf("process %d: no threads in /proc (is it running here?)", pid)
	}
	var total uint64
	for _, path := range tasks {
		f, err := os.Open(path)
		if err != nil {
			continue // the thread ended meanwhile
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			name, value, ok := strings.Cut(sc.Text(), ":")
			if ok && (name == "voluntary_ctxt_switches" || name == "nonvoluntary_ctxt_switches") {
				n, _ := strconv.ParseUint(strings.TrimSpace(value), 10, 64)
				total += n
			}
		}
		f.Close()
	}
	return total, nil
}
