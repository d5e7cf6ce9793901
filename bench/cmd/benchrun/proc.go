package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a child process the bench started and must stop: a server
// (redis-server, hextrack, the reference) in its own process group.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
}

// childAttr puts a child in its own process group (stopped as a group) and
// has the kernel send it sig if the bench dies without stopping it
// (SIGKILL included, where no clean-up of ours runs).
func childAttr(sig syscall.Signal) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: sig}
}

func startProc(name, logPath string, env []string, bin string, args ...string) (*proc, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = childAttr(syscall.SIGTERM)
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: lf, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	return p, nil
}

// command is a load-generator child (riders, ingest, redis-benchmark): its
// own process group, killed as a group when ctx ends (a scenario's
// deadline, a signal).
func command(ctx context.Context, bin string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.SysProcAttr = childAttr(syscall.SIGKILL)
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// killGroup kills a started command's process group and reaps it.
func killGroup(cmd *exec.Cmd) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Wait()
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group, then SIGKILL after grace.
func (p *proc) stop(grace time.Duration) {
	if p == nil {
		return
	}
	pg := -p.cmd.Process.Pid
	_ = syscall.Kill(pg, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(pg, syscall.SIGKILL)
		<-p.done
	}
	p.log.Close()
}

// waitPort waits until addr accepts TCP connections: at most d, while ctx
// lasts and p (when not nil) runs.
func waitPort(ctx context.Context, p *proc, addr string, d time.Duration) error {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if p != nil && p.exited() {
			return fmt.Errorf("%s exited before listening on %s (see %s)", p.name, addr, p.log.Name())
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return fmt.Errorf("waiting for %s to listen on %s: %w", p.name, addr, err)
		}
	}
	return fmt.Errorf("%s not listening on %s after %s", p.name, addr, d)
}

// waitHTTP waits until GET url answers 200: at most d, while ctx lasts and
// p runs.
func waitHTTP(ctx context.Context, p *proc, url string, d time.Duration) error {
	end := time.Now().Add(d)
	hc := &http.Client{Timeout: 2 * time.Second}
	for time.Now().Before(end) {
		if p.exited() {
			return fmt.Errorf("%s exited before %s answered (see %s)", p.name, url, p.log.Name())
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		r, err := hc.Do(req)
		if err == nil {
			io.Copy(io.Discard, r.Body)
			r.Body.Close()
			if r.StatusCode == 200 {
				return nil
			}
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("waiting for %s: %w", url, err)
		}
	}
	return fmt.Errorf("%s not ready after %s", url, d)
}

// rssKiB is a process's resident set (VmRSS) in KiB.
func rssKiB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return 0
}

// cpuTicks is utime+stime of a process, in clock ticks (1/100 s).
func cpuTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+2:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return u + st
}

// openFiles counts a process's open file descriptors.
func openFiles(pid int) int {
	es, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(es)
}

// fetch GETs url into path (pprof profiles).
func fetch(ctx context.Context, url, path string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer r.Body.Close()
	if r.StatusCode != 200 {
		return fmt.Errorf("GET %s: %s", url, r.Status)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, r.Body)
	return err
}

// pprofTop runs `go tool pprof -top` on a profile and returns its first n
// entry lines.
func pprofTop(bin, profile string, n int, extra ...string) string {
	args := append([]string{"tool", "pprof", "-top", "-nodecount=" + strconv.Itoa(n)}, extra...)
	args = append(args, bin, profile)
	out, err := exec.Command("go", args...).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("pprof: %v: %s", err, out)
	}
	return string(out)
}

// cpuShare is the CPU time the processes of a run used, by part: what a
// row's work costs, wherever it ran (the server, the database, Redis,
// this process's load and receivers).
type cpuShare struct {
	parts map[string]func() int64
	start map[string]int64
}

func newCPUShare(parts map[string]func() int64) *cpuShare {
	c := &cpuShare{parts: parts, start: map[string]int64{}}
	for k, f := range parts {
		c.start[k] = f()
	}
	return c
}

// perOp returns each part's CPU milliseconds per n operations, and the
// sum.
func (c *cpuShare) perOp(n int) map[string]float64 {
	out := map[string]float64{}
	sum := 0.0
	for k, f := range c.parts {
		ms := float64(f()-c.start[k]) * 10 / float64(max(n, 1)) // ticks are 10 ms
		out[k] = round1(ms * 1000)                              // µs
		sum += ms * 1000
	}
	out["total"] = round1(sum)
	return out
}

// commTicks sums utime+stime of every process whose command name is comm
// (PostgreSQL's backends: a backend that exits during the run takes its
// time with it, so this is a floor).
func commTicks(comm string) int64 {
	es, _ := os.ReadDir("/proc")
	var n int64
	for _, e := range es {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err == nil && strings.TrimSpace(string(b)) == comm {
			n += cpuTicks(pid)
		}
	}
	return n
}
