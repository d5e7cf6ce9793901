// Package apikeys serves the API-key routes (an api.Routes wired by cmd),
// for ops (a token of role ops, or an API key with the ops scope):
//
//	POST   /v1/apikeys       create a key: {name, scopes, expires_in}; 201
//	                         with the key and its token, shown this once
//	GET    /v1/apikeys       list the keys, newest first, never a secret
//	DELETE /v1/apikeys/{id}  revoke a key; 204 (again: 204), 404 unknown
//
// Handlers are thin: they bind, call the Keys interface it declares
// (apikey.Service implements it) and return apikey's errors to api's one
// error table. It must not import api.
package apikeys
