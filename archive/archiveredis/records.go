package archiveredis

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/hextrack/hextrack/archive"
	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/feed/feedredis"
)

// decoder turns what a round read from a topic's streams into archive
// records. The record streams' entries (see the package doc, "Record
// streams") are flat field lists written by the domain scripts.
type decoder struct {
	batch int
	m     *metrics
	log   *slog.Logger
	// oldest is the ms of the oldest unarchived entry read in this pass
	// (0: none); the pass resets it.
	oldest uint64

	// changes is Config.Changes. A trip's record is read again when its
	// feed is read to the end and the read held an event that changes
	// it, or an earlier full read did (owed), or this process has not
	// upserted it yet (not in upserted: after a start or a lease
	// takeover, what an earlier node owed is not known, so it is paid).
	changes  func(eventType string) bool
	owed     map[string]bool
	upserted map[string]bool
}

// maxUpserted bounds the upserted set; when full it is cleared, which
// costs one extra record read per trip, never a missed one.
const maxUpserted = 200_000

// changing reports whether evs hold an event that may change the trip's
// record.
func (d *decoder) changing(evs []archive.Event) bool {
	if d.changes == nil {
		return len(evs) > 0
	}
	for _, e := range evs {
		if d.changes(e.Type) {
			return true
		}
	}
	return false
}

// recorded notes that the records of ids were upserted.
func (d *decoder) recorded(ids []string) {
	if len(d.upserted)+len(ids) > maxUpserted {
		clear(d.upserted)
	}
	for _, id := range ids {
		d.upserted[id] = true
		delete(d.owed, id)
	}
}

// decodeTopic adds to b what the reply res of topic's streams holds and
// the cursors to advance; full: a stream returned a whole Batch (it may
// have more).
func (d *decoder) decodeTopic(topic string, streams []stream, res []any, b *batch) (full bool, err error) {
	kind, tag, _ := feed.ParseTopic(topic)
	tripID := ""
	if kind == "trip" {
		tripID = tag
	}
	feedRead, feedFull, changed := false, false, false
	for j, s := range streams {
		cursor, _ := res[2*j].(string)
		entries, _ := res[2*j+1].([]any)
		if len(entries) == 0 {
			continue
		}
		if len(entries) == d.batch {
			full = true
			feedFull = feedFull || s.kind == ""
		}
		var last string
		switch s.kind {
		case "":
			evs, prev, err := events(topic, tripID, entries)
			if err != nil {
				return false, err
			}
			if prev != cursor {
				// The stream no longer holds the event after the cursor
				// (trimmed or expired before it was archived, or the cursor
				// expired): continuity can't be proven.
				d.m.gaps.Inc()
				d.log.Warn("archive: gap: events may be missing from the archive", "topic", topic,
					"archived_to", cursor, "next_kept", evs[0].ID, "its_prev", prev)
			}
			if id, err := feed.ParseID(evs[0].ID); err == nil && (d.oldest == 0 || id.Ms < d.oldest) {
				d.oldest = id.Ms
			}
			b.events = append(b.events, evs...)
			changed = d.changing(evs)
			b.ledger = append(b.ledger, d.paymentEntries(evs)...)
			last, feedRead = evs[len(evs)-1].ID, true
		case feedredis.RecordTrail:
			pts, l, err := d.points(tripID, entries)
			if err != nil {
				return false, err
			}
			b.points, last = append(b.points, pts...), l
		case feedredis.RecordWebhooks:
			es, l, err := d.webhooks(tripID, entries)
			if err != nil {
				return false, err
			}
			b.ledger, last = append(b.ledger, es...), l
		case feedredis.RecordStatus:
			cs, l, err := d.statuses(tag, entries)
			if err != nil {
				return false, err
			}
			b.statuses, last = append(b.statuses, cs...), l
		}
		if id, err := entryID(entries[0]); err == nil && s.kind != "" && (d.oldest == 0 || id.Ms < d.oldest) {
			d.oldest = id.Ms
		}
		b.advance = append(b.advance, advance{s: s, last: last})
	}
	switch {
	case tripID == "" || !feedRead:
	case feedFull:
		// More to read: the record is upserted after the last of them.
		if changed {
			d.owed[tripID] = true
		}
	case changed || d.owed[tripID] || !d.upserted[tripID]:
		// A trip whose feed events were read to their end: its record is
		// upserted after them.
		b.trips = append(b.trips, tripID)
	}
	return full, nil
}

