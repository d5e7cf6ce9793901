package zones_test

import "math"

func cosT(a float64) float64 { return math.Cos(a) }
func sinT(a float64) float64 { return math.Sin(a) }
