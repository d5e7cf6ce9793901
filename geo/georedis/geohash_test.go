package georedis

import (
	"context"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/internal/redistest"
)

// TestRedisGeoDistance: Redis' GEOSEARCH distance to a member, scaled by
// redisScale, is within geoErrM of our distance to the position GEOADD was
// given (7 decimals, as the index writes them), all over Redis GEO's
// latitudes and from a meter to 50 km; toRedisM and fromRedisM are on the
// safe side of it.
func TestRedisGeoDistance(t *testing.T) {
	ctx := context.Background()
	rdb, prefix := redistest.MustOpen(t)
	key := prefix + "geo"
	r := rand.New(rand.NewPCG(5, 6))
	worst := 0.0
	for i := 0; i < 3000; i++ {
		p := geo.Point{Lat: (r.Float64()*2 - 1) * geoMaxLat, Lng: (r.Float64()*2 - 1) * 179.9}
		switch i % 4 {
		case 0:
			p = geo.Offset(geo.Point{Lat: 41.15, Lng: -8.61}, r.Float64()*360, r.Float64()*20)
		case 1:
			p = geo.Point{Lat: (r.Float64()*2 - 1) * 0.01, Lng: (r.Float64()*2 - 1) * 0.01} // equator: widest cells
		}
		lat, lng := strconv.FormatFloat(p.Lat, 'f', 7, 64), strconv.FormatFloat(p.Lng, 'f', 7, 64)
		p.Lat, _ = strconv.ParseFloat(lat, 64)
		p.Lng, _ = strconv.ParseFloat(lng, 64)
		if err := rdb.Do(ctx, "GEOADD", key, lng, lat, "m").Err(); err != nil {
			t.Fatal(err)
		}
		m := []float64{1, 30, 300, 3000, 50000}[i%5] * r.Float64()
		c := geo.Offset(p, r.Float64()*360, m)
		if !inGeoRange(c, 1) {
			continue
		}
		res, err := rdb.GeoSearchLocation(ctx, key, &redis.GeoSearchLocationQuery{
			GeoSearchQuery: redis.GeoSearchQuery{Longitude: c.Lng, Latitude: c.Lat, Radius: 60000, RadiusUnit: "m"},
			WithDist:       true,
		}).Result()
		if err != nil || len(res) != 1 {
			t.Fatalf("GEOSEARCH around %v: %v %v", c, res, err)
		}
		d, rd := geo.Distance(c, p), res[0].Dist
		worst = max(worst, abs(rd/redisScale-d))
		if abs(rd/redisScale-d) > 0.4 {
			t.Fatalf("%v from %v: Redis %.4f m (scaled %.4f), ours %.4f m: off by more than 0.4 m (geoErrM %v)", p, c, rd, rd/redisScale, d, geoErrM)
		}
		if fromRedisM(rd) > d || toRedisM(d) < rd {
			t.Fatalf("%v from %v: Redis %.4f m, ours %.4f m: fromRedisM %.4f, toRedisM %.4f", p, c, rd, d, fromRedisM(rd), toRedisM(d))
		}
	}
	t.Logf("largest difference %.3f m", worst)
}

func abs(v float64) float64 { return max(v, -v) }
