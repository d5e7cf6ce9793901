package webhook_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/webhook"
)

func TestParseFilter(t *testing.T) {
	for _, c := range []struct {
		in      []string
		ok      bool
		matches []string
		not     []string
	}{
		{nil, true, []string{"trip.status", "payment.status"}, nil},
		{[]string{"trip.*"}, true, []string{"trip.status", "trip.eta"}, []string{"payment.status"}},
		{[]string{"payment.status", "trip.created"}, true, []string{"payment.status", "trip.created"}, []string{"trip.status"}},
		{[]string{"*"}, true, []string{"trip.arriving"}, nil},
		{[]string{"trip.nope"}, false, nil, nil},
		{[]string{"foo.*"}, false, nil, nil},
		{[]string{"trip*"}, false, nil, nil},
		{[]string{"trip.location"}, false, nil, nil}, // live only, never delivered
		{[]string{""}, false, nil, nil},
	} {
		t.Run(strings.Join(c.in, ","), func(t *testing.T) {
			f, err := webhook.ParseFilter(c.in)
			if (err == nil) != c.ok {
				t.Fatalf("ParseFilter(%q) = %v, want ok=%v", c.in, err, c.ok)
			}
			if err != nil {
				if !errors.Is(err, webhook.ErrInvalidEventType) {
					t.Fatalf("error %v is not ErrInvalidEventType", err)
				}
				return
			}
			for _, m := range c.matches {
				if !f.Match(m) {
					t.Errorf("%v does not match %s", f, m)
				}
			}
			for _, m := range c.not {
				if f.Match(m) {
					t.Errorf("%v matches %s", f, m)
				}
			}
		})
	}
}

// fakeResolver answers from a map (a host name resolving to a private
// address without asking a real DNS server).
type fakeResolver map[string][]netip.Addr

func (r fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := r[host]; ok {
		return a, nil
	}
	return nil, errors.New("no such host")
}

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

func TestCheckURL(t *testing.T) {
	res := fakeResolver{
		"hooks.example":    addrs("203.0.113.7"),
		"internal.example": addrs("10.1.2.3"),
		"mixed.example":    addrs("203.0.113.8", "192.168.1.9"),
		"localhost":        addrs("127.0.0.1"),
	}
	prod := webhook.Policy{Resolver: res}
	dev := webhook.Policy{Dev: true, Resolver: res}
	allow := webhook.Policy{Resolver: res, AllowHosts: []string{"internal.example", "10.9.0.0/16"}}
	for _, c := range []struct {
		name string
		p    webhook.Policy
		url  string
		want error // nil: accepted
		msg  string
	}{
		{"https public", prod, "https://hooks.example/in", nil, ""},
		{"http outside dev", prod, "http://hooks.example/in", webhook.ErrURLNotAllowed, "https only"},
		{"loopback outside dev", prod, "http://127.0.0.1:8080/", webhook.ErrURLNotAllowed, "loopback"},
		{"loopback https outside dev", prod, "https://127.0.0.1/", webhook.ErrURLNotAllowed, "loopback"},
		{"localhost outside dev", prod, "https://localhost/", webhook.ErrURLNotAllowed, "resolves to 127.0.0.1"},
		{"loopback in dev", dev, "http://127.0.0.1:8080/", nil, ""},
		{"localhost in dev", dev, "http://localhost:8080/", nil, ""},
		{"plain http to public in dev", dev, "http://hooks.example/", webhook.ErrURLNotAllowed, "plain http"},
		{"metadata", dev, "http://169.254.169.254/latest/meta-data/", webhook.ErrURLNotAllowed, "link-local"},
		{"metadata allow-listed", webhook.Policy{AllowHosts: []string{"169.254.0.0/16"}}, "http://169.254.169.254/", webhook.ErrURLNotAllowed, "never"},
		{"metadata name", dev, "https://metadata.google.internal/", webhook.ErrURLNotAllowed, "metadata"},
		{"link-local v6", dev, "https://[fe80::1]/", webhook.ErrURLNotAllowed, "link-local"},
		{"mapped metadata", dev, "https://[::ffff:169.254.169.254]/", webhook.ErrURLNotAllowed, "link-local"},
		{"private literal", prod, "https://192.168.0.10/", webhook.ErrURLNotAllowed, "private"},
		{"name resolving private", prod, "https://internal.example/", webhook.ErrURLNotAllowed, "resolves to 10.1.2.3"},
		{"one private address of several", prod, "https://mixed.example/", webhook.ErrURLNotAllowed, "192.168.1.9"},
		{"allow-listed name", allow, "http://internal.example/", nil, ""},
		{"allow-listed prefix", allow, "https://10.9.8.7/", nil, ""},
		{"not allow-listed", allow, "https://10.8.0.1/", webhook.ErrURLNotAllowed, "private"},
		{"not a url", prod, "not a url", webhook.ErrInvalidURL, ""},
		{"relative", prod, "/hooks", webhook.ErrInvalidURL, ""},
		{"ftp", prod, "ftp://hooks.example/", webhook.ErrInvalidURL, ""},
		{"credentials", prod, "https://u:p@hooks.example/", webhook.ErrInvalidURL, ""},
		{"unresolved name", prod, "https://later.example/", nil, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.p.CheckURL(context.Background(), c.url)
			if c.want == nil {
				if err != nil {
					t.Fatalf("CheckURL(%s) = %v, want accepted", c.url, err)
				}
				return
			}
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("CheckURL(%s) = %v, want %v saying %q", c.url, err, c.want, c.msg)
			}
		})
	}
}

