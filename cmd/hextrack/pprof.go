//go:build pprof

package main

import (
	"net/http"
	_ "net/http/pprof" // profiles for make bench
	"os"
)

// With -tags pprof (make bench builds the server so), HEXTRACK_PPROF_ADDR
// serves net/http/pprof on a side listener. Release builds have no
// profiler in them.
func init() {
	if a := os.Getenv("HEXTRACK_PPROF_ADDR"); a != "" {
		go func() { _ = http.ListenAndServe(a, nil) }()
	}
}
