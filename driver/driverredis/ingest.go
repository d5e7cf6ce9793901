package driverredis

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/geo"
)

// Ingester applies batches of pings (Ingest): one script per batch charges
// the driver's ping bucket, drops seen seqs and implausible jumps and moves
// the driver, then the index is updated and the listeners are told.
type Ingester struct {
	cfg       driver.Config
	listeners []driver.Listener
	metrics   driver.Metrics
	// refusals answers a flood from a driver whose bucket is known to be
	// empty without a Redis round trip (ratelimit.go).
	refusals *refusals
	// pipes groups the ingest scripts and the index updates of concurrent
	// batches into pipelines (redis.go).
	pipes *pipes
	// disks keeps drivers' last cell disks between batches (cells.go).
	disks diskCache
}

// Ingest validates and applies decoded pings for one driver. Pings are
// applied in ts order; seqs already seen count as duplicates; a ping older
// than the current position is accepted but does not move the driver.
func (s *Ingester) Ingest(ctx context.Context, driverID string, pings []driver.DecodedPing) (driver.IngestResult, error) {
	start := time.Now()
	if err := driver.CheckID(driverID); err != nil {
		return driver.IngestResult{}, err
	}
	if len(pings) > s.cfg.Limits.MaxBatch {
		return driver.IngestResult{}, fmt.Errorf("%w: %d pings, at most %d per request", driver.ErrTooManyPings, len(pings), s.cfg.Limits.MaxBatch)
	}
	now := s.cfg.Now()
	res := driver.IngestResult{Rejected: []driver.Rejection{}}
	// valid holds the indexes of the valid pings (not copies of them).
	var idx [64]int32
	valid := idx[:0]
	if len(pings) > len(idx) {
		valid = make([]int32, 0, len(pings))
	}
	for i := range pings {
		d := &pings[i]
		reason := driver.ReasonMissingField
		if d.Missing == "" {
			reason = driver.Validate(d.Ping, now, s.cfg.Limits)
		}
		if reason != "" {
			res.Rejected = append(res.Rejected, driver.Rejection{Index: i, Reason: reason})
			s.countRejected(reason)
			continue
		}
		valid = append(valid, int32(i))
	}
	if err := s.refusals.limited(driverID, now); err != nil {
		return driver.IngestResult{}, err
	}
	if len(valid) == 0 {
		// Invalid pings cost the bucket too: a client sending garbage in a
		// loop is slowed like one sending good pings.
		_, err := s.pipes.run(ctx, s.newIngestCall(driverID, now, len(pings), 0))
		if err != nil {
			return driver.IngestResult{}, s.refusals.ingestErr(driverID, now, err)
		}
		return res, nil
	}
	byTime := func(a, b int32) int {
		pa, pb := &pings[a].Ping, &pings[b].Ping
		if c := pa.TS.Compare(pb.TS); c != 0 {
			return c
		}
		return cmp.Compare(pa.Seq, pb.Seq)
	}
	if !slices.IsSortedFunc(valid, byTime) { // apps send them in order
		slices.SortStableFunc(valid, byTime)
	}
	call := s.newIngestCall(driverID, now, len(pings), len(valid))
	var disk cellDisk
	var slot *atomic.Pointer[cellDisk]
	var cached *cellDisk
	if len(valid) >= cellDiskMinBatch {
		slot = s.disks.slot(driverID)
		if cached = slot.Load(); cached != nil {
			disk = *cached
		}
	}
	for _, i := range valid {
		p := &pings[i].Ping
		var cell geo.Cell
		if slot != nil {
			cell = disk.cellOf(p.Pos)
		} else {
			cell = geo.CellOf(p.Pos, geo.ResIndex)
		}
		call.ping(*p, cell)
	}
	if slot != nil && disk.cell != 0 && (cached == nil || cached.cell != disk.cell) {
		d := disk
		slot.Store(&d)
	}
	v, err := s.pipes.run(ctx, call)
	if err != nil {
		return driver.IngestResult{}, s.refusals.ingestErr(driverID, now, err)
	}
	rep, err := parseIngestReply(v)
	if err != nil {
		return driver.IngestResult{}, err
	}
	if len(rep.codes) != len(valid) {
		return driver.IngestResult{}, fmt.Errorf("driver: ingest: %d codes for %d pings", len(rep.codes), len(valid))
	}
	var last driver.Ping
	for k, code := range rep.codes {
		switch code {
		case codeApplied:
			res.Accepted++
			last = pings[valid[k]].Ping
		case codeOlder:
			res.Accepted++
		case codeDuplicate:
			res.Duplicates++
		case codeJump:
			res.Rejected = append(res.Rejected, driver.Rejection{Index: int(valid[k]), Reason: driver.ReasonImplausible})
			s.countRejected(driver.ReasonImplausible)
		}
	}
	if len(res.Rejected) > 1 {
		slices.SortFunc(res.Rejected, func(a, b driver.Rejection) int { return cmp.Compare(a.Index, b.Index) })
	}
	res.LastSeq = rep.maxSeq
	if s.metrics.Accepted != nil && res.Accepted > 0 {
		s.metrics.Accepted(res.Accepted)
	}
	if rep.applied {
		err := s.pipes.put(ctx, geo.Update{ID: driverID, Prev: rep.prev, Pos: rep.pos, Seen: rep.ts, Status: rep.status})
		if err != nil {
			return driver.IngestResult{}, fmt.Errorf("driver: ingest: %w", err)
		}
		accepted := make([]driver.Ping, 0, res.Accepted)
		for k, code := range rep.codes {
			if code == codeApplied || code == codeOlder {
				accepted = append(accepted, pings[valid[k]].Ping)
			}
		}
		m := driver.Move{DriverID: driverID, TripID: rep.trip, Status: rep.status, From: rep.prev, Pos: rep.pos,
			TS: rep.ts, Seq: last.Seq, Heading: last.Heading, Speed: last.Speed, Accepted: accepted}
		for _, l := range s.listeners {
			l.DriverMoved(ctx, m)
		}
	}
	if s.metrics.Ingest != nil {
		s.metrics.Ingest(time.Since(start))
	}
	return res, nil
}

func (s *Ingester) countRejected(reason string) {
	if s.metrics.Rejected != nil {
		s.metrics.Rejected(reason)
	}
}
