package archive_test

import (
	"errors"
	"testing"
	"time"

	"github.com/hextrack/hextrack/archive"
)

func TestTripQueryNormalize(t *testing.T) {
	now := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	cur := archive.Cursor{Time: now, ID: "t1"}
	for _, tc := range []struct {
		name      string
		q         archive.TripQuery
		want      error
		wantLimit int
	}{
		{"defaults", archive.TripQuery{}, nil, archive.DefaultLimit},
		{"max limit", archive.TripQuery{Limit: archive.MaxLimit}, nil, archive.MaxLimit},
		{"limit 1", archive.TripQuery{Limit: 1}, nil, 1},
		{"limit above max", archive.TripQuery{Limit: archive.MaxLimit + 1}, archive.ErrInvalidLimit, 0},
		{"limit 100000", archive.TripQuery{Limit: 100000}, archive.ErrInvalidLimit, 0},
		{"negative limit", archive.TripQuery{Limit: -5}, archive.ErrInvalidLimit, 0},
		{"from = to", archive.TripQuery{From: now, To: now}, nil, archive.DefaultLimit},
		{"from only", archive.TripQuery{From: now}, nil, archive.DefaultLimit},
		{"to before from", archive.TripQuery{From: now, To: now.Add(-time.Nanosecond)}, archive.ErrInvalidRange, 0},
		{"bad cursor", archive.TripQuery{Cursor: "%%%"}, archive.ErrInvalidCursor, 0},
		{"good cursor", archive.TripQuery{Cursor: cur.Encode()}, nil, archive.DefaultLimit},
		{"bad rider", archive.TripQuery{RiderID: "a/b"}, archive.ErrInvalid, 0},
		{"bad driver", archive.TripQuery{DriverID: "ü"}, archive.ErrInvalid, 0},
		{"bad status", archive.TripQuery{Status: "Completed"}, archive.ErrInvalid, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := tc.q
			c, err := q.Normalize()
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("Normalize() = %v, want %v", err, tc.want)
			}
			if err == nil && q.Limit != tc.wantLimit {
				t.Fatalf("limit %d, want %d", q.Limit, tc.wantLimit)
			}
			if tc.q.Cursor != "" && err == nil && (c.ID != cur.ID || !c.Time.Equal(cur.Time)) {
				t.Fatalf("cursor %v, want %v", c, cur)
			}
		})
	}
}

func TestEventQueryNormalize(t *testing.T) {
	for _, tc := range []struct {
		q    archive.EventQuery
		want error
		id   archive.EventID
	}{
		{archive.EventQuery{Topic: "trip:t1"}, nil, archive.EventID{}},
		{archive.EventQuery{Topic: "trip:t1", After: "0"}, nil, archive.EventID{}},
		{archive.EventQuery{Topic: "trip:t1", After: "1790000000000-12"}, nil, archive.EventID{Ms: 1790000000000, Seq: 12}},
		{archive.EventQuery{Topic: "trip:t1", After: "1790000000000"}, nil, archive.EventID{Ms: 1790000000000}},
		{archive.EventQuery{Topic: "trip:t1", After: "1790000000000-"}, archive.ErrInvalidCursor, archive.EventID{}},
		{archive.EventQuery{Topic: "trip:t1", After: "+1-0"}, archive.ErrInvalidCursor, archive.EventID{}},
		{archive.EventQuery{Topic: "trip:t1", After: "9223372036854775808-0"}, archive.ErrInvalidCursor, archive.EventID{}},
		{archive.EventQuery{Topic: "trip:t1", Limit: archive.MaxEventLimit + 1}, archive.ErrInvalidLimit, archive.EventID{}},
		{archive.EventQuery{}, archive.ErrInvalid, archive.EventID{}},
	} {
		q := tc.q
		id, err := q.Normalize()
		if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) || id != tc.id {
			t.Errorf("%+v.Normalize() = %v, %v; want %v, %v", tc.q, id, err, tc.id, tc.want)
		}
	}
	if id := (archive.EventID{Ms: 17, Seq: 3}); id.String() != "17-3" {
		t.Errorf("EventID.String() = %q", id.String())
	}
}

func TestDriverQueryNormalize(t *testing.T) {
	now := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		q    archive.DriverQuery
		want error
	}{
		{archive.DriverQuery{DriverID: "d1", From: now, To: now.Add(archive.MaxWindow)}, nil},
		{archive.DriverQuery{DriverID: "d1", From: now, To: now}, nil},
		{archive.DriverQuery{DriverID: "d1", From: now, To: now.Add(archive.MaxWindow + 1)}, archive.ErrInvalidRange},
		{archive.DriverQuery{DriverID: "d1", From: now, To: now.Add(-time.Second)}, archive.ErrInvalidRange},
		{archive.DriverQuery{DriverID: "d1", From: now}, archive.ErrInvalidRange},
		{archive.DriverQuery{From: now, To: now}, archive.ErrInvalid},
	} {
		q := tc.q
		if err := q.Normalize(); !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Errorf("%+v.Normalize() = %v, want %v", tc.q, err, tc.want)
		}
	}
	q := archive.TrailQuery{TripID: "t1"}
	if err := q.Normalize(); err != nil || q.Limit != archive.DefaultTrailLimit {
		t.Errorf("TrailQuery defaults: %v, limit %d", err, q.Limit)
	}
	q = archive.TrailQuery{TripID: "t1", After: -1}
	if err := q.Normalize(); !errors.Is(err, archive.ErrInvalidCursor) {
		t.Errorf("TrailQuery(after -1) = %v, want ErrInvalidCursor", err)
	}
}