// fields returns an XRANGE entry's ID and fields as a map.
func fields(raw any) (string, map[string]string, error) {
	entry, _ := raw.([]any)
	if len(entry) != 2 {
		return "", nil, errReply
	}
	id, _ := entry[0].(string)
	kv, _ := entry[1].([]any)
	m := make(map[string]string, len(kv)/2)
	for j := 0; j+1 < len(kv); j += 2 {
		k, _ := kv[j].(string)
		v, _ := kv[j+1].(string)
		m[k] = v
	}
	return id, m, nil
}

// entryID parses an XRANGE entry's stream ID.
func entryID(raw any) (feed.ID, error) {
	entry, _ := raw.([]any)
	if len(entry) != 2 {
		return feed.ID{}, errReply
	}
	id, _ := entry[0].(string)
	return feed.ParseID(id)
}

// events decodes feed stream entries ({id, {field, value, …}}) into
// archive events; prev is the first entry's "prev" field.
func events(topic, tripID string, entries []any) (evs []archive.Event, prev string, err error) {
	evs = make([]archive.Event, 0, len(entries))
	for i, raw := range entries {
		id, f, err := fields(raw)
		if err != nil {
			return nil, "", err
		}
		if i == 0 {
			prev = f["prev"]
		}
		ev := archive.Event{Topic: topic, ID: id, TripID: tripID, Type: f["type"]}
		if d, ok := f["data"]; ok {
			ev.Data = []byte(d)
		}
		if ev.TS, err = time.Parse(time.RFC3339Nano, f["ts"]); err != nil {
			fid, perr := feed.ParseID(id)
			if perr != nil {
				return nil, "", fmt.Errorf("%w: entry id %q", errReply, id)
			}
			ev.TS = time.UnixMilli(int64(fid.Ms)).UTC()
		}
		evs = append(evs, ev)
	}
	return evs, prev, nil
}

// paymentStatus is the event type of a payment state change
// (payment.EventStatus; archiveredis imports no domain package).
const paymentStatus = "payment.status"

// paymentEntries are the ledger entries of the payment.status events among
// evs: the payment's state at each version, keyed "<payment id>:v<version>"
// (so a redelivered event is the same entry).
func (d *decoder) paymentEntries(evs []archive.Event) []archive.Entry {
	var out []archive.Entry
	for _, ev := range evs {
		if ev.Type != paymentStatus {
			continue
		}
		var pd struct {
			PaymentID string `json:"payment_id"`
			TripID    string `json:"trip_id"`
			Status    string `json:"status"`
			Amount    int64  `json:"amount"`
			Currency  string `json:"currency"`
			Version   int64  `json:"version"`
		}
		if err := json.Unmarshal(ev.Data, &pd); err != nil || pd.PaymentID == "" {
			d.invalid(ev.Topic, "payment.status event "+ev.ID, err)
			continue
		}
		id := pd.PaymentID + ":v" + strconv.FormatInt(pd.Version, 10)
		if pd.Version <= 0 {
			id = pd.PaymentID + ":e" + ev.ID
		}
		e := archive.Entry{ID: id, Kind: archive.EntryPayment, PaymentID: pd.PaymentID, TripID: ev.TripID,
			Amount: pd.Amount, Currency: pd.Currency, Status: pd.Status, At: ev.TS, Body: ev.Data}
		if err := e.Validate(); err != nil {
			d.invalid(ev.Topic, "payment.status event "+ev.ID, err)
			continue
		}
		out = append(out, e)
	}
	return out
}

