package payment

import (
	"strings"
	"testing"
)

// TestTripOf: PaymentTrip accepts exactly paymentIDPattern's IDs and
// returns its group.
func TestTripOf(t *testing.T) {
	hex16 := "0123456789abcdef"
	long := strings.Repeat("x", 64)
	for _, id := range []string{
		"pay_" + hex16 + "_t_1", "pay_" + hex16 + "_" + long, "pay_" + hex16 + "_" + long + "x",
		"pay_" + hex16 + "_", "pay_" + hex16 + "t_1", "pay_0123456789ABCDEF_t_1", "pay_0123456789abcde_t_1",
		"pax_" + hex16 + "_t_1", "pay_" + hex16 + "_t 1", "pay_" + hex16 + "_t\n", "pay_" + hex16 + "__-Az9",
		"", "pay_", "pay_" + hex16 + "_é", " pay_" + hex16 + "_t",
	} {
		tripID, ok := TripOf(id)
		m := paymentIDPattern.FindStringSubmatch(id)
		if ok != (m != nil) || (ok && tripID != m[1]) {
			t.Errorf("TripOf(%q) = %q, %v; pattern %q", id, tripID, ok, m)
		}
	}
}
