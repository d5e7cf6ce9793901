package deploy

import (
	_ "embed"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/template"
)

//go:embed nginx.conf.tmpl
var nginxTemplateText string

var nginxTemplate = template.Must(template.New("nginx.conf.tmpl").Parse(nginxTemplateText))

// NginxConfig fills nginx.conf.tmpl. The zero value of every optional field
// means a sensible default; Listen and Upstreams are required.
type NginxConfig struct {
	// Listen is nginx's listen address, e.g. "8080" or "127.0.0.1:18080".
	Listen string
	// Upstreams are the hextrack nodes as host:port. They are balanced by
	// least open connections, with no stickiness.
	Upstreams []string
	// Resolver is a DNS server used to re-resolve upstream names while nginx
	// runs (Docker's is 127.0.0.11). Empty: names are resolved once at
	// start. Needs nginx 1.27.3 or later.
	Resolver string
	// Dir, when set, holds the pid file, error and access logs and temp
	// files, so nginx runs without touching system paths (tests). Empty: the
	// compiled-in defaults and /var/log/nginx (the container image).
	Dir string
	// WorkerProcesses is the number of worker processes; 0 means "auto"
	// (one per CPU).
	WorkerProcesses int
	// WorkerConnections bounds connections per worker, client and upstream
	// sides counted separately, so a worker proxies about half as many
	// clients. 0 means 16384.
	WorkerConnections int
	// RlimitNofile is each worker's open-file limit; it must exceed
	// WorkerConnections. 0 means WorkerConnections plus 1024 for logs,
	// listeners and temp files.
	RlimitNofile int
}

// Compose is the configuration deploy/nginx.conf is rendered from: the two
// nodes of compose.yaml, Docker's DNS, container paths, and limits sized
// for the nofile ulimit compose gives the nginx container (65536).
func Compose() NginxConfig {
	return NginxConfig{
		Listen:            "8080",
		Upstreams:         []string{"hextrack-1:8080", "hextrack-2:8080"},
		Resolver:          "127.0.0.11",
		WorkerConnections: 32768,
		RlimitNofile:      65536,
	}
}

// Local is a configuration for nginx in front of hextrack nodes on
// loopback: it listens on listen, writes everything under dir, and keeps
// within a per-process limit of 20,000 open files (two workers of 9,000
// connections each, about 9,000 proxied clients in all).
func Local(listen, dir string, upstreams ...string) NginxConfig {
	return NginxConfig{
		Listen:            listen,
		Upstreams:         upstreams,
		Dir:               dir,
		WorkerProcesses:   2,
		WorkerConnections: 9000,
		RlimitNofile:      19000,
	}
}

// Render writes the nginx configuration. It fails on a missing listen
// address or node, and on values that would let nginx start with a broken
// configuration (a space or ';' in an address would end the directive).
func (c NginxConfig) Render(w io.Writer) error {
	if err := c.validate(); err != nil {
		return err
	}
	return nginxTemplate.Execute(w, c)
}

func (c NginxConfig) validate() error {
	if c.Listen == "" {
		return errors.New("deploy: nginx listen address is required")
	}
	if len(c.Upstreams) == 0 {
		return errors.New("deploy: at least one hextrack upstream is required")
	}
	words := append([]string{c.Listen, c.Resolver, c.Dir}, c.Upstreams...)
	for _, s := range words {
		if strings.ContainsAny(s, " \t\n;{}'\"$#") {
			return fmt.Errorf("deploy: %q is not a valid nginx address or path", s)
		}
	}
	for _, u := range c.Upstreams {
		if u == "" || !strings.Contains(u, ":") {
			return fmt.Errorf("deploy: upstream %q must be host:port", u)
		}
	}
	if c.WorkerProcesses < 0 || c.WorkerConnections < 0 || c.RlimitNofile < 0 {
		return errors.New("deploy: nginx worker settings must not be negative")
	}
	if c.RlimitNofile != 0 && c.RlimitNofile <= c.WorkerConnectionsValue() {
		return fmt.Errorf("deploy: worker_rlimit_nofile %d must exceed worker_connections %d",
			c.RlimitNofile, c.WorkerConnectionsValue())
	}
	return nil
}

// WorkerProcessesValue is the worker_processes value written (template use).
func (c NginxConfig) WorkerProcessesValue() string {
	if c.WorkerProcesses == 0 {
		return "auto"
	}
	return strconv.Itoa(c.WorkerProcesses)
}

// WorkerConnectionsValue is the worker_connections value written.
func (c NginxConfig) WorkerConnectionsValue() int {
	if c.WorkerConnections == 0 {
		return 16384
	}
	return c.WorkerConnections
}

// RlimitNofileValue is the worker_rlimit_nofile value written.
func (c NginxConfig) RlimitNofileValue() int {
	if c.RlimitNofile == 0 {
		return c.WorkerConnectionsValue() + 1024
	}
	return c.RlimitNofile
}
