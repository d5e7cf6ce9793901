package web

import (
	"embed"
	"io/fs"
)

// dist holds the built pages. "all:" keeps the dot-file placeholder so the
// pattern matches on a clean clone where nothing was built.
//
//go:embed all:dist
var dist embed.FS

// Files returns the built files rooted at dist/ (index.html, ops.html,
// driver.html, assets/...).
func Files() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		// fs.Sub fails only on an invalid path; "dist" is valid.
		panic(err)
	}
	return sub
}

// Built reports whether fsys holds built pages rather than only the
// placeholder.
func Built(fsys fs.FS) bool {
	_, err := fs.Stat(fsys, "index.html")
	return err == nil
}
