package tripredis

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/trip"
)

// stopGuard checks a stop's completion: where the driver is (geotag), the
// drop's uploaded proofs and its PIN.
type stopGuard struct {
	*base
	proofs trip.ProofFiles // nil: photo and signature proofs are never found
}

// check runs the checks of completing st, the PIN last (a wrong one is
// counted only when the rest passed); it returns the driver's distance
// from the stop (m, rounded).
func (s *stopGuard) check(ctx context.Context, t trip.Trip, m map[string]string, st trip.Stop, in trip.CompleteStop) (float64, error) {
	d, err := s.geotag(t, m, st, in)
	if err != nil {
		return d, err
	}
	if err := s.checkProof(ctx, t, st); err != nil {
		return d, err
	}
	return d, s.checkPIN(ctx, t.ID, st.ID, in.PIN)
}

// geotag returns how far the driver is from st: by in's position, else
// the trip's driver's last stored fix; trip.ErrTooFar beyond
// Config.StopCompleteRadius or when no position is known.
func (s *stopGuard) geotag(t trip.Trip, m map[string]string, st trip.Stop, in trip.CompleteStop) (float64, error) {
	var at geo.Point
	switch {
	case in.Lat != nil:
		at = geo.Point{Lat: *in.Lat, Lng: *in.Lng}
	case m["loc_drv"] != "" && m["loc_drv"] == t.DriverID:
		at.Lat, _ = strconv.ParseFloat(m["loc_lat"], 64)
		at.Lng, _ = strconv.ParseFloat(m["loc_lng"], 64)
	default:
		return 0, fmt.Errorf("%w: no position of the driver is known; send lat and lng", trip.ErrTooFar)
	}
	d := math.Round(geo.Distance(at, geo.Point{Lat: st.Location.Lat, Lng: st.Location.Lng}))
	if r := s.cfg.StopCompleteRadius; d > r {
		return d, fmt.Errorf("%w: %.0f m from stop %s, at most %.0f m", trip.ErrTooFar, d, st.ID, r)
	}
	return d, nil
}

// checkProof: a drop stop's required photo and signature must have been
// uploaded (no ProofFiles: never).
func (s *stopGuard) checkProof(ctx context.Context, t trip.Trip, st trip.Stop) error {
	if st.Kind != trip.StopDrop || st.Proof == nil {
		return nil
	}
	var missing []string
	for _, k := range []struct {
		kind string
		need bool
	}{{trip.ProofPhoto, st.Proof.Photo}, {trip.ProofSignature, st.Proof.Signature}} {
		if !k.need {
			continue
		}
		ok := false
		if s.proofs != nil {
			var err error
			if ok, err = s.proofs.Has(ctx, t.ID, st.ID, k.kind); err != nil {
				return err
			}
		}
		if !ok {
			missing = append(missing, k.kind)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: stop %s needs a %s uploaded first", trip.ErrProofRequired, st.ID, strings.Join(missing, " and a "))
	}
	return nil
}

// checkPIN checks the PIN a driver entered for stop stopID of trip tripID:
// trip.ErrInvalidPIN when wrong (each wrong one counted, atomically),
// trip.ErrPINExhausted once pinAttempts were wrong (the right one too).
func (s *stopGuard) checkPIN(ctx context.Context, tripID, stopID, pin string) error {
	h := ""
	if pin != "" {
		h = trip.PINHash(tripID, stopID, pin)
	}
	res, err := pinScript.Run(ctx, s.rdb, []string{tripKey(s.cfg.Prefix, tripID)}, stopID, h, pinAttempts).Text()
	if err != nil {
		return fmt.Errorf("trip: pin of %s: %w", tripID, err)
	}
	switch res {
	case "ok", "none":
		return nil
	case "exhausted":
		return fmt.Errorf("%w: %d wrong PINs for stop %s; ops can complete it with override", trip.ErrPINExhausted, pinAttempts, stopID)
	}
	if pin == "" {
		return fmt.Errorf("%w: stop %s needs the recipient's PIN", trip.ErrInvalidPIN, stopID)
	}
	return fmt.Errorf("%w for stop %s", trip.ErrInvalidPIN, stopID)
}
