package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hextrack/hextrack/internal/redistest"
	"github.com/hextrack/hextrack/internal/shareddata"
	"github.com/hextrack/hextrack/sim/metrics"
)

// hextrackBin is the server binary built once for the package's tests.
var hextrackBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "drivesim-test")
	if err != nil {
		panic(err)
	}
	// HEXTRACK_BIN runs a prebuilt server instead of building one.
	hextrackBin = os.Getenv("HEXTRACK_BIN")
	if hextrackBin == "" {
		hextrackBin = filepath.Join(dir, "hextrack")
		out, err := exec.Command("go", "build", "-o", hextrackBin, "github.com/hextrack/hextrack/cmd/hextrack").CombinedOutput()
		if err != nil {
			os.Stderr.Write(out)
			panic(err)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// mustRunServer starts the real server binary on a free port, on the real
// Redis with a key prefix of the test's own (removed afterwards), and
// returns its base URL.
func mustRunServer(tb testing.TB, env ...string) string {
	tb.Helper()
	rdb, prefix := redistest.MustOpen(tb)
	cmd := exec.Command(hextrackBin, "serve")
	cmd.Env = append(os.Environ(), "HEXTRACK_ADDR=127.0.0.1:0", "HEXTRACK_REDIS_URL="+redistest.URL(),
		"HEXTRACK_KEY_PREFIX="+prefix, "HEXTRACK_DEV=1", "HEXTRACK_LOG_LEVEL=warn",
		"HEXTRACK_DATA_DIR="+tb.TempDir()) // its archive and dev secret, not the user's
	cmd.Env = append(cmd.Env, env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		redistest.Clean(rdb, prefix)
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			if testing.Verbose() {
				tb.Log("hextrack: " + line)
			}
			if _, addr, ok := strings.Cut(line, "hextrack listening on "); ok {
				found <- strings.TrimSpace(addr)
			}
		}
	}()
	select {
	case u := <-found:
		return u
	case <-time.After(20 * time.Second):
		tb.Fatal("hextrack did not start")
	}
	return ""
}

// fastFleet lets a sped-up fleet ping: at speed-up X a simulated driver
// sends X fixes per wall second, beyond the server's default per-driver
// ping rate (10/s) that a real phone never reaches.
const fastFleet = "HEXTRACK_PING_RATE=100"

// dataFile is the path of a file of the repository's testdata/ (see shareddata.Path).
func dataFile(tb testing.TB, name string) string {
	tb.Helper()
	return shareddata.Path(tb, name)
}

func readReport(t *testing.T, path string) metrics.Report {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r metrics.Report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	// The fixed shape other tools read.
	var shape map[string]map[string]any
	_ = json.Unmarshal(b, &shape)
	for obj, keys := range map[string][]string{
		"trips": {"requested", "completed", "cancelled", "expired"}, "events": {"received", "lost", "duplicated"},
		"latency_ms": {"p50", "p90", "p99", "max"}, "pings": {"sent", "acked", "rejected"}} {
		for _, k := range keys {
			if _, ok := shape[obj][k]; !ok {
				t.Errorf("report lacks %s.%s", obj, k)
			}
		}
	}
	return r
}

// TestRunEndToEnd: 20 drivers and 5 riders on the synthetic city against
// the real server; short trips and a high speed-up so that trips complete
// in seconds of wall time.
func TestRunEndToEnd(t *testing.T) {
	for _, tc := range []struct {
		name, transport, rider, dispatch string
	}{
		{"rest drivers, sse riders", "rest", "sse", "server"},
		{"mixed drivers, long-poll riders", "mixed", "longpoll", "server"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// DRIVESIM_TEST_DISPATCH=sim tries a server without dispatch.
			if v := os.Getenv("DRIVESIM_TEST_DISPATCH"); v != "" {
				tc.dispatch = v
			}
			url := mustRunServer(t, fastFleet)
			out := filepath.Join(t.TempDir(), "report.json")
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), []string{"run", "--server", url, "--drivers", "20", "--riders", "5",
				"--transport", tc.transport, "--rider-transport", tc.rider, "--dispatch", tc.dispatch,
				"--speedup", "40", "--duration", "480s", "--trip-min-m", "300", "--trip-max-m", "900",
				"--rider-think", "2s", "--pickup-dwell", "5s", "--accept-delay", "1s", "--accept-prob", "1",
				"--cancel-prob", "0.1", "--change-prob", "0.3", "--chat-prob", "0.5",
				"--offline-rate", "20", "--offline-duration", "10s", "--zones", "15", "--quiet", "--json", out}, &stdout, &stderr)
			if err != nil {
				t.Fatalf("run: %v\n%s", err, stderr.String())
			}
			t.Log("\n" + stdout.String())
			r := readReport(t, out)
			if r.Trips.Requested == 0 || r.Trips.Completed == 0 {
				t.Errorf("no trips completed: %+v", r.Trips)
			}
			if r.Events.Lost != 0 || r.Events.Duplicated != 0 || r.Events.OutOfOrder != 0 {
				t.Errorf("durable events lost %d, duplicated %d, out of order %d", r.Events.Lost, r.Events.Duplicated, r.Events.OutOfOrder)
			}
			if r.Events.Received == 0 || r.Events.Checked == 0 {
				t.Errorf("no durable events checked: %+v", r.Events)
			}
			if r.Latency.Count == 0 || r.Latency.Max <= 0 || r.AckLatency.Count == 0 {
				t.Errorf("latencies not recorded: ping→rider %+v, ack %+v", r.Latency, r.AckLatency)
			}
			if r.Pings.Acked == 0 || r.Pings.Acked > r.Pings.Sent {
				t.Errorf("pings %+v", r.Pings)
			}
			// The only rejections are the deliberate outliers (0.2% of
			// fixes): an honest sped-up car must never look like a jump,
			// however loaded the machine.
			if r.Pings.Unexpected != 0 {
				t.Errorf("%d of %d pings rejected unexpectedly: %+v", r.Pings.Unexpected, r.Pings.Sent, r.Pings.RejectedBy)
			}
			if r.Pings.Outliers > 0 && r.Pings.RejectedBy["implausible_jump"].Deliberate == 0 {
				t.Errorf("none of %d deliberate outliers rejected: %+v", r.Pings.Outliers, r.Pings.RejectedBy)
			}
			// Zone events: every enter and exit the drivers' own fixes show
			// was published, in order (the oracle is the simulator's own
			// geometry, sim/zonecheck).
			if z := r.Zones; z == nil || z.Owed == 0 || z.Missing != 0 || z.OutOfOrder != 0 {
				t.Errorf("zone events: %+v", z)
			}
			if tc.dispatch == "server" && (r.Actions.Offers == 0 || r.Actions.Accepted == 0) {
				t.Errorf("the server's offers did not reach the drivers: %+v", r.Actions)
			}
		})
	}
}

