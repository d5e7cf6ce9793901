package podredis_test

import (
	"context"
	"testing"
	"time"

	"github.com/hextrack/hextrack/internal/redistest"
	"github.com/hextrack/hextrack/pod"
	"github.com/hextrack/hextrack/pod/podredis"
)

// TestStoreTTL: a trip's hash has the trip's TTL, refreshed by a record,
// and a record returns the one it replaced; List is photo first.
func TestStoreTTL(t *testing.T) {
	rdb, prefix := redistest.MustOpen(t)
	s := podredis.New(rdb, podredis.Config{Prefix: prefix, TTL: time.Hour})
	ctx := context.Background()
	r := pod.Record{Proof: pod.Proof{TripID: "t9", StopID: "s1", Kind: pod.KindPhoto}, Key: "k1"}
	if _, ok, err := s.Record(ctx, r); ok || err != nil {
		t.Fatalf("first Record = %v, %v", ok, err)
	}
	ttl := rdb.PTTL(ctx, prefix+"pod:{t9}").Val()
	if ttl <= 59*time.Minute || ttl > time.Hour {
		t.Fatalf("TTL = %v", ttl)
	}
	r.Key = "k2"
	old, ok, err := s.Record(ctx, r)
	if !ok || err != nil || old.Key != "k1" {
		t.Fatalf("second Record = %+v %v %v", old, ok, err)
	}
}

func TestStoreList(t *testing.T) {
	rdb, prefix := redistest.MustOpen(t)
	s := podredis.New(rdb, podredis.Config{Prefix: prefix})
	ctx := context.Background()
	for _, k := range []string{pod.KindSignature, pod.KindPhoto} {
		if _, _, err := s.Record(ctx, pod.Record{Proof: pod.Proof{TripID: "t9", StopID: "s1", Kind: k}, Key: k}); err != nil {
			t.Fatal(err)
		}
	}
	_, _, _ = s.Record(ctx, pod.Record{Proof: pod.Proof{TripID: "t9", StopID: "s2", Kind: pod.KindPhoto}, Key: "other"})
	rs, err := s.List(ctx, "t9", "s1")
	if err != nil || len(rs) != 2 || rs[0].Kind != pod.KindPhoto || rs[1].Kind != pod.KindSignature {
		t.Fatalf("List = %+v, %v", rs, err)
	}
	if rs, err := s.List(ctx, "t9", "s3"); err != nil || len(rs) != 0 {
		t.Fatalf("List of a stop without proofs = %+v, %v", rs, err)
	}
}
