// Package web holds hextrack's browser pages — the rider map (/), the ops
// dashboard (/ops) and the driver page (/driver) — and exposes their built
// files as an fs.FS for the api package to serve.
//
// The sources live in src/ and are bundled by esbuild (npm run build, or
// make web) into dist/, which is embedded at compile time. dist/ is not
// committed apart from a placeholder, so a clean clone still builds: the
// server then answers / with a page saying how to build the pages.
//
// sdk/ is @hextrack/client, the npm package (JavaScript, no Go) the pages
// take every stream and the driver channel from; see sdk/README.md.
//
// This package imports nothing of hextrack's; it must not import api,
// echo or any domain package.
package web
