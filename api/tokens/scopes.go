package tokens

import "slices"

// Scopes an API key may hold (Claims.Scopes of a RoleService caller). This
// is the one list: apikey refuses any other scope (400 invalid_scope), and
// route guards (caller.RequireScope, caller.GuardScope) name these.
const (
	// ScopeTripsRead: read trips and their history (GET /v1/trips…, a
	// driver's trips and shifts), as ops would see them.
	ScopeTripsRead = "trips:read"
	// ScopeWebhooksManage: manage webhook endpoints and their deliveries.
	ScopeWebhooksManage = "webhooks:manage"
	// ScopeOps: everything ops may do; implies every other scope.
	ScopeOps = "ops"
)

// KnownScopes returns the scopes an API key may hold, in a stable order.
func KnownScopes() []string {
	return []string{ScopeTripsRead, ScopeWebhooksManage, ScopeOps}
}

// KnownScope reports whether s is one of KnownScopes.
func KnownScope(s string) bool { return slices.Contains(KnownScopes(), s) }
