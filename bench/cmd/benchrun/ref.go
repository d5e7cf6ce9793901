package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// runRef is the reference server: the least a net/http program can do for
// the same requests, so hextrack's figures have a same-machine,
// same-run yardstick.
//
//	GET /304          ETag "v1"; If-None-Match "v1" → 304
//	GET /sse          an idle SSE stream (headers, one comment, flush)
//	GET /sub/{topic}  SSE stream of what is published on topic
//	POST /pub/{topic} body forwarded as one SSE data frame to topic's subscribers
func runRef(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("ref", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address (port 0: a free one, printed)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var mu sync.Mutex
	subs := map[string]map[chan []byte]bool{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /304", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Write([]byte(`{"v":1}`))
	})
	sseHead := func(w http.ResponseWriter) {
		h := w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		w.Write([]byte(": open\n\n"))
		w.(http.Flusher).Flush()
	}
	mux.HandleFunc("GET /sse", func(w http.ResponseWriter, r *http.Request) {
		sseHead(w)
		<-r.Context().Done()
	})
	mux.HandleFunc("GET /sub/{topic}", func(w http.ResponseWriter, r *http.Request) {
		t := r.PathValue("topic")
		ch := make(chan []byte, 64)
		mu.Lock()
		if subs[t] == nil {
			subs[t] = map[chan []byte]bool{}
		}
		subs[t][ch] = true
		mu.Unlock()
		defer func() { mu.Lock(); delete(subs[t], ch); mu.Unlock() }()
		sseHead(w)
		for {
			select {
			case <-r.Context().Done():
				return
			case m := <-ch:
				w.Write([]byte("event: trip.location\ndata: "))
				w.Write(m)
				w.Write([]byte("\n\n"))
				w.(http.Flusher).Flush()
			}
		}
	})
	mux.HandleFunc("POST /pub/{topic}", func(w http.ResponseWriter, r *http.Request) {
		var buf [1024]byte
		n, _ := readAll(r, buf[:])
		m := []byte(strings.TrimSpace(string(buf[:n])))
		mu.Lock()
		for ch := range subs[r.PathValue("topic")] {
			select {
			case ch <- m:
			default:
			}
		}
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "ref: listening on", ln.Addr())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { <-ctx.Done(); srv.Close() }()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func readAll(r *http.Request, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		k, err := r.Body.Read(buf[n:])
		n += k
		if err != nil {
			return n, nil
		}
	}
	return n, nil
}
