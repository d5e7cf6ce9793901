package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/hextrack/hextrack/feed"
)

// ResponseCap bounds what is read of an answer's body (the start is kept
// in the delivery log).
const ResponseCap = 4 << 10

// maxRedirects bounds the redirects one attempt follows.
const maxRedirects = 3

// Sender posts signed deliveries under a Policy.
type Sender struct {
	client *http.Client
	policy Policy
	now    func() time.Time
}

// NewSender returns a Sender whose attempts last at most timeout (0 means
// 10 s), dialling only where policy allows, following at most 3
// redirects, each checked by policy. Proxies from the environment are not
// used: they would dial for us, past the policy.
func NewSender(policy Policy, timeout time.Duration) *Sender {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           policy.dialContext(timeout),
		ForceAttemptHTTP2:     true,
		MaxIdleConnsPerHost:   128, // a drain sends up to 128 at once (webhookriver.Config.InFlight)
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
	}
	c := &http.Client{Transport: tr, Timeout: timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > maxRedirects {
				return fmt.Errorf("stopped after %d redirects", maxRedirects)
			}
			return policy.checkTarget(req.URL)
		}}
	return &Sender{client: c, policy: policy, now: time.Now}
}

// Result is one attempt's outcome.
type Result struct {
	// StatusCode is the answer's status (0: no answer).
	StatusCode int
	Latency    time.Duration
	// Response is the start of the answer's body (at most ResponseCap).
	Response string
	// Err is why the attempt failed (nil: a 2xx answer). It never holds
	// the secret.
	Err error
}

// OK reports whether the endpoint took the delivery.
func (r Result) OK() bool { return r.Err == nil }

// Send posts ev to rawURL, signed with secret (Standard Webhooks:
// webhook-id MessageID(ev), webhook-timestamp now, webhook-signature
// v1,<base64 HMAC-SHA256 of "id.timestamp.body">).
func (s *Sender) Send(ctx context.Context, rawURL string, secret Secret, ev feed.Event) Result {
	body, err := Body(ev)
	if err != nil {
		return Result{Err: fmt.Errorf("encode event: %w", err)}
	}
	wh, err := standardwebhooks.NewWebhook(secret.Reveal())
	if err != nil {
		return Result{Err: errors.New("the endpoint's secret is malformed")} // never its text
	}
	id, now := MessageID(ev), s.now()
	sig, err := wh.Sign(id, now, body)
	if err != nil {
		return Result{Err: fmt.Errorf("sign: %w", err)}
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return Result{Err: fmt.Errorf("%w: %w", ErrInvalidURL, err)}
	}
	if err := s.policy.checkTarget(u); err != nil {
		return Result{Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return Result{Err: fmt.Errorf("%w: %w", ErrInvalidURL, err)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "hextrack-webhooks/1")
	req.Header.Set(standardwebhooks.HeaderWebhookID, id)
	req.Header.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(standardwebhooks.HeaderWebhookSignature, sig)

	start := time.Now()
	resp, err := s.client.Do(req)
	r := Result{Latency: time.Since(start)}
	if err != nil {
		r.Err = cleanErr(err)
		return r
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, ResponseCap))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // reuse the connection if cheap
	r.StatusCode, r.Response, r.Latency = resp.StatusCode, strings.ToValidUTF8(string(b), "?"), time.Since(start)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		r.Err = fmt.Errorf("answered %s", resp.Status)
	}
	return r
}

// cleanErr keeps the policy's refusal readable: net/http wraps it as
// `Post "<url>": dial tcp …: <refusal>`.
func cleanErr(err error) error {
	if errors.Is(err, ErrURLNotAllowed) {
		var ue *url.Error
		if errors.As(err, &ue) {
			return fmt.Errorf("refused: %w", unwrapTo(ue.Err))
		}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		// Not the URL: its query may hold the receiver's token.
		if ue.Timeout() {
			return fmt.Errorf("timed out: %w", ue.Err)
		}
		return ue.Err
	}
	return err
}

// unwrapTo digs through net's wrappers to the policy's own error.
func unwrapTo(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil || !errors.Is(u, ErrURLNotAllowed) || u == ErrURLNotAllowed {
			return err
		}
		err = u
	}
}
