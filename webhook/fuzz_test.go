package webhook_test

import (
	"context"
	"errors"
	"net/netip"
	"net/url"
	"testing"

	"github.com/hextrack/hextrack/webhook"
)

// FuzzCheckURL: an endpoint URL from a caller never panics the check; an
// accepted one is an absolute http(s) URL whose literal address, if any,
// is neither link-local, loopback (outside dev mode) nor private; a
// refused one is ErrInvalidURL or ErrURLNotAllowed.
func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{"https://hooks.example/in", "http://127.0.0.1:8080/", "http://[::ffff:169.254.169.254]/",
		"https://10.0.0.1/", "https://[fe80::1%25eth0]/", "http://0.0.0.0/", "https://u:p@x/", "//x", "https://x:99999/", "http://[::1]:80/"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	res := fakeResolver{}
	f.Fuzz(func(t *testing.T, raw string, dev bool) {
		p := webhook.Policy{Dev: dev, Resolver: res}
		u, err := p.CheckURL(context.Background(), raw)
		if err != nil {
			if !errors.Is(err, webhook.ErrInvalidURL) && !errors.Is(err, webhook.ErrURLNotAllowed) {
				t.Fatalf("CheckURL(%q) = %v: neither invalid nor not allowed", raw, err)
			}
			return
		}
		if u.Scheme != "https" && u.Scheme != "http" || u.Hostname() == "" {
			t.Fatalf("CheckURL(%q) accepted %v", raw, u)
		}
		if _, err := url.Parse(u.String()); err != nil {
			t.Fatalf("CheckURL(%q) accepted %v, which does not parse again", raw, u)
		}
		if a, err := netip.ParseAddr(u.Hostname()); err == nil {
			a = a.Unmap()
			if a.IsLinkLocalUnicast() || a.IsPrivate() || (!dev && a.IsLoopback()) || a.IsUnspecified() {
				t.Fatalf("CheckURL(%q) accepted the address %s", raw, a)
			}
			if !dev && u.Scheme == "http" {
				t.Fatalf("CheckURL(%q) accepted plain http outside dev mode", raw)
			}
		}
	})
}
