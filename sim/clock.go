package sim

import "time"

// Clock is simulated time: it runs SpeedUp times faster than the wall
// clock from the moment it is made.
type Clock struct {
	SpeedUp float64
	start   time.Time
}

// NewClock starts a clock; speedUp <= 0 means 1.
func NewClock(speedUp float64) *Clock {
	if speedUp <= 0 {
		speedUp = 1
	}
	return &Clock{SpeedUp: speedUp, start: time.Now()}
}

// Now is the simulated time.
func (c *Clock) Now() time.Time {
	return c.start.Add(time.Duration(float64(time.Since(c.start)) * c.SpeedUp))
}

// Wall converts a simulated duration to wall time.
func (c *Clock) Wall(d time.Duration) time.Duration {
	return time.Duration(float64(d) / c.SpeedUp)
}

// Sleep waits a simulated duration; false if ctx ended first.
func (c *Clock) Sleep(ctx interface{ Done() <-chan struct{} }, d time.Duration) bool {
	t := time.NewTimer(c.Wall(d))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
