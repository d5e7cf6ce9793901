package sim

import (
	"math"
	"math/rand/v2"
	"time"

	"github.com/hextrack/hextrack/geo"
)

// The server refuses a fix implying more than its --max-jump-speed (70 m/s
// by default) from the driver's last accepted fix, beyond 50 m of GPS
// tolerance. A sped-up car covers SpeedUp times more road per wall second
// than a real one, so its fixes can't carry the wall time they were taken
// at and all look plausible; stamps keeps every honest fix within a
// stricter rule than the server's (jumpSpeed, jumpSlack) of the one before.
const (
	jumpSpeed = 65.0 // m/s
	jumpSlack = 45.0 // m
	// holdLead: a car whose stamps run further ahead of the wall clock
	// than this stands still until they are back within it, so at a
	// speed-up and road speed the jump rule can't follow (e.g. 40x on a
	// motorway) the car drives at the fastest pace the server accepts.
	holdLead = 3 * time.Second
	// maxLead bounds how far ahead of the wall clock a stamp may run
	// (the server refuses fixes over 30 s ahead).
	maxLead = 10 * time.Second
	// A deliberate outlier is sent only where the server must refuse it:
	// beyond outlierSpeed implied from the last honest fix plus
	// outlierSlack, a looser rule than the server's (see fix).
	outlierSpeed = 100.0 // m/s
	outlierSlack = 100.0 // m
)

// fix takes a GPS fix of a car at pos, due at wall time at (now is the wall
// clock), and stamps it. A deliberate outlier is kept only when the server
// is sure to refuse it (refused); otherwise the fix is taken again as an
// honest one. The server accepts a driver's first fix whatever it is, and a
// wild fix long enough after the last honest one is a plausible jump: an
// accepted outlier becomes the position the server measures every later
// honest fix from, and refuses them all as implausible jumps until the car
// happens to pass near it.
func (s *stamps) fix(rng *rand.Rand, g GPS, pos geo.Point, now, at time.Time) (p geo.Point, acc float64, ts time.Time, outlier bool) {
	p, acc, outlier = g.Fix(rng, pos)
	if outlier && !s.refused(at, p) {
		p, acc = g.honest(rng, pos)
		outlier = false
	}
	return p, acc, s.stamp(now, at, p, outlier), outlier
}

// refused: an outlier at p, due at wall time at, would be refused by the
// server's jump rule, with room to spare, against the last honest fix. No
// honest fix yet (the driver's first): it would not.
func (s *stamps) refused(at time.Time, p geo.Point) bool {
	if s.chainTS.IsZero() {
		return false
	}
	// The latest stamp stamp could give it (maxLead only makes it earlier).
	ts := at.Truncate(time.Millisecond)
	if e := s.last.Add(time.Millisecond); ts.Before(e) {
		ts = e
	}
	return geo.Distance(s.chainPos, p) > outlierSpeed*ts.Sub(s.chainTS).Abs().Seconds()+outlierSlack
}

// stamps chooses the timestamps of one driver's fixes.
//
// A fix is stamped with the wall time it was due, unless that is too soon
// after the driver's last honest fix for the distance between them (a
// sped-up car; GPS jitter on a fast road): then with the earliest time at
// which that distance is plausible. Deliberate outliers are stamped in
// order but are not links of the chain: the server refuses them (fix sends
// only those it must refuse) and keeps the fix before. Stamps are whole
// milliseconds (the server's precision) and strictly increase. The lead
// this builds over the wall clock is paid back while the car is slow or
// stands; past holdLead the car stands (see ahead), and no stamp runs more
// than maxLead ahead.
type stamps struct {
	last     time.Time // the last stamp given
	chainTS  time.Time // the last honest fix
	chainPos geo.Point
}

// ahead: the stamps run more than holdLead ahead of the wall clock now.
func (s *stamps) ahead(now time.Time) bool { return s.last.Sub(now) > holdLead }

func (s *stamps) stamp(now, at time.Time, p geo.Point, outlier bool) time.Time {
	ts := at.Truncate(time.Millisecond)
	if !s.last.IsZero() {
		earliest := s.last.Add(time.Millisecond)
		if !s.chainTS.IsZero() && !outlier {
			if gap := geo.Distance(s.chainPos, p) - jumpSlack; gap > 0 {
				need := s.chainTS.Add(time.Duration(math.Ceil(gap/jumpSpeed*1000)) * time.Millisecond)
				if need.After(earliest) {
					earliest = need
				}
			}
		}
		if ts.Before(earliest) {
			ts = earliest
		}
	}
	if lim := now.Add(maxLead).Truncate(time.Millisecond); ts.After(lim) && lim.After(s.last) {
		ts = lim
	}
	s.last = ts
	if !outlier {
		s.chainTS, s.chainPos = ts, p
	}
	return ts
}
