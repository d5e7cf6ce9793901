package main

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hextrack/hextrack/api/webhooks"
	"github.com/hextrack/hextrack/webhook"
	"github.com/hextrack/hextrack/webhook/webhookriver"
	"github.com/hextrack/hextrack/webhook/webhooksql"
)

// webhookFlags registers --webhook-allow-hosts (the outbound webhooks'
// trusted hosts, returned to be split after parsing) and
// --webhook-pause-after.
func webhookFlags(fs *flag.FlagSet, c *Config) *string {
	fs.DurationVar(&c.WebhookPauseAfter, "webhook-pause-after", envDur("HEXTRACK_WEBHOOK_PAUSE_AFTER", time.Hour),
		"pause a webhook endpoint whose every delivery attempt failed for this long; its deliveries wait until ops resume it (HEXTRACK_WEBHOOK_PAUSE_AFTER)")
	return fs.String("webhook-allow-hosts", os.Getenv("HEXTRACK_WEBHOOK_ALLOW_HOSTS"),
		"hosts webhooks may reach although loopback or private, and over plain http: names, IPs or CIDRs, comma-separated; link-local and cloud metadata addresses stay refused (HEXTRACK_WEBHOOK_ALLOW_HOSTS)")
}

// nodeWebhooks are the node's outbound webhooks: the routes' service over
// the archive (503 until it is open) and the runner, started once the
// archive is open, delivering until the node stops.
type nodeWebhooks struct {
	arch       *nodeArchive
	policy     webhook.Policy
	pauseAfter time.Duration
	svc        *webhook.Service
	log        *slog.Logger

	mu     sync.Mutex
	runner *webhookriver.Runner
	done   chan struct{} // closed when the runner ends (nil: never started)
}

func newWebhooks(arch *nodeArchive, c *Config, log *slog.Logger) *nodeWebhooks {
	w := &nodeWebhooks{arch: arch, log: log, pauseAfter: c.WebhookPauseAfter,
		policy: webhook.Policy{Dev: c.Dev, AllowHosts: c.WebhookAllowHosts}}
	w.svc = &webhook.Service{Store: archiveWebhooks{arch}, Policy: w.policy, Kicker: w}
	return w
}

// routes are the webhook routes (ErrNoStore, 503, without an archive).
func (w *nodeWebhooks) routes() *webhooks.Routes {
	if w == nil {
		return webhooks.New(nil)
	}
	return webhooks.New(w.svc)
}

// start waits (in the background) for the archive to be open, then opens
// the runner on it (River's migrations applied) and runs it until ctx
// ends, retrying the open while it fails.
func (w *nodeWebhooks) start(ctx context.Context, reg prometheus.Registerer) {
	if w == nil {
		return
	}
	w.done = make(chan struct{})
	go func() {
		defer close(w.done)
		for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
			if s := w.arch.Store(); s != nil {
				store := webhooksql.New(s.DB(), s.Dialect())
				r, err := webhookriver.Open(ctx, w.arch.url, store, webhook.NewSender(w.policy, 10*time.Second),
					webhookriver.Config{Registerer: reg, Logger: w.log, PauseAfter: w.pauseAfter})
				if err == nil {
					reg = nil // registered once
					w.mu.Lock()
					w.runner = r
					w.mu.Unlock()
					w.log.Info("webhooks: on", "dev", w.policy.Dev, "allow_hosts", w.policy.AllowHosts)
					// Run fails only when River cannot start (the
					// database away): try again, on the same runner.
					for err := r.Run(ctx); err != nil && ctx.Err() == nil; err = r.Run(ctx) {
						w.log.Warn("webhooks: runner stopped; restarting", "err", err)
						select {
						case <-ctx.Done():
						case <-time.After(5 * time.Second):
						}
					}
					r.Close()
					return
				}
				w.log.Warn("webhooks: cannot start; retrying", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
	}()
}

// Kick starts an endpoint's deliveries now (webhook.Kicker); before the
// runner started there is nothing to do: it sweeps every queue at start.
func (w *nodeWebhooks) Kick(ctx context.Context, endpointID string) error {
	w.mu.Lock()
	r := w.runner
	w.mu.Unlock()
	if r == nil {
		return nil
	}
	return r.Kick(ctx, endpointID)
}

// stop waits for the runner to end (cancel its context first).
func (w *nodeWebhooks) stop() {
	if w == nil || w.done == nil {
		return
	}
	<-w.done
}

// archiveWebhooks is the webhooks' store in the open archive
// (webhook.ErrNoStore until it is).
type archiveWebhooks struct{ a *nodeArchive }

var _ webhook.Store = archiveWebhooks{}

func (s archiveWebhooks) store() (*webhooksql.Store, error) {
	st := s.a.Store()
	if st == nil {
		return nil, webhook.ErrNoStore
	}
	return webhooksql.New(st.DB(), st.Dialect()), nil
}

func (s archiveWebhooks) CreateEndpoint(ctx context.Context, e webhook.Endpoint) error {
	st, err := s.store()
	if err != nil {
		return err
	}
	return st.CreateEndpoint(ctx, e)
}

func (s archiveWebhooks) Endpoints(ctx context.Context) ([]webhook.Endpoint, error) {
	st, err := s.store()
	if err != nil {
		return nil, err
	}
	return st.Endpoints(ctx)
}

func (s archiveWebhooks) Endpoint(ctx context.Context, id string) (webhook.Endpoint, error) {
	st, err := s.store()
	if err != nil {
		return webhook.Endpoint{}, err
	}
	return st.Endpoint(ctx, id)
}

func (s archiveWebhooks) UpdateEndpoint(ctx context.Context, e webhook.Endpoint) error {
	st, err := s.store()
	if err != nil {
		return err
	}
	return st.UpdateEndpoint(ctx, e)
}

func (s archiveWebhooks) DeleteEndpoint(ctx context.Context, id string) error {
	st, err := s.store()
	if err != nil {
		return err
	}
	return st.DeleteEndpoint(ctx, id)
}

func (s archiveWebhooks) Deliveries(ctx context.Context, q webhook.LogQuery) (webhook.LogPage, error) {
	st, err := s.store()
	if err != nil {
		return webhook.LogPage{}, err
	}
	return st.Deliveries(ctx, q)
}

func (s archiveWebhooks) Replay(ctx context.Context, e webhook.Endpoint, from webhook.ReplayFrom) (int64, error) {
	st, err := s.store()
	if err != nil {
		return 0, err
	}
	return st.Replay(ctx, e, from)
}