// TestReplayPorto replays 5 real Porto trips: the server's positions of
// the drivers follow the traces within GPS tolerance, and the trips
// complete.
func TestReplayPorto(t *testing.T) {
	trips := dataFile(t, "porto_trips.csv")
	pbf := dataFile(t, "porto.osm.pbf")
	url := mustRunServer(t, fastFleet)
	out := filepath.Join(t.TempDir(), "report.json")
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dispatch := "server"
	if v := os.Getenv("DRIVESIM_TEST_DISPATCH"); v != "" {
		dispatch = v
	}
	err := run(ctx, []string{"replay", "--server", url, "--trips", trips, "--map", pbf, "--limit", "5", "--dispatch", dispatch,
		"--speedup", "40", "--gps-sigma", "5", "--quiet", "--json", out}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("replay: %v\n%s", err, stderr.String())
	}
	t.Log("\n" + stdout.String())
	r := readReport(t, out)
	if r.Trips.Requested != 5 || r.Trips.Completed != 5 {
		t.Errorf("trips %+v, want 5 requested and completed", r.Trips)
	}
	if r.Events.Lost != 0 || r.Events.Duplicated != 0 {
		t.Errorf("events %+v", r.Events)
	}
	var extra struct {
		Track metrics.Latency `json:"track_error_m"`
	}
	b, _ := os.ReadFile(out)
	var raw struct {
		Extra json.RawMessage `json:"extra"`
	}
	_ = json.Unmarshal(b, &raw)
	if err := json.Unmarshal(raw.Extra, &extra); err != nil {
		t.Fatal(err)
	}
	// σ = 5 m jitter: the server's position is the fix it got, so it stays
	// within a few σ of the trace. The comparisons are taken every 500 ms
	// of wall time when the driver's position moved: about 60 on a quiet
	// machine, 15 once under a load average of 30; 10 still makes the
	// check mean something.
	if extra.Track.Count < 10 || extra.Track.P90 > 15 || extra.Track.Max > 40 {
		t.Errorf("server positions off the trace: %+v", extra.Track)
	}
}

