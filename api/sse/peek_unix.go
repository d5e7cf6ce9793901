//go:build unix

package sse

import (
	"errors"
	"net"
	"syscall"
)

// peerClosed reports whether the client closed its side of a taken-over
// stream's connection: a non-blocking read finds the end of input (or an
// error). Anything the client sent is read and dropped; an SSE client
// sends nothing after its request. It is what the heartbeat checks, so a
// client that went away is noticed within one heartbeat period, without a
// goroutine blocked in a read per connection.
func peerClosed(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	closed := false
	err = rc.Read(func(fd uintptr) bool {
		var b [128]byte
		for range 8 { // bounded: a client streaming junk is not worth more
			n, err := syscall.Read(int(fd), b[:])
			switch {
			case n > 0:
				continue
			case err == nil, !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.EINTR):
				closed = true // n == 0: end of input
			}
			break
		}
		return true // never wait for readiness
	})
	return closed || err != nil
}
