package rscript

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/internal/redistest"
)

func TestReply(t *testing.T) {
	got := Reply([]any{"ok", int64(42), nil, 1.5})
	want := []string{"ok", "42", "", ""}
	if len(got) != len(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	if r := Reply("not an array"); len(r) != 0 {
		t.Fatalf("non-array reply: %q", r)
	}
}

func TestRun(t *testing.T) {
	rdb, prefix := redistest.MustOpen(t)
	ctx := context.Background()
	s := redis.NewScript(`redis.call('SET', KEYS[1], ARGV[1]) return {'ok', redis.call('STRLEN', KEYS[1])}`)
	res, err := Run(ctx, rdb, s, []string{prefix + "k"}, "hello")
	if err != nil || len(res) != 2 || res[0] != "ok" || res[1] != "5" {
		t.Fatalf("Run: %q, %v", res, err)
	}
	empty := redis.NewScript(`return {}`)
	if _, err := Run(ctx, rdb, empty, nil); err == nil {
		t.Fatal("an empty reply is no error")
	}
	bad := redis.NewScript(`return redis.error_reply('boom')`)
	if _, err := Run(ctx, rdb, bad, nil); err == nil {
		t.Fatal("a script error is no error")
	}
}
