package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestFreePortsDistinct(t *testing.T) {
	ps, err := freePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	if ps[0] == ps[1] || ps[1] == ps[2] || ps[0] == ps[2] || ps[0] == 0 {
		t.Fatalf("ports %v", ps)
	}
}

// TestAwaitNamesWhatItWaitedFor: a wait past the scenario's deadline says
// what it waited for, how long, and which deadline.
func TestAwaitNamesWhatItWaitedFor(t *testing.T) {
	ctx, cancel := withDeadline(context.Background(), "idle", 100*time.Millisecond)
	defer cancel()
	block := make(chan struct{})
	defer close(block)
	_, err := await(ctx, "riders ref: connecting 19000 SSE riders", func() (int, error) { <-block; return 0, nil })
	if err == nil || !errors.Is(err, errDeadline) || !strings.Contains(err.Error(), "riders ref: connecting 19000 SSE riders: still waiting after") ||
		!strings.Contains(err.Error(), "idle: 100ms") {
		t.Fatalf("err = %v", err)
	}
	if v, err := await(context.Background(), "x", func() (int, error) { return 7, nil }); v != 7 || err != nil {
		t.Fatalf("await = %d, %v", v, err)
	}
}

// TestCommandKillsItsGroup: a load generator's children go with it when
// its context ends.
func TestCommandKillsItsGroup(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cmd := command(ctx, "sh", "-c", "sleep 60 & echo $!; wait")
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var buf [32]byte
	n, _ := out.Read(buf[:])
	var pid int
	for _, c := range strings.TrimSpace(string(buf[:n])) {
		pid = pid*10 + int(c-'0')
	}
	cancel()
	_ = cmd.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("grandchild %d still alive after the group kill", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRidersNoneConnectedFails: a riders process that opened none of its
// streams fails the run at once with what it waited for, and its process
// group is gone afterwards.
func TestRidersNoneConnectedFails(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	script := filepath.Join(dir, "fake-benchrun")
	body := "#!/bin/sh\nsleep 60 &\necho $! > " + pidFile + "\necho 'connected 0 40'\nwait\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	sc := &fanoutScenario{rig{servers: &servers{cfg: config{dir: dir, fanDur: time.Second}, self: script}}}
	_, err := sc.riders(context.Background(), "ref", os.Getpid(), 40, false, "-ref", "10")
	if err == nil || !strings.Contains(err.Error(), "riders ref: connected 0 of 40 after") {
		t.Fatalf("err = %v", err)
	}
	t.Log(err)
	raw, _ := os.ReadFile(pidFile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(raw)))
	if pid == 0 {
		t.Fatal("no grandchild pid")
	}
	for deadline := time.Now().Add(5 * time.Second); syscall.Kill(pid, 0) == nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the riders process's child %d outlived the run", pid)
		}
	}
}
