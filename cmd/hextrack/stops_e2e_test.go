package main

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/hextrack/hextrack/client"
	"github.com/hextrack/hextrack/internal/redistest"
)

// TestDropNeedsItsPhoto: the stop lifecycle and proof of delivery wired
// together on a real node: a drop whose policy asks for a photo is refused
// (422 proof_required) until the driver uploads one through the proof
// route (which checks the stop with the trip service's DropStop), then it
// completes and so does the trip; a geotag 200 m off is refused.
func TestDropNeedsItsPhoto(t *testing.T) {
	url := realRedis(t)
	m := NewMain(Config{Addr: "127.0.0.1:0", RedisURL: url, Dev: true, LogLevel: "warn", Prefix: redistest.Prefix(t),
		PodDir: filepath.Join(t.TempDir(), "proofs")}, io.Discard)
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = m.Close()
		rdb, _ := openRedis(url)
		redistest.Clean(rdb, m.Config.Prefix)
		_ = rdb.Close()
	})
	ctx := context.Background()
	base := "http://" + m.Addr()
	anon := client.New(base, "", nil)
	rtok, _ := anon.DevToken(ctx, "rider", "r_stops", time.Hour)
	dtok, _ := anon.DevToken(ctx, "driver", "d_stops", time.Hour)
	rc, dc := anon.WithToken(rtok), anon.WithToken(dtok)
	// The driver is available near the pickup first: dispatch offers it the
	// trip, and it accepts once the offer is there.
	if _, err := dc.SetStatus(ctx, "d_stops", "available"); err != nil {
		t.Fatal(err)
	}
	if _, err := dc.SendLocation(ctx, "d_stops", client.Ping{Lat: 41.1490, Lng: -8.6109, TS: time.Now().Add(-time.Second), Seq: 1}); err != nil {
		t.Fatal(err)
	}
	snap, err := rc.CreateTrip(ctx, client.CreateTripRequest{Kind: "delivery", Stops: []client.StopInput{
		{Kind: "pickup", Location: client.LatLng{Lat: 41.1496, Lng: -8.6109}},
		{Kind: "drop", Location: client.LatLng{Lat: 41.16, Lng: -8.62}, Proof: &client.StopProof{Photo: true}}}}, "")
	if err != nil {
		t.Fatal(err)
	}
	id := snap.Trip.ID
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := dc.TripAction(ctx, id, "accept", "")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("accept: %v", err)
		}
		time.Sleep(100 * time.Millisecond) // until dispatch's offer is there
	}
	at := func(lat, lng float64) client.CompleteStopRequest {
		return client.CompleteStopRequest{Lat: &lat, Lng: &lng}
	}
	if _, err := dc.CompleteStop(ctx, id, "s1", at(41.1496, -8.6109)); err != nil {
		t.Fatal(err)
	}
	code := func(err error) string {
		var ae *client.Error
		if errors.As(err, &ae) {
			return ae.Code
		}
		return ""
	}
	if _, err := dc.CompleteStop(ctx, id, "s2", at(41.16+200/111_195.0, -8.62)); code(err) != "too_far_from_stop" {
		t.Fatalf("200 m off: %v, want too_far_from_stop", err)
	}
	if _, err := dc.CompleteStop(ctx, id, "s2", at(41.16, -8.62)); code(err) != "proof_required" {
		t.Fatalf("no photo: %v, want proof_required", err)
	}
	var img, body bytes.Buffer
	_ = png.Encode(&img, image.NewGray(image.Rect(0, 0, 8, 8)))
	w := multipart.NewWriter(&body)
	fw, _ := w.CreateFormFile("file", "door.png")
	_, _ = fw.Write(img.Bytes())
	_ = w.Close()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/trips/"+id+"/stops/s2/proof/photo", &body)
	req.Header.Set("Authorization", "Bearer "+dtok)
	req.Header.Set("Content-Type", w.FormDataContentType())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("photo upload: %d %s", resp.StatusCode, b)
	}
	s, err := dc.CompleteStop(ctx, id, "s2", at(41.16, -8.62))
	if err != nil || s.Trip.Status != "completed" || s.Trip.Stops[1].Status != "completed" {
		t.Fatalf("with the photo: %v %+v", err, s.Trip)
	}
}