func TestErrors(t *testing.T) {
	url := mustRunServer(t)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"wrong server", []string{"run", "--server", "http://127.0.0.1:1", "--duration", "1s", "--quiet"}, "cannot reach the server"},
		{"bad token", []string{"run", "--server", url, "--secret", "this-is-not-the-servers-secret-0123456789", "--duration", "1s", "--quiet"}, "rejected our token"},
		{"unreadable map", []string{"run", "--server", url, "--map", "/nonexistent.pbf", "--quiet"}, "map /nonexistent.pbf"},
		{"unreadable trips", []string{"replay", "--server", url, "--trips", "/nonexistent.csv", "--quiet"}, "trips file"},
		{"unknown transport", []string{"run", "--server", url, "--transport", "carrier-pigeon", "--quiet"}, "unknown transport"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tc.args, &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

// TestInterruptStillReports: cancelling the context (Ctrl-C) ends the run
// and the report is still printed and written.
func TestInterruptStillReports(t *testing.T) {
	url := mustRunServer(t)
	out := filepath.Join(t.TempDir(), "report.json")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if err := run(ctx, []string{"run", "--server", url, "--drivers", "5", "--riders", "1", "--quiet", "--json", out}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	r := readReport(t, out)
	if !r.Interrupted || r.Pings.Sent == 0 || !strings.Contains(stdout.String(), "interrupted") {
		t.Fatalf("report after interrupt: %+v\n%s", r, stdout.String())
	}
}

// TestRunDeliveries: multi-stop deliveries end to end: each rider reads
// its drops' PINs through a share link, each driver completes the drops
// where it is with them (the geotag check passing); all 8 drops of the 4
// deliveries complete, no PIN is refused, no durable event is lost; with
// 10 zones, no zone event is missing or out of order.
func TestRunDeliveries(t *testing.T) {
	url := mustRunServer(t, fastFleet)
	out := filepath.Join(t.TempDir(), "report.json")
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"run", "--server", url, "--drivers", "8", "--riders", "4",
		"--deliveries", "4", "--stops", "3", "--speedup", "60", "--duration", "1500s", "--trip-min-m", "300", "--trip-max-m", "900",
		"--rider-think", "2s", "--pickup-dwell", "5s", "--accept-delay", "1s", "--accept-prob", "1",
		"--cancel-prob", "0", "--offline-rate", "0", "--outlier-rate", "0", "--zones", "10", "--quiet", "--json", out}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	t.Log("\n" + stdout.String())
	r := readReport(t, out)
	// The run: deliveries and zones together, zone events
	// checked against the drivers' fixes.
	if z := r.Zones; z == nil || z.Missing != 0 || z.OutOfOrder != 0 {
		t.Errorf("zone events: %+v", z)
	}
	d := r.Deliveries
	if d.Trips != 4 || d.PINsRead != 8 {
		t.Fatalf("deliveries %+v, want 4 trips with 8 PINs read", d)
	}
	if d.StopsCompleted != 8 || d.PINsEntered != 8 || d.PINsRefused != 0 {
		t.Fatalf("deliveries %+v, want the 8 drops completed with their PINs, none refused", d)
	}
	if r.Events.Lost != 0 || r.Events.Duplicated != 0 || r.Events.OutOfOrder != 0 {
		t.Errorf("durable events lost %d, duplicated %d, out of order %d", r.Events.Lost, r.Events.Duplicated, r.Events.OutOfOrder)
	}
	for _, e := range r.ErrorSample {
		if strings.Contains(e.Message, "complete stop") {
			t.Errorf("stop completion failed ×%d: %s", e.Count, e.Message)
		}
	}
}
