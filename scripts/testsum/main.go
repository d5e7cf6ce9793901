// Command testsum reads `go test -json` on stdin and prints what `go test`
// prints without -v (a line per package; a failed test's output in full),
// then every skipped test with the reason it gave, so that nothing `make
// test` left out goes unnoticed. It exits 1 when a test or package failed.
//
//	go test -json ./... | go run ./scripts/testsum -skipped test-artifacts/skipped.txt
//
// With -skipped FILE the skipped tests are appended to FILE instead (make
// test prints them at its very end, with the browser tests').
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// event is one line of `go test -json` (test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

type key struct{ pkg, test string }

func main() {
	skippedFile := flag.String("skipped", "", "also append the skipped tests to this file")
	flag.Parse()
	skipped, failed := summarize(os.Stdin, os.Stdout)
	switch {
	case *skippedFile != "":
		if err := appendLines(*skippedFile, skipped); err != nil {
			fmt.Fprintln(os.Stderr, "testsum:", err)
			failed = true
		}
	case len(skipped) > 0:
		fmt.Printf("\nskipped %d tests:\n", len(skipped))
		for _, s := range skipped {
			fmt.Println("  " + s)
		}
	}
	if failed {
		os.Exit(1)
	}
}

// summarize prints the package lines and failures of the events read from
// r, and returns the skipped tests ("pkg Test: reason") and whether
// anything failed.
func summarize(r io.Reader, w io.Writer) (skipped []string, failed bool) {
	out := map[key][]string{} // output of tests still running
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Action == "" {
			fmt.Fprintln(w, sc.Text()) // not an event (a build error line)
			continue
		}
		k := key{e.Package, e.Test}
		switch e.Action {
		case "build-output": // Go 1.24+: the compiler's messages
			fmt.Fprint(w, e.Output)
		case "build-fail":
			failed = true
		case "output":
			out[k] = append(out[k], e.Output)
		case "pass":
			delete(out, k)
			if e.Test == "" {
				fmt.Fprintf(w, "ok  \t%s\t%s\n", e.Package, dur(e.Elapsed))
			}
		case "skip":
			if e.Test == "" {
				fmt.Fprintf(w, "?   \t%s\t[no test files]\n", e.Package)
			} else {
				skipped = append(skipped, fmt.Sprintf("%s %s: %s", short(e.Package), e.Test, reason(out[k])))
			}
			delete(out, k)
		case "fail":
			failed = true
			if e.Test == "" {
				for _, l := range out[k] { // package output: a panic, a build failure, TestMain
					if !strings.HasPrefix(l, "FAIL") && !strings.HasPrefix(l, "ok ") {
						fmt.Fprint(w, l)
					}
				}
				fmt.Fprintf(w, "FAIL\t%s\t%s\n", e.Package, dur(e.Elapsed))
			} else {
				for _, l := range out[k] {
					fmt.Fprint(w, l)
				}
			}
			delete(out, k)
		}
	}
	return skipped, failed
}

// reason is what a skipped test logged (t.Skip's message), on one line.
func reason(lines []string) string {
	var parts []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		parts = append(parts, t)
	}
	if len(parts) == 0 {
		return "(no reason given)"
	}
	return strings.Join(parts, " | ")
}

func short(pkg string) string {
	if i := strings.Index(pkg, "/hextrack/hextrack/"); i >= 0 {
		return pkg[i+len("/hextrack/hextrack/"):]
	}
	return pkg
}

func dur(s float64) string {
	return (time.Duration(s * float64(time.Second))).Round(time.Millisecond).String()
}

func appendLines(name string, lines []string) error {
	f, err := os.OpenFile(name, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	for _, l := range lines {
		fmt.Fprintln(f, "go test: "+l)
	}
	return f.Close()
}