// points decodes a trip's trail entries (fields seq, drv, lat, lng, ts ms,
// acc, spd, hdg; the optional ones empty when unknown). last is the last
// entry's ID.
func (d *decoder) points(tripID string, entries []any) (pts []archive.Point, last string, err error) {
	pts = make([]archive.Point, 0, len(entries))
	for _, raw := range entries {
		id, f, err := fields(raw)
		if err != nil {
			return nil, "", err
		}
		last = id
		pt := archive.Point{TripID: tripID, DriverID: f["drv"], Accuracy: optFloat(f["acc"]),
			Speed: optFloat(f["spd"]), Heading: optFloat(f["hdg"])}
		pt.Seq, _ = strconv.ParseInt(f["seq"], 10, 64)
		pt.Lat, _ = strconv.ParseFloat(f["lat"], 64)
		pt.Lng, _ = strconv.ParseFloat(f["lng"], 64)
		ms, _ := strconv.ParseInt(f["ts"], 10, 64)
		if ms > 0 {
			pt.TS = time.UnixMilli(ms).UTC()
		}
		if err := pt.Validate(); err != nil {
			d.invalid("trip:"+tripID, "trail entry "+id, err)
			continue
		}
		pts = append(pts, pt)
	}
	return pts, last, nil
}

// webhooks decodes a trip's stored webhook events (fields seq, pay,
// amount, currency, status, outcome, at ms, body) into ledger entries
// keyed "<payment id>:w<seq>": seq numbers the payment's stored events, so
// a redelivered entry is the same entry (a gateway's retry of an event ID
// is not stored twice by paymentredis).
func (d *decoder) webhooks(tripID string, entries []any) (es []archive.Entry, last string, err error) {
	es = make([]archive.Entry, 0, len(entries))
	for _, raw := range entries {
		id, f, err := fields(raw)
		if err != nil {
			return nil, "", err
		}
		last = id
		e := archive.Entry{ID: f["pay"] + ":w" + f["seq"], Kind: archive.EntryWebhook, PaymentID: f["pay"], TripID: tripID,
			Currency: f["currency"], Status: f["status"], Outcome: f["outcome"], Body: json.RawMessage(f["body"])}
		e.Amount, _ = strconv.ParseInt(f["amount"], 10, 64)
		if ms, _ := strconv.ParseInt(f["at"], 10, 64); ms > 0 {
			e.At = time.UnixMilli(ms).UTC()
		}
		if err := e.Validate(); err != nil || f["seq"] == "" {
			d.invalid("trip:"+tripID, "webhook entry "+id, err)
			continue
		}
		es = append(es, e)
	}
	return es, last, nil
}

// statuses decodes a driver's status entries (fields status, trip). The
// change's time is its entry ID (the Redis time of the change) in
// microseconds, the ID's sequence added as microseconds (at most 999), so
// two changes in one millisecond stay two rows and a redelivery is the
// same row.
func (d *decoder) statuses(driverID string, entries []any) (cs []archive.StatusChange, last string, err error) {
	cs = make([]archive.StatusChange, 0, len(entries))
	for _, raw := range entries {
		id, f, err := fields(raw)
		if err != nil {
			return nil, "", err
		}
		last = id
		fid, err := feed.ParseID(id)
		if err != nil {
			return nil, "", fmt.Errorf("%w: entry id %q", errReply, id)
		}
		c := archive.StatusChange{DriverID: driverID, Status: f["status"], TripID: f["trip"],
			At: archive.Time(int64(fid.Ms)*1000 + int64(min(fid.Seq, 999)))}
		if err := c.Validate(); err != nil {
			d.invalid("driver:"+driverID, "status entry "+id, err)
			continue
		}
		cs = append(cs, c)
	}
	return cs, last, nil
}

// invalid logs and counts a record that cannot be archived: it is
// skipped (a batch holding it would be refused whole, forever).
func (d *decoder) invalid(topic, what string, err error) {
	d.m.invalid.Inc()
	d.log.Warn("archive: skipping a record that cannot be archived", "topic", topic, "record", what, "err", err)
}

func optFloat(s string) *float64 {
	if s == "" {
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil
	}
	return &f
}
