package api

import (
	"encoding/json"
	"testing"
)

// TestLocationSeq checks the seq read from trip.location data, on the fast
// path (rider's layout) and the decoding fallback.
func TestLocationSeq(t *testing.T) {
	tests := []struct {
		name string
		data string
		want int64
		ok   bool
	}{
		{"rider layout", `{"trip_id":"t_1","seq":42,"driver_id":"d","lat":1,"lng":2,"ts":"2024-11-25T08:00:00Z"}`, 42, true},
		{"seq last", `{"trip_id":"t_1","seq":7}`, 7, true},
		{"other order", `{"seq":9,"trip_id":"t_1"}`, 9, true},
		{"no seq", `{"trip_id":"t_1"}`, 0, true},
		{"seq not a number", `{"trip_id":"t_1","seq":"x"}`, 0, false},
		{"seq float", `{"trip_id":"t_1","seq":1.5}`, 0, false},
		{"quote in trip id", `{"trip_id":"a\"","seq":3}`, 3, true},
		{"malformed", `{"trip_id":"t_1","seq":`, 0, false},
		{"duplicate seq", `{"trip_id":"t_1","seq":1,"Seq":2}`, 2, true},
		{"escaped key", `{"trip_id":"t_1","seq":1,"s\u0065q":2}`, 2, true},
		{"folded key", `{"trip_id":"t_1","seq":1,"ſeq":2}`, 2, true},
		{"huge", `{"trip_id":"t_1","seq":99999999999999999999}`, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := locationSeq([]byte(tt.data))
			if got != tt.want || ok != tt.ok {
				t.Fatalf("locationSeq(%s) = %d, %v; want %d, %v", tt.data, got, ok, tt.want, tt.ok)
			}
		})
	}
}

// FuzzLocationSeq: on valid JSON the fast path agrees with decoding.
func FuzzLocationSeq(f *testing.F) {
	f.Add([]byte(`{"trip_id":"t_1","seq":42,"lat":1}`))
	f.Add([]byte(`{"trip_id":"t_1","seq":7}`))
	f.Add([]byte(`{"trip_id":"t_1","seq":7,"SEQ":8}`))
	f.Add([]byte(`{"trip_id":"t_1","seq":7,"\u017feq":8}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, ok := locationSeq(data)
		var l struct {
			Seq int64 `json:"seq"`
		}
		if json.Unmarshal(data, &l) == nil && (!ok || got != l.Seq) {
			t.Fatalf("locationSeq(%q) = %d, %v; json says %d", data, got, ok, l.Seq)
		}
	})
}
