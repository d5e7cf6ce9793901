// Package suspensions serves ops' driver suspension routes (an api.Routes
// wired by cmd), for ops (a token of role ops, or an API key with the ops
// scope):
//
//	POST /v1/drivers/{id}/suspend      {"reason"} (required, ≤ 500 bytes): the
//	                                   driver's state with its suspension; 404
//	                                   unknown, 409 on a trip; again: the
//	                                   first suspension stands, 200
//	POST /v1/drivers/{id}/reinstate    {"reason"} (optional; body may be
//	                                   empty): the driver, offline
//	GET  /v1/drivers/{id}/suspensions  the current suspension (or null) and
//	                                   the audit log, newest first
//	GET  /v1/ops/drivers/suspended     suspended drivers, newest first (?limit=
//	                                   1..1000, default 100)
//
// The caller's subject is recorded as who did it. Closing a suspended
// driver's WebSocket is the Drivers implementation's job (cmd wires
// driverredis with the command channel's live notice). Handlers are thin:
// they bind, call the Drivers interface it declares and return driver's
// sentinels to api's one error table. It must not import api or go-redis.
package suspensions
