package api_test

import (
	"bufio"
	"bytes"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/hextrack/hextrack/api"
)

// specRoutes reads "METHOD /path" pairs from openapi.yaml: paths are the
// two-space-indented keys under "paths:", methods the four-space keys below.
func specRoutes(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(api.OpenAPI()))
	inPaths := false
	path := ""
	pathRe := regexp.MustCompile(`^  (/[^:]*):\s*$`)
	methodRe := regexp.MustCompile(`^    (get|put|post|delete|patch|head|options):`)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "paths:") {
			inPaths = true
			continue
		}
		if !inPaths {
			continue
		}
		if line != "" && !strings.HasPrefix(line, " ") && !strings.HasPrefix(line, "#") {
			inPaths = false
			continue
		}
		if m := pathRe.FindStringSubmatch(line); m != nil {
			path = m[1]
			continue
		}
		if m := methodRe.FindStringSubmatch(line); m != nil && path != "" {
			out[strings.ToUpper(m[1])+" "+path] = true
		}
	}
	return out
}

var echoParam = regexp.MustCompile(`:([A-Za-z_]+)`)

// TestOpenAPICoversRoutes fails when a registered route is missing from the
// spec, or the spec names a route the server does not have.
func TestOpenAPICoversRoutes(t *testing.T) {
	srv, _ := newServer(t)
	spec := specRoutes(t)
	if len(spec) < 5 {
		t.Fatalf("parsed only %d routes from openapi.yaml", len(spec))
	}
	registered := map[string]bool{}
	for _, r := range srv.Echo().Routes() {
		if strings.HasPrefix(r.Method, "echo_") || r.Method == "*" {
			continue
		}
		p := echoParam.ReplaceAllString(r.Path, "{$1}")
		p = strings.ReplaceAll(p, "*", "{path}")
		registered[r.Method+" "+p] = true
	}
	var missing, extra []string
	for r := range registered {
		if !spec[r] {
			missing = append(missing, r)
		}
	}
	for r := range spec {
		if !registered[r] {
			extra = append(extra, r)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 {
		t.Errorf("routes missing from openapi.yaml:\n  %s", strings.Join(missing, "\n  "))
	}
	if len(extra) > 0 {
		t.Errorf("openapi.yaml names routes the server lacks:\n  %s", strings.Join(extra, "\n  "))
	}
}
