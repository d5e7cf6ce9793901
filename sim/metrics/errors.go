package metrics

import (
	"slices"
	"sync"
)

// Errors keeps the first few distinct error messages for the report.
type Errors struct {
	mu   sync.Mutex
	seen map[string]int
}

// Add records err.
func (e *Errors) Add(err error) {
	if err == nil {
		return
	}
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200]
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.seen == nil {
		e.seen = map[string]int{}
	}
	if _, ok := e.seen[msg]; ok || len(e.seen) < 20 {
		e.seen[msg]++
	}
}

// Top returns the recorded messages with their counts, most frequent first.
func (e *Errors) Top() []ErrorCount {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]ErrorCount, 0, len(e.seen))
	for m, n := range e.seen {
		out = append(out, ErrorCount{m, n})
	}
	slices.SortFunc(out, func(a, b ErrorCount) int { return b.Count - a.Count })
	return out
}

// ErrorCount is one distinct error and how often it happened.
type ErrorCount struct {
	Message string `json:"message"`
	Count   int    `json:"count"`
}
