package sim

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Dialer spreads outgoing connections over source addresses 127.0.0.1 …
// 127.0.0.N when the server is on loopback: each (source, destination)
// pair has its own ~28k ephemeral ports, so N sources allow N times more
// concurrent connections to one server port. Elsewhere it dials normally.
type Dialer struct {
	sources []*net.TCPAddr
	next    atomic.Uint64
	base    net.Dialer
}

// NewDialer returns a dialer for server; spread <= 1 disables spreading.
func NewDialer(server string, spread int) *Dialer {
	d := &Dialer{base: net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}}
	u, err := url.Parse(server)
	if err != nil || spread <= 1 {
		return d
	}
	ip := net.ParseIP(u.Hostname())
	if u.Hostname() == "localhost" {
		ip = net.IPv4(127, 0, 0, 1)
	}
	if ip == nil || ip.To4() == nil || !ip.IsLoopback() {
		return d
	}
	for i := 1; i <= min(spread, 254); i++ {
		d.sources = append(d.sources, &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(i))})
	}
	return d
}

// Sources is how many source addresses connections are spread over.
func (d *Dialer) Sources() int { return max(1, len(d.sources)) }

// DialContext dials from the next source address in turn.
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if len(d.sources) == 0 {
		return d.base.DialContext(ctx, network, addr)
	}
	nd := d.base
	nd.LocalAddr = d.sources[d.next.Add(1)%uint64(len(d.sources))]
	if network == "tcp" {
		network = "tcp4"
	}
	return nd.DialContext(ctx, network, addr)
}

// HTTPClient is a client whose connections come from d, keeping up to
// idle connections open for reuse. Timeout bounds each request (0: none,
// for streams).
func (d *Dialer) HTTPClient(idle int, timeout time.Duration) *http.Client {
	tr := &http.Transport{
		DialContext:         d.DialContext,
		MaxIdleConns:        idle,
		MaxIdleConnsPerHost: idle,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   false,
	}
	return &http.Client{Transport: tr, Timeout: timeout}
}

// WebSocket is a websocket dialer using d.
func (d *Dialer) WebSocket() *websocket.Dialer {
	return &websocket.Dialer{NetDialContext: d.DialContext, HandshakeTimeout: 10 * time.Second,
		ReadBufferSize: 4096, WriteBufferSize: 4096}
}
