package geo

import (
	"context"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/hextrack/hextrack/internal/redistest"
)

// TestGeohashMatchesRedis: geohash gives the score GEOADD does, and a cover
// holds every point within its radius.
func TestGeohashMatchesRedis(t *testing.T) {
	ctx := context.Background()
	rdb, prefix := redistest.MustOpen(t)
	key := prefix + "geohash"
	r := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 2000; i++ {
		p := Point{Lat: (r.Float64()*2 - 1) * geoMaxLat, Lng: (r.Float64()*2 - 1) * 180}
		if i%4 == 0 {
			p = Offset(Point{Lat: 41.15, Lng: -8.61}, r.Float64()*360, r.Float64()*20)
		}
		// Positions go to Redis as 7-decimal strings.
		lat, lng := strconv.FormatFloat(p.Lat, 'f', 7, 64), strconv.FormatFloat(p.Lng, 'f', 7, 64)
		p.Lat, _ = strconv.ParseFloat(lat, 64)
		p.Lng, _ = strconv.ParseFloat(lng, 64)
		if err := rdb.Do(ctx, "GEOADD", key, lng, lat, "m").Err(); err != nil {
			t.Fatal(err)
		}
		score, err := rdb.ZScore(ctx, key, "m").Result()
		if err != nil {
			t.Fatal(err)
		}
		if uint64(score) != geohash(p) {
			t.Fatalf("geohash(%v) = %d, GEOADD score %d", p, geohash(p), uint64(score))
		}
		// A point at distance ≤ radius is in a range of the cover.
		c := Offset(p, r.Float64()*360, r.Float64()*300)
		for _, cv := range geoCovers(nil, c, 400, 400, 20) {
			if Distance(c, p) > cv.radius {
				continue
			}
			in := false
			for _, rg := range cv.ranges {
				in = in || (geohash(p) >= rg[0] && geohash(p) <= rg[1])
			}
			if !in {
				t.Fatalf("%v at %.3f m of %v is in no range of the %v m cover", p, Distance(c, p), c, cv.radius)
			}
		}
	}
}

func BenchmarkGeoCovers(b *testing.B) {
	b.ReportAllocs()
	var covers []geoCover
	for i := 0; i < b.N; i++ {
		covers = geoCovers(covers[:0], Point{Lat: 41.15, Lng: -8.61}, 3000, nearbyFirstM, 20)
		_ = coverArgs(covers)
	}
}
