package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync/atomic"
	"time"
)

// spreadDialer dials from 127.0.0.2..(1+n) in turn, so that many
// connections to one loopback server do not share one source address.
type spreadDialer struct {
	n    int
	next atomic.Uint64
}

func (d *spreadDialer) dial(ctx context.Context, addr string) (net.Conn, error) {
	var la net.Addr
	if d != nil && d.n > 0 {
		i := d.next.Add(1) % uint64(d.n)
		la = &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i))}
	}
	nd := net.Dialer{LocalAddr: la, Timeout: 10 * time.Second}
	return nd.DialContext(ctx, "tcp", addr)
}

// hconn is a minimal HTTP/1.1 keep-alive client connection: it writes a
// prebuilt request and reads one response (Content-Length or chunked).
// It costs the load generator a fraction of what net/http does, which
// matters when the generator shares two cores with the server.
type hconn struct {
	c    net.Conn
	br   *bufio.Reader
	body []byte
}

func dialH(ctx context.Context, d *spreadDialer, addr string) (*hconn, error) {
	c, err := d.dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl) // a scenario's: no read outlasts it
	}
	return &hconn{c: c, br: bufio.NewReaderSize(c, 16<<10)}, nil
}

func (h *hconn) Close() error { return h.c.Close() }

// do sends req and returns the status and the body (valid until the next
// call). headers, if not nil, receives the value of the header named want.
func (h *hconn) do(req []byte, want string, hdr *string) (int, []byte, error) {
	if _, err := h.c.Write(req); err != nil {
		return 0, nil, err
	}
	line, err := h.br.ReadSlice('\n')
	if err != nil {
		return 0, nil, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, nil, fmt.Errorf("bad status line %q", line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, nil, err
	}
	clen, chunked := -1, false
	for {
		l, err := h.br.ReadSlice('\n')
		if err != nil {
			return 0, nil, err
		}
		if len(l) <= 2 {
			break
		}
		i := bytes.IndexByte(l, ':')
		if i < 0 {
			continue
		}
		k, v := l[:i], bytes.TrimSpace(l[i+1:])
		switch {
		case asciiEq(k, "content-length"):
			clen, _ = strconv.Atoi(string(v))
		case asciiEq(k, "transfer-encoding"):
			chunked = bytes.Contains(bytes.ToLower(v), []byte("chunked"))
		case want != "" && hdr != nil && asciiEq(k, want):
			*hdr = string(v)
		}
	}
	h.body = h.body[:0]
	switch {
	case status == 304 || status == 204:
	case chunked:
		for {
			l, err := h.br.ReadSlice('\n')
			if err != nil {
				return 0, nil, err
			}
			n, err := strconv.ParseInt(string(bytes.TrimSpace(l)), 16, 64)
			if err != nil {
				return 0, nil, fmt.Errorf("bad chunk size %q", l)
			}
			if n == 0 {
				if _, err := h.br.ReadSlice('\n'); err != nil {
					return 0, nil, err
				}
				break
			}
			start := len(h.body)
			h.body = append(h.body, make([]byte, n)...)
			if _, err := io.ReadFull(h.br, h.body[start:]); err != nil {
				return 0, nil, err
			}
			if _, err := h.br.Discard(2); err != nil {
				return 0, nil, err
			}
		}
	case clen > 0:
		if cap(h.body) < clen {
			h.body = make([]byte, clen)
		}
		h.body = h.body[:clen]
		if _, err := io.ReadFull(h.br, h.body); err != nil {
			return 0, nil, err
		}
	case clen < 0:
		return 0, nil, errors.New("response without length")
	}
	return status, h.body, nil
}

func asciiEq(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// request builds an HTTP/1.1 request.
func request(method, host, path, token string, headers []string, body []byte) []byte {
	var b bytes.Buffer
	b.WriteString(method + " " + path + " HTTP/1.1\r\nHost: " + host + "\r\n")
	if token != "" {
		b.WriteString("Authorization: Bearer " + token + "\r\n")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		b.WriteString(headers[i] + ": " + headers[i+1] + "\r\n")
	}
	if body != nil {
		b.WriteString("Content-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n")
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes()
}
