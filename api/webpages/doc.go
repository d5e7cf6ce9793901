// Package webpages serves the web pages (rider, ops, driver) and their
// assets from the files package web embeds, with the pages' security
// headers (a CSP that admits the configured tile host), ETags and
// revalidation, or a "run make web" page when the binary was built without
// them.
//
// api registers its handlers on the routes; webpages must not import api
// or any domain package.
package webpages
