// Package caller is who is calling an HTTP route: the verified claims of
// the request, carried on its echo.Context, and the role guards every
// route group uses. api's authenticate middleware attaches the claims
// (Attach); handlers in api and in its route packages (api/history, …)
// read them with From and guard routes with Guard, so those packages need
// not import api.
//
// Its two errors are mapped to 401 and 403 by api's error table.
package caller
