// Package deploy holds what an operator copies to run hextrack: the
// multi-stage Dockerfile, compose.yaml, the nginx configuration, Kubernetes
// manifests (k8s/) and the Grafana dashboard (grafana/hextrack.json).
// README.md beside this file explains sizing, persistence, kernel settings
// and the upgrade procedure.
//
// The Go code here is small on purpose. It renders nginx.conf.tmpl so that
// the committed nginx.conf (used by compose) and the configuration a local
// test writes for nginx in front of hextrack nodes on loopback come from one
// template and cannot drift apart:
//
//	var buf bytes.Buffer
//	err := deploy.NginxConfig{
//		Listen:    "127.0.0.1:18080",
//		Upstreams: []string{"127.0.0.1:18081", "127.0.0.1:18082"},
//		Dir:       t.TempDir(),
//	}.Render(&buf)
//	// write buf to dir/nginx.conf, then:
//	// nginx -p dir -c dir/nginx.conf -e dir/error.log -g 'daemon off;'
//
// The package's tests parse every manifest, the compose file and the
// dashboard, check the essentials an outage would hinge on (probes, drain,
// SSE buffering, WebSocket upgrade) and, where an nginx binary is on PATH,
// run `nginx -t` on the rendered configuration.
//
// It imports only the standard library and must not import any other
// hextrack package: nothing at run time depends on it.
package deploy
