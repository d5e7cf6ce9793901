package georedis

// UseCellsForNearby makes Nearby walk the r9 cells (as near the poles) until
// the returned restore is called; tests compare both paths.
func UseCellsForNearby() (restore func()) {
	nearbyUseCells = true
	return func() { nearbyUseCells = false }
}