var ev = feed.Event{ID: "1800000000000-2", Type: "trip.status", Topic: "trip:t_1",
	TS: time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC), Data: []byte(`{"status":"accepted"}`)}

// TestSendSigned: a delivery carries the Standard Webhooks headers and
// the feed's envelope; the reference library verifies it with the secret.
func TestSendSigned(t *testing.T) {
	secret := webhook.NewSecret()
	if !strings.HasPrefix(secret.Reveal(), "whsec_") || len(secret.Reveal()) < 6+32 {
		t.Fatalf("secret %q", secret.Reveal())
	}
	wh, err := standardwebhooks.NewWebhook(secret.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		err := wh.Verify(body, r.Header)
		if err == nil && r.Header.Get("webhook-id") != "trip:t_1/1800000000000-2" {
			err = errors.New("webhook-id " + r.Header.Get("webhook-id"))
		}
		if err == nil && !strings.Contains(string(body), `"id":"1800000000000-2","type":"trip.status","topic":"trip:t_1"`) {
			err = errors.New("body " + string(body))
		}
		got <- err
		w.Write([]byte(strings.Repeat("x", 10000)))
	}))
	defer srv.Close()
	s := webhook.NewSender(webhook.Policy{Dev: true}, time.Second)
	res := s.Send(context.Background(), srv.URL+"/in", secret, ev)
	if !res.OK() || res.StatusCode != 200 || len(res.Response) != webhook.ResponseCap {
		t.Fatalf("Send = %+v", res)
	}
	if err := <-got; err != nil {
		t.Fatalf("receiver: %v", err)
	}
	if s := (webhook.Endpoint{Secret: secret}); strings.Contains(strings.ReplaceAll(strings.ReplaceAll(
		fmtAll(s), "\n", ""), " ", ""), secret.Reveal()) {
		t.Fatal("the secret shows in fmt output")
	}
}

// TestSendRefused: at delivery, a name that now resolves to a private
// address (DNS rebinding), a redirect to the metadata address, and a
// loopback receiver outside dev mode are refused before any connection.
func TestSendRefused(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusTemporaryRedirect)
			return
		}
		if r.URL.Path == "/redirect-private" {
			http.Redirect(w, r, "https://internal.example/", http.StatusTemporaryRedirect)
			return
		}
	}))
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":"):]
	res := fakeResolver{"rebind.example": addrs("10.1.2.3"), "internal.example": addrs("192.168.7.7")}
	secret := webhook.NewSecret()
	for _, c := range []struct {
		name, url string
		p         webhook.Policy
		msg       string
		hits      int32
	}{
		{"rebinding", "https://rebind.example" + port + "/", webhook.Policy{Dev: true, Resolver: res}, "private", 0},
		{"rebinding https", "https://rebind.example" + port + "/", webhook.Policy{Resolver: res}, "resolves to 10.1.2.3", 0},
		{"redirect to metadata", srv.URL + "/redirect", webhook.Policy{Dev: true, Resolver: res}, "169.254.169.254", 1},
		{"redirect to a private name", srv.URL + "/redirect-private", webhook.Policy{Dev: true, Resolver: res}, "resolves to 192.168.7.7", 1},
		{"loopback outside dev", srv.URL + "/", webhook.Policy{Resolver: res, AllowHosts: []string{"other.example"}}, "", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			hits.Store(0)
			r := webhook.NewSender(c.p, time.Second).Send(context.Background(), c.url, secret, ev)
			if r.OK() || !errors.Is(r.Err, webhook.ErrURLNotAllowed) || !strings.Contains(r.Err.Error(), c.msg) {
				t.Fatalf("Send(%s) = %+v, want refused saying %q", c.url, r, c.msg)
			}
			if strings.Contains(r.Err.Error(), secret.Reveal()) {
				t.Fatal("the error holds the secret")
			}
			if hits.Load() != c.hits {
				t.Fatalf("receiver hit %d times, want %d", hits.Load(), c.hits)
			}
		})
	}
}

func TestSendTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	r := webhook.NewSender(webhook.Policy{Dev: true}, 200*time.Millisecond).Send(context.Background(), srv.URL, webhook.NewSecret(), ev)
	if r.OK() || !strings.Contains(r.Err.Error(), "timed out") {
		t.Fatalf("Send to a stalled receiver = %+v, want timed out", r)
	}
	if strings.Contains(r.Err.Error(), srv.URL) {
		t.Fatalf("the error holds the URL: %v", r.Err)
	}
}
