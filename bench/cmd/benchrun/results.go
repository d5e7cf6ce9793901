package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"text/tabwriter"
	"time"
)

// Ref is a scenario's reference figure, measured in the same run.
type Ref struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
}

// Scenario is one row of the results.
type Scenario struct {
	Name      string         `json:"name"`
	Metric    string         `json:"metric"`
	Value     float64        `json:"value"`
	Unit      string         `json:"unit"`
	Target    string         `json:"target"`
	Met       bool           `json:"met"`
	Reference Ref            `json:"reference"`
	Command   string         `json:"command"`
	Notes     string         `json:"notes,omitempty"`
	Extra     map[string]any `json:"extra,omitempty"`
}

// Results is bench/results.json.
type Results struct {
	Machine   map[string]any `json:"machine"`
	Started   time.Time      `json:"started"`
	Seconds   float64        `json:"seconds"`
	Scenarios []Scenario     `json:"scenarios"`
	Profiles  map[string]any `json:"profiles,omitempty"`
}

// recorder keeps the run's results: the rows the scenarios add (logged
// as they come), the server's profiles with their top entries (taken
// beside a measured window), and writes results.json and the table.
type recorder struct {
	out    string // results.json
	dir    string // profiles
	server string // the hextrack binary pprof reads symbols from
	pprof  string // the server's pprof side listener
	res    Results
	mu     sync.Mutex // res.Profiles
}

func newRecorder(c config, pprofURL string) *recorder {
	return &recorder{out: c.out, dir: c.dir, server: c.server, pprof: pprofURL,
		res: Results{Machine: machine(), Started: time.Now().UTC(), Profiles: map[string]any{}}}
}

// benchrunBin is how the rows' commands name this binary.
const benchrunBin = "bench/bin/benchrun"

// rerun is the command that runs scenario only again.
func rerun(only string) string {
	return "scripts/bench.sh -only " + only
}

func (r *recorder) add(s Scenario) {
	if s.Command == "" {
		s.Command = rerun(s.Name)
	}
	r.res.Scenarios = append(r.res.Scenarios, s)
	mark := "MISS"
	if s.Met {
		mark = "ok"
	}
	logf("%s %s = %.3g %s (target %s: %s; reference %s = %.3g %s)", s.Name, s.Metric, s.Value, s.Unit, s.Target, mark,
		s.Reference.Name, s.Reference.Value, s.Reference.Unit)
}

// failed records a scenario that did not finish: a row with metric
// "error" whose note says why.
func (r *recorder) failed(name string, err error) {
	r.res.Scenarios = append(r.res.Scenarios, Scenario{Name: name, Metric: "error", Notes: err.Error(), Command: rerun(name)})
}

// profile takes a CPU profile of the server for d and an allocation
// profile, saves both and remembers their top entries.
func (r *recorder) profile(ctx context.Context, name string, d time.Duration) <-chan struct{} {
	done := make(chan struct{})
	go func() { defer close(done); r.takeProfile(ctx, name, d) }()
	return done
}

func (r *recorder) takeProfile(ctx context.Context, name string, d time.Duration) {
	cpu := filepath.Join(r.dir, name+".cpu.pprof")
	allocs := filepath.Join(r.dir, name+".allocs.pprof")
	url := r.pprof
	if err := fetch(ctx, fmt.Sprintf("%sprofile?seconds=%d", url, int(d.Seconds())), cpu); err != nil {
		logf("profile %s: %v", name, err)
		return
	}
	if err := fetch(ctx, url+"allocs", allocs); err != nil {
		logf("profile %s: %v", name, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.res.Profiles[name] = map[string]string{"cpu": cpu, "allocs": allocs,
		"cpu_top":         pprofTop(r.server, cpu, 25),
		"cpu_top_cum":     pprofTop(r.server, cpu, 25, "-cum"),
		"alloc_space_top": pprofTop(r.server, allocs, 15, "-sample_index=alloc_space")}
}

// heapProfile saves the server's heap profile as name and remembers its
// top entries by in-use space (what idle connections hold); a profile
// that can't be fetched is left out.
func (r *recorder) heapProfile(ctx context.Context, name string) {
	heap := filepath.Join(r.dir, name+".heap.pprof")
	if err := fetch(ctx, r.pprof+"heap", heap); err == nil {
		r.mu.Lock()
		r.res.Profiles[name] = map[string]string{"heap": heap,
			"inuse_space_top": pprofTop(r.server, heap, 20, "-sample_index=inuse_space")}
		r.mu.Unlock()
	}
}

// keepOthers merges the run into the results file already there: a run
// of some scenarios (-only) replaces their rows (matched by name, in
// place; new rows at the end) and keeps every other row, profile and
// machine figure (the other scenarios' load averages) as it was.
func (r *recorder) keepOthers() error {
	b, err := os.ReadFile(r.out)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var old Results
	if err := json.Unmarshal(b, &old); err != nil {
		return fmt.Errorf("%s: %w (move it away to start afresh)", r.out, err)
	}
	mine := map[string][]Scenario{}
	var order []string
	for _, s := range r.res.Scenarios {
		if _, ok := mine[s.Name]; !ok {
			order = append(order, s.Name)
		}
		mine[s.Name] = append(mine[s.Name], s)
	}
	var out []Scenario
	placed := map[string]bool{}
	for _, s := range old.Scenarios {
		rows, ok := mine[s.Name]
		if !ok {
			out = append(out, s)
			continue
		}
		if !placed[s.Name] {
			out = append(out, rows...)
			placed[s.Name] = true
		}
	}
	for _, name := range order {
		if !placed[name] {
			out = append(out, mine[name]...)
		}
	}
	r.res.Scenarios = out
	for k, v := range old.Profiles {
		if _, ok := r.res.Profiles[k]; !ok {
			r.res.Profiles[k] = v
		}
	}
	// The machine's figures of the other scenarios (their load averages).
	for k, v := range old.Machine {
		if _, ok := r.res.Machine[k]; !ok {
			r.res.Machine[k] = v
		}
	}
	return nil
}

func (r *recorder) write(stdout io.Writer) error {
	f, err := os.Create(r.out)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(f)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r.res); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	printTable(stdout, r.res)
	fmt.Fprintf(stdout, "\nwritten %s (%.0f s); logs and profiles in %s\n", r.out, r.res.Seconds, r.dir)
	return nil
}

func printTable(w io.Writer, r Results) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tmetric\tvalue\ttarget\tmet\treference")
	for _, s := range r.Scenarios {
		met := "MISS"
		if s.Met {
			met = "yes"
		}
		if s.Target == "none" {
			met = "-"
		}
		ref := ""
		if s.Reference.Name != "" {
			ref = fmt.Sprintf("%s: %s %s", s.Reference.Name, num(s.Reference.Value), s.Reference.Unit)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s %s\t%s\t%s\t%s\n", s.Name, s.Metric, num(s.Value), s.Unit, s.Target, met, ref)
	}
	tw.Flush()
	for _, s := range r.Scenarios {
		if !s.Met && s.Target != "none" {
			fmt.Fprintf(w, "\nMISS %s %s — profile tops in results.json \"profiles\"\n", s.Name, s.Metric)
		}
	}
}

func num(f float64) string {
	switch {
	case f >= 1000:
		return fmt.Sprintf("%.0f", f)
	case f >= 100:
		return fmt.Sprintf("%.1f", f)
	default:
		return fmt.Sprintf("%.3g", f)
	}
}
