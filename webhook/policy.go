package webhook

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Resolver looks host names up (net.DefaultResolver; tests give their
// own).
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Policy decides where deliveries may go (the SSRF rules):
//
//   - always refused: link-local addresses (169.254.0.0/16, fe80::/10, where
//     clouds serve instance metadata), the other known metadata addresses
//     (fd00:ec2::254, 100.100.100.200) and names (metadata.google.internal),
//     unspecified and multicast addresses;
//   - loopback (127.0.0.0/8, ::1): only in dev mode or when allow-listed;
//   - private (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7): only when
//     allow-listed;
//   - plain http: only in dev mode to a loopback host, or to an
//     allow-listed host; https otherwise.
//
// Rules are checked on the URL when an endpoint is created or changed
// (CheckURL, resolving its name), and at delivery on every address
// actually dialled (the dialer's Control hook, after DNS resolution, so
// a name that resolves elsewhere later — DNS rebinding — is refused) and on
// every redirect.
type Policy struct {
	// Dev allows plain http to loopback hosts (dev mode).
	Dev bool
	// AllowHosts lists trusted hosts: names (exact, case-insensitive), IP
	// addresses or CIDR prefixes. A trusted host may be loopback or
	// private, and may use plain http; link-local and metadata addresses
	// stay refused.
	AllowHosts []string
	// Resolver; nil means net.DefaultResolver.
	Resolver Resolver
}

// metadata are cloud instance-metadata addresses outside link-local.
var metadata = []netip.Addr{
	netip.MustParseAddr("fd00:ec2::254"),   // AWS IPv6
	netip.MustParseAddr("100.100.100.200"), // Alibaba Cloud
}

var metadataNames = []string{"metadata.google.internal", "metadata", "instance-data", "metadata.azure.internal"}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// CheckAllowHosts checks the allow-list's syntax (at start).
func CheckAllowHosts(hosts []string) error {
	for _, h := range hosts {
		if h == "" || strings.ContainsAny(h, " /\t") && !isPrefix(h) {
			return fmt.Errorf("webhook allow-list: %q is neither a host name, an IP address nor a CIDR prefix", h)
		}
	}
	return nil
}

func isPrefix(s string) bool { _, err := netip.ParsePrefix(s); return err == nil }

// CheckURL parses raw and checks it against the policy: ErrInvalidURL for
// what is not an absolute http(s) URL, ErrURLNotAllowed (saying why) for
// what the policy refuses. A host name that does not resolve now is
// accepted (it is checked again at every delivery).
func (p Policy) CheckURL(ctx context.Context, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || len(raw) > 2000 || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" || u.User != nil {
		return nil, fmt.Errorf("%w: %q: want an absolute http:// or https:// URL without credentials", ErrInvalidURL, clip(raw))
	}
	if !validHost(u.Hostname()) {
		return nil, fmt.Errorf("%w: %q: the host is neither a DNS name nor an IP address", ErrInvalidURL, clip(raw))
	}
	if err := p.checkTarget(u); err != nil {
		return nil, err
	}
	host := u.Hostname()
	if _, err := netip.ParseAddr(host); err == nil {
		return u, nil // checked by checkTarget
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	addrs, err := p.resolver().LookupNetIP(ctx, "ip", host)
	if err != nil {
		return u, nil //nolint:nilerr // a name not resolving yet is checked at delivery
	}
	for _, a := range addrs {
		if err := p.allowAddr(host, a); err != nil {
			return nil, err
		}
	}
	if u.Scheme == "http" && !p.plainHTTP(host, addrs) {
		return nil, p.httpsOnly(u)
	}
	return u, nil
}

// validHost: a DNS name (letters, digits, '-', '_', '.') or an IP
// address without a zone.
func validHost(h string) bool {
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Zone() == ""
	}
	if h == "" || len(h) > 253 {
		return false
	}
	for _, c := range h {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// checkTarget checks what a URL says by itself: its scheme, a literal
// address, a metadata name. It is what a redirect is checked with before
// it is followed (its addresses are checked when dialled).
func (p Policy) checkTarget(u *url.URL) error {
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%w: %s: only http and https", ErrURLNotAllowed, u.Redacted())
	}
	if !validHost(u.Hostname()) {
		return fmt.Errorf("%w: %s: the host is neither a DNS name nor an IP address", ErrURLNotAllowed, u.Redacted())
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	for _, m := range metadataNames {
		if host == m {
			return fmt.Errorf("%w: %s is a cloud metadata service: never allowed", ErrURLNotAllowed, host)
		}
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if err := p.allowAddr(host, a); err != nil {
			return err
		}
		if u.Scheme == "http" && !p.plainHTTP(host, []netip.Addr{a}) {
			return p.httpsOnly(u)
		}
		return nil
	}
	if u.Scheme == "http" && !p.allowed(host, netip.Addr{}) && !(p.Dev && host == "localhost") {
		return p.httpsOnly(u)
	}
	return nil
}

func (p Policy) httpsOnly(u *url.URL) error {
	if p.Dev {
		return fmt.Errorf("%w: %s: plain http is allowed only to loopback hosts (dev mode) or hosts in --webhook-allow-hosts; use https", ErrURLNotAllowed, u.Redacted())
	}
	return fmt.Errorf("%w: %s: https only outside dev mode (unless the host is in --webhook-allow-hosts)", ErrURLNotAllowed, u.Redacted())
}

// plainHTTP: http is fine to host when it is trusted, or in dev mode when
// all its addresses are loopback.
func (p Policy) plainHTTP(host string, addrs []netip.Addr) bool {
	if p.allowed(host, netip.Addr{}) {
		return true
	}
	if !p.Dev || len(addrs) == 0 {
		return false
	}
	for _, a := range addrs {
		if !a.Unmap().IsLoopback() && !p.allowed("", a) {
			return false
		}
	}
	return true
}

// allowAddr checks one address that host resolved to (or host itself, a
// literal).
func (p Policy) allowAddr(host string, a netip.Addr) error {
	a = a.Unmap()
	var why string
	switch {
	case a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast():
		why = "a link-local address (where cloud metadata lives): never allowed"
	case isMetadata(a):
		why = "a cloud metadata address: never allowed"
	case a.IsUnspecified() || a.IsMulticast() || a.IsInterfaceLocalMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		why = "not a unicast address: never allowed"
	case p.allowed(host, a):
		return nil
	case a.IsLoopback():
		if p.Dev {
			return nil
		}
		why = "a loopback address: allowed only in dev mode or through --webhook-allow-hosts"
	case a.IsPrivate() || cgnat.Contains(a):
		why = "a private address: allowed only through --webhook-allow-hosts"
	default:
		return nil
	}
	if host != "" && host != a.String() {
		return fmt.Errorf("%w: %s resolves to %s, %s", ErrURLNotAllowed, host, a, why)
	}
	return fmt.Errorf("%w: %s is %s", ErrURLNotAllowed, a, why)
}

func isMetadata(a netip.Addr) bool {
	for _, m := range metadata {
		if a == m {
			return true
		}
	}
	return false
}

// allowed reports whether host (by name) or a (by address or prefix) is
// in the allow-list.
func (p Policy) allowed(host string, a netip.Addr) bool {
	for _, h := range p.AllowHosts {
		if host != "" && strings.EqualFold(strings.TrimSuffix(h, "."), strings.TrimSuffix(host, ".")) {
			return true
		}
		if !a.IsValid() {
			continue
		}
		if pa, err := netip.ParseAddr(h); err == nil && pa.Unmap() == a {
			return true
		}
		if pp, err := netip.ParsePrefix(h); err == nil && pp.Contains(a) {
			return true
		}
	}
	return false
}

func (p Policy) resolver() Resolver {
	if p.Resolver != nil {
		return p.Resolver
	}
	return net.DefaultResolver
}

// dialContext resolves addr's host with the policy's resolver, refuses
// the addresses the policy refuses, and dials the others in turn through
// a dialer whose Control hook checks the address once more at the socket,
// right before connect: nothing reaches a refused address.
func (p Policy) dialContext(timeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		var addrs []netip.Addr
		if a, err := netip.ParseAddr(host); err == nil {
			addrs = []netip.Addr{a}
		} else if addrs, err = p.resolver().LookupNetIP(ctx, "ip", host); err != nil {
			return nil, err
		}
		d := net.Dialer{Timeout: timeout, Control: func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: dialling %s", ErrURLNotAllowed, address)
			}
			return p.allowAddr(host, ap.Addr())
		}}
		var first error
		for _, a := range addrs {
			if err := p.allowAddr(host, a); err != nil {
				first = cmpErr(first, err)
				continue
			}
			c, err := d.DialContext(ctx, network, net.JoinHostPort(a.Unmap().String(), port))
			if err == nil {
				return c, nil
			}
			first = cmpErr(first, err)
		}
		if first == nil {
			first = fmt.Errorf("%s: no address", host)
		}
		return nil, first
	}
}

func cmpErr(first, err error) error {
	if first == nil {
		return err
	}
	return first
}
