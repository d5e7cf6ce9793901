package rider

import "context"

// IndexTrip exposes indexTrip to the black-box tests (ops_test.go).
func (s *Service) IndexTrip(ctx context.Context, c Change) { s.indexTrip(ctx, c) }
