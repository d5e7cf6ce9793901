package main

import (
	"context"
	"errors"
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
