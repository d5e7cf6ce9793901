package metrics

import (
	"maps"
	"sync"
)

// Rejections counts the server's ping rejections by reason, telling the
// simulator's deliberate GPS outliers (which the server should refuse as
// implausible_jump) from everything else. Safe for concurrent use.
type Rejections struct {
	mu       sync.Mutex
	outliers map[fixKey]struct{} // deliberate outliers not yet rejected
	sent     int64
	by       map[string]RejectCount
}

type fixKey struct {
	driver string
	seq    int64
}

// RejectCount is how many pings the server rejected for one reason.
type RejectCount struct {
	// Deliberate: the simulator's own outliers, rejected as intended.
	Deliberate int64 `json:"deliberate_outliers"`
	// Unexpected: honest fixes; each one is a bug in the simulator or the server.
	Unexpected int64 `json:"unexpected"`
}

// Outlier records that a driver's fix seq is a deliberate outlier.
func (r *Rejections) Outlier(driver string, seq int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.outliers == nil {
		r.outliers = map[fixKey]struct{}{}
	}
	r.outliers[fixKey{driver, seq}] = struct{}{}
	r.sent++
}

// Rejected records the server's verdict on a driver's fix seq.
func (r *Rejections) Rejected(driver string, seq int64, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.by == nil {
		r.by = map[string]RejectCount{}
	}
	n := r.by[reason]
	k := fixKey{driver, seq}
	if _, ok := r.outliers[k]; ok && reason == ReasonImplausibleJump {
		delete(r.outliers, k)
		n.Deliberate++
	} else {
		n.Unexpected++
	}
	r.by[reason] = n
}

// Summary returns the counts by reason and the deliberate outliers sent.
func (r *Rejections) Summary() (map[string]RejectCount, int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.by) == 0 {
		return nil, r.sent
	}
	return maps.Clone(r.by), r.sent
}

// ReasonImplausibleJump is the server's rejection reason for a fix too far
// from the driver's last accepted one (driver.ReasonImplausible): what a
// deliberate outlier should get.
const ReasonImplausibleJump = "implausible_jump"
