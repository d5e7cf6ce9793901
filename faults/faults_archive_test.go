//go:build faults

package faults_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/hextrack/hextrack/faults"
)

// openArchive gives the scenario a schema of its own in the test
// PostgreSQL (HEXTRACK_TEST_DATABASE_URL, else faults.DefaultPostgres),
// dropped at the end. PostgreSQL unreachable skips the scenario, or fails
// it when CI=true: CI must run it.
func openArchive(t *testing.T) *faults.Archive {
	t.Helper()
	base := os.Getenv("HEXTRACK_TEST_DATABASE_URL")
	if base == "" {
		base = faults.DefaultPostgres
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := faults.OpenArchive(ctx, base)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL is required in CI (HEXTRACK_TEST_DATABASE_URL or %s): %v", faults.DefaultPostgres, err)
		}
		t.Skipf("PostgreSQL unreachable (set HEXTRACK_TEST_DATABASE_URL): %v", err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("drop schema %s: %v", a.Schema, err)
		}
	})
	return a
}

// archiveState reads the nodes' /readyz: how many answer 200 with the
// archive named degraded, how many 200 "ready" with it ok, and the first
// other answer.
func (e *env) archiveState() (degraded, ready int, other string) {
	for _, n := range e.nodes {
		if p := n.Proc(); p == nil || !p.Alive() {
			continue
		}
		st, body := n.Ready(e.ctx)
		var r struct {
			Status     string            `json:"status"`
			Degraded   []string          `json:"degraded"`
			Components map[string]string `json:"components"`
		}
		_ = json.Unmarshal([]byte(body), &r)
		switch {
		case st == http.StatusOK && r.Status == "degraded" && slices.Contains(r.Degraded, "archive"):
			degraded++
		case st == http.StatusOK && r.Status == "ready" && r.Components["archive"] == "ok":
			ready++
		case other == "":
			other = fmt.Sprintf("%s: %d %s", n.Name, st, body)
		}
	}
	return degraded, ready, other
}

// sumMetric adds an unlabelled sample over the live nodes.
func (e *env) sumMetric(name string) float64 {
	var s float64
	for _, n := range e.nodes {
		if p := n.Proc(); p != nil && p.Alive() {
			s += max(n.Metric(e.ctx, name), 0)
		}
	}
	return s
}

// maxMetric is the largest unlabelled sample over the live nodes.
func (e *env) maxMetric(name string) float64 {
	m := 0.0
	for _, n := range e.nodes {
		if p := n.Proc(); p != nil && p.Alive() {
			m = max(m, n.Metric(e.ctx, name))
		}
	}
	return m
}

// archiveTail stops the load (verify) and then waits until every entry of
// the load's streams is archived exactly once; it returns the load's
// result and the archive's.
func (e *env) archiveTail(a *faults.Archive, fail *[]string) (faults.Result, faults.ArchiveResult) {
	r := e.verify()
	_, ar, err := a.WaitArchived(e.ctx, e.rdb, e.prefix, e.load.Check.Topics(), faults.ID{}, 30*time.Second)
	if err != nil {
		*fail = append(*fail, "archive after the run: "+err.Error())
	}
	if ar.InStreams == 0 {
		*fail = append(*fail, "no stream entries to compare the archive with")
	}
	return r, ar
}

