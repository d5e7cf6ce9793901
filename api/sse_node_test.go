package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hextrack/hextrack/api"
	"github.com/hextrack/hextrack/client"
	"github.com/hextrack/hextrack/trip"
)

// nodeSSE returns the node binary and the sse-node test dir, failing under
// CI=true when either is missing (install: npm ci in api/testdata/sse-node).
func nodeSSE(t *testing.T) (string, string) {
	t.Helper()
	dir, _ := filepath.Abs("testdata/sse-node")
	node, err := exec.LookPath("node")
	_, merr := os.Stat(filepath.Join(dir, "node_modules", "eventsource"))
	if err != nil || merr != nil {
		msg := "node or api/testdata/sse-node/node_modules missing (run npm ci there)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return node, dir
}

// TestNodeEventSource: the `eventsource` npm package follows a trip while
// the server drops its connection twice; it reconnects by itself, resumes
// with Last-Event-ID and ends with exactly the published durable events.
func TestNodeEventSource(t *testing.T) {
	node, dir := nodeSSE(t)
	e := newTripEnv(t, api.StreamConfig{Retry: 150 * time.Millisecond})
	ctx := context.Background()
	snap, rc := e.newTrip(t)
	id := snap.Trip.ID
	const msgs = 40
	cmd := exec.Command(node, filepath.Join(dir, "watch.mjs"), e.eventsURL(id)+"?access_token="+rc.Token(), "40")
	cmd.Dir = dir
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	type line struct {
		Kind, Type, ID, Data string
	}
	var mu sync.Mutex
	var lines []line
	snapshot := make(chan struct{}, 1)
	opens := make(chan struct{}, 100) // one per (re)open
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var l line
			if json.Unmarshal(sc.Bytes(), &l) != nil {
				continue
			}
			mu.Lock()
			lines = append(lines, l)
			mu.Unlock()
			switch {
			case l.Kind == "open":
				opens <- struct{}{}
			case l.Kind == "event" && l.Type == "snapshot":
				select {
				case snapshot <- struct{}{}:
				default:
				}
			}
		}
	}()
	// awaitOpen waits for the client's next (re)open.
	awaitOpen := func(what string) {
		t.Helper()
		select {
		case <-opens:
		case <-time.After(20 * time.Second):
			t.Fatalf("timed out after 20 s waiting for the node client's %s", what)
		}
	}
	awaitOpen("first open")
	select {
	case <-snapshot:
	case <-time.After(20 * time.Second):
		t.Fatal("timed out after 20 s waiting for the node client's snapshot")
	}
	// dropConns also closes the test's idle keep-alive connections; a POST
	// on one the transport has not yet seen closed fails with EOF (net/http
	// does not retry a POST), so messages go on connections of their own.
	sender := client.New(e.ts.URL, rc.Token(), &http.Client{Transport: &http.Transport{DisableKeepAlives: true}})
	for i := range msgs {
		if _, err := sender.SendMessage(ctx, id, "m"+string(rune('a'+i/26))+string(rune('a'+i%26)), "hello"); err != nil {
			t.Fatal(err)
		}
		switch i {
		case 10:
			e.dropConns() // the server drops every stream
		case 25:
			// A drop while the client is still reconnecting from the first
			// would find no stream to drop: wait for its reconnect.
			awaitOpen("reconnect after the first drop")
			e.dropConns()
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("timed out after 30 s waiting for the node client to receive every event")
	}
	history, _, err := e.feed.Read(ctx, trip.Topic(id), snap.FeedPosition, 1000)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	var got []string
	opened := 0
	for _, l := range lines {
		switch {
		case l.Kind == "open":
			opened++
		case l.Kind == "event" && l.Type == "trip.message":
			got = append(got, l.ID)
		case l.Kind == "event" && (l.Type == "reset" || l.Type == "snapshot") && opened > 1:
			t.Fatalf("a resume fell back to %s", l.Type)
		}
	}
	var want []string
	for _, ev := range history {
		want = append(want, ev.ID)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("node got %d events %v\nwant %d %v", len(got), got, len(want), want)
	}
	if opened < 3 {
		t.Fatalf("node opened %d times; the drops did not force reconnects", opened)
	}
}
