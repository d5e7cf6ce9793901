package sink

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/hextrack/hextrack/sim/eventcheck"
)

// Config configures a Sink. Zero values are documented per field.
type Config struct {
	// Secret is the endpoint's signing secret, "whsec_<base64>". Required.
	Secret string
	// Fail is the share of requests answered 500 (0..1). Zero: none.
	Fail float64
	// Stall holds a share (StallShare) of requests this long before
	// answering 204 (if the sender still waits). Zero: no stalls.
	Stall time.Duration
	// StallShare is the share of requests stalled when Stall is set.
	// Zero: 0.1.
	StallShare float64
	// FailFor answers 500 to every request for this long from the first
	// request received, then recovers. Zero: never.
	FailFor time.Duration
	// Types are the event types compared with a trip's history: exact
	// types, "prefix.*" or "*" (the endpoint's filter). Empty: all.
	Types []string
	// History reads trips' histories for the gap check. Nil: no gap check.
	History History
	// Seed seeds the choice of failed and stalled requests. Zero: random.
	Seed uint64
	// MaxBody bounds a delivery's body. Zero: 1 MiB.
	MaxBody int64
	// Now is the clock of FailFor. Nil: time.Now.
	Now func() time.Time
}

// Sink receives webhooks: an http.Handler. Safe for concurrent use.
type Sink struct {
	cfg   Config
	wh    *standardwebhooks.Webhook
	check eventcheck.Checker

	mu    sync.Mutex
	rnd   *rand.Rand
	first time.Time           // first request (FailFor)
	keys  map[string]struct{} // trips and topics delivered

	received, badSig, malformed, idMismatch, failed, stalled, abandoned, delivered atomic.Int64
}

// New returns a Sink; an error when the secret is not whsec_<base64>.
func New(cfg Config) (*Sink, error) {
	if !strings.HasPrefix(cfg.Secret, "whsec_") {
		return nil, errors.New("sink: the secret must be whsec_<base64>")
	}
	wh, err := standardwebhooks.NewWebhook(cfg.Secret)
	if err != nil {
		return nil, fmt.Errorf("sink: secret: %w", err)
	}
	if cfg.Fail < 0 || cfg.Fail > 1 || cfg.StallShare < 0 || cfg.StallShare > 1 {
		return nil, errors.New("sink: fail and stall shares must be within [0, 1]")
	}
	if cfg.StallShare == 0 {
		cfg.StallShare = 0.1
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 1 << 20
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	return &Sink{cfg: cfg, wh: wh, rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), keys: map[string]struct{}{}}, nil
}

// envelope is the part of a delivery's body the sink reads.
type envelope struct {
	ID    string `json:"id"`
	Type  string `json:"type"`
	Topic string `json:"topic"`
	Trip  string `json:"trip"`
}

// key is what orders the event: its trip ("trip:<id>") or its topic.
func (e envelope) key() string {
	if e.Trip != "" {
		return "trip:" + e.Trip
	}
	return e.Topic
}

// ServeHTTP takes one delivery: 401 for a bad signature, 400 for a body
// that is not an event, 500 when told to fail, else (after a stall, if
// told to) 204.
func (s *Sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.received.Add(1)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
	if err != nil {
		s.malformed.Add(1)
		http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if err := s.wh.Verify(body, r.Header); err != nil {
		s.badSig.Add(1)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var ev envelope
	if err := json.Unmarshal(body, &ev); err != nil || ev.key() == "" || ev.Type == "" {
		s.malformed.Add(1)
		http.Error(w, "not an event envelope (id, type, topic or trip)", http.StatusBadRequest)
		return
	}
	if _, ok := eventcheck.ParseID(ev.ID); !ok || ev.ID == "" {
		s.malformed.Add(1)
		http.Error(w, "event id is not <ms>-<seq>", http.StatusBadRequest)
		return
	}
	if wid := r.Header.Get(standardwebhooks.HeaderWebhookID); wid != ev.ID && wid != ev.Topic+"/"+ev.ID {
		s.idMismatch.Add(1) // counted; the event is still taken
	}
	fail, stall := s.decide()
	if fail {
		s.failed.Add(1)
		http.Error(w, "told to fail", http.StatusInternalServerError)
		return
	}
	if stall {
		s.stalled.Add(1)
		t := time.NewTimer(s.cfg.Stall)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			s.abandoned.Add(1) // the sender gave up: not delivered
			return
		}
	}
	s.delivered.Add(1)
	s.mu.Lock()
	s.keys[ev.key()] = struct{}{}
	s.mu.Unlock()
	s.check.Observe(ev.key(), ev.ID)
	w.WriteHeader(http.StatusNoContent)
}

// decide draws whether this request fails or stalls.
func (s *Sink) decide() (fail, stall bool) {
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.first.IsZero() {
		s.first = now
	}
	if s.cfg.FailFor > 0 && now.Sub(s.first) < s.cfg.FailFor {
		return true, false
	}
	if s.cfg.Fail > 0 && s.rnd.Float64() < s.cfg.Fail {
		return true, false
	}
	return false, s.cfg.Stall > 0 && s.rnd.Float64() < s.cfg.StallShare
}

// typeChecked: events of type t are compared with the history.
func (s *Sink) typeChecked(t string) bool {
	if len(s.cfg.Types) == 0 {
		return true
	}
	for _, p := range s.cfg.Types {
		if p == "*" || p == t || strings.HasSuffix(p, ".*") && strings.HasPrefix(t, p[:len(p)-1]) {
			return true
		}
	}
	return false
}