// TestFaultDatabaseDown (f): the archive's PostgreSQL is cut off from
// every node (a Proxy in front of it) under load for 10 s. Ingest, SSE and
// actions keep working, /readyz answers 200 with the archive degraded, and
// once the database is back the archive catches up: every entry of the
// load's streams archived exactly once. Recovery: from the restore until
// the archive holds every event published before it.
func TestFaultDatabaseDown(t *testing.T) {
	a := openArchive(t)
	proxy, err := faults.NewProxy(a.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	e, _ := newEnv(t, "database-down", envConfig{cluster: false, nodes: 2, pairs: 16, proxied: -1,
		env: []string{"HEXTRACK_DATABASE_URL=" + a.URL(proxy.Addr)}})
	topics := e.load.Check.Topics()
	var fail []string
	// The pipeline works before the fault.
	if _, r, err := a.WaitArchived(e.ctx, e.rdb, e.prefix, topics, faults.IDAt(time.Now()), 20*time.Second); err != nil {
		t.Fatalf("archive not keeping up before the fault: %v (%s)", err, r)
	}

	e.load.Mark()
	proxy.Cut()
	cut := time.Now()
	time.Sleep(2 * time.Second)
	// While it is down: ready (200), the archive degraded; nothing lands.
	degraded, _, other := e.archiveState()
	if degraded != len(e.nodes) {
		fail = append(fail, fmt.Sprintf("/readyz with the database down: %d of %d nodes 200 degraded [archive]; %s", degraded, len(e.nodes), other))
	}
	n0, err := a.Count(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := e.load.Recovered(e.ctx, 20*time.Second)
	if err != nil {
		fail = append(fail, "load with the database down: "+err.Error())
	}
	time.Sleep(time.Until(cut.Add(10 * time.Second)))
	backlog := e.maxMetric("hextrack_archive_backlog_seconds")
	errs := e.sumMetric("hextrack_archive_pipeline_errors_total")
	n1, err := a.Count(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n1 != n0 {
		fail = append(fail, fmt.Sprintf("the archive grew from %d to %d rows while cut off: the cut did not hold", n0, n1))
	}
	if errs == 0 {
		fail = append(fail, "no pipeline errors while the database was down")
	}
	for _, n := range e.nodes {
		if !n.Proc().Alive() {
			fail = append(fail, n.Name+" crashed while the database was down")
		}
	}

	if err := proxy.Restore(); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	outage := back.Sub(cut)
	done, ar, err := a.WaitArchived(e.ctx, e.rdb, e.prefix, topics, faults.IDAt(back), 45*time.Second)
	catchUp := done.Sub(back)
	if err != nil {
		fail = append(fail, "catch-up: "+err.Error())
	}
	// /readyz follows the database back.
	deadline := time.Now().Add(10 * time.Second)
	_, ready, other := e.archiveState()
	for ready < len(e.nodes) && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		_, ready, other = e.archiveState()
	}
	if ready != len(e.nodes) {
		fail = append(fail, fmt.Sprintf("/readyz after the database came back: %d of %d ready; %s", ready, len(e.nodes), other))
	}
	time.Sleep(2 * time.Second) // traffic after the recovery

	r, final := e.archiveTail(a, &fail)
	extra := fmt.Sprintf(" outage=%s load_recovery=%s readyz_degraded=%d/%d backlog_max=%.1fs pipeline_errors=%.0f archive_events=%d archive_lost=%d archive_dup=%d archive_unknown=%d caught_up_events=%d client_errors=%v",
		faults.Round(outage), faults.Round(rec), degraded, len(e.nodes), backlog, errs, final.Archived, final.Missing, final.Duplicated, final.Unknown, ar.InStreams, e.load.ErrorCounts())
	if !final.Complete() {
		fail = append(fail, "archive: "+final.String())
	}
	e.record("f", "database-down", faults.Round(catchUp), extra, fail, r, final.Missing+final.Unknown, final.Duplicated)
}

// TestFaultKillArchiver (g): three nodes on one archive; the node holding
// the most archive shards (hextrack_archive_shards_held) is killed with
// SIGKILL while it archives under load. The others take its shards once
// its leases expire (LeaseTTL, 10 s) and every entry of the load's streams
// ends up archived exactly once. Recovery: from the kill until the archive
// holds every event published before it.
func TestFaultKillArchiver(t *testing.T) {
	a := openArchive(t)
	e, _ := newEnv(t, "kill-archiver", envConfig{cluster: false, nodes: 3, pairs: 16, proxied: -1,
		env: []string{"HEXTRACK_DATABASE_URL=" + a.URL("")}})
	topics := e.load.Check.Topics()
	var fail []string
	if _, r, err := a.WaitArchived(e.ctx, e.rdb, e.prefix, topics, faults.IDAt(time.Now()), 20*time.Second); err != nil {
		t.Fatalf("archive not keeping up before the fault: %v (%s)", err, r)
	}
	// The archiver: the node holding the most shards.
	var victim *faults.Node
	var held, total float64
	for deadline := time.Now().Add(10 * time.Second); ; {
		victim, held, total = nil, 0, 0
		for _, n := range e.nodes {
			h := n.Metric(e.ctx, "hextrack_archive_shards_held")
			total += max(h, 0)
			if h > held {
				victim, held = n, h
			}
		}
		if victim != nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if victim == nil {
		t.Fatal("no node holds an archive shard (hextrack_archive_shards_held)")
	}
	archivedBefore := victim.Metric(e.ctx, "hextrack_archive_events_total")

	e.load.Mark()
	victim.Kill()
	killed := time.Now()
	rec, err := e.load.Recovered(e.ctx, 20*time.Second)
	if err != nil {
		fail = append(fail, "load after the kill: "+err.Error())
	}
	// The survivors take every shard.
	var takeover time.Duration
	for deadline := killed.Add(30 * time.Second); ; {
		if e.sumMetric("hextrack_archive_shards_held") >= total {
			takeover = time.Since(killed)
			break
		}
		if time.Now().After(deadline) {
			fail = append(fail, fmt.Sprintf("the survivors hold %.0f of %.0f shards 30s after the kill", e.sumMetric("hextrack_archive_shards_held"), total))
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	done, _, err := a.WaitArchived(e.ctx, e.rdb, e.prefix, topics, faults.IDAt(killed), 45*time.Second)
	catchUp := done.Sub(killed)
	if err != nil {
		fail = append(fail, "catch-up: "+err.Error())
	}
	time.Sleep(2 * time.Second) // traffic after the recovery

	r, final := e.archiveTail(a, &fail)
	extra := fmt.Sprintf(" victim=%s victim_shards=%.0f/%.0f victim_archived=%.0f load_recovery=%s takeover=%s archive_events=%d archive_lost=%d archive_dup=%d archive_unknown=%d",
		victim.Name, held, total, archivedBefore, faults.Round(rec), faults.Round(takeover), final.Archived, final.Missing, final.Duplicated, final.Unknown)
	if !final.Complete() {
		fail = append(fail, "archive: "+final.String())
	}
	e.record("g", "kill-archiver", faults.Round(catchUp), extra, fail, r, final.Missing+final.Unknown, final.Duplicated)
}
