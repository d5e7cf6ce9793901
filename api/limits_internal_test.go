package api

import "testing"

func TestClientKey(t *testing.T) {
	tests := []struct{ ip, want string }{
		{"203.0.113.7", "203.0.113.7"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"},
		{"::ffff:203.0.113.7", "::ffff:203.0.113.7"},
		{"garbage", "garbage"},
	}
	for _, tt := range tests {
		t.Run(tt.ip, func(t *testing.T) {
			if got := clientKey(tt.ip); got != tt.want {
				t.Fatalf("clientKey(%q) = %q, want %q", tt.ip, got, tt.want)
			}
		})
	}
}

func TestIPExtractor(t *testing.T) {
	if _, err := ipExtractor([]string{"10.0.0.0/8", "192.168.1.5", "::1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ipExtractor([]string{"10.0.0.0/33"}); err == nil {
		t.Fatal("a bad CIDR was accepted")
	}
}
