package deploy_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// manifest is one YAML document of k8s/, kept as a node so each check can
// decode the shape it needs.
type manifest struct {
	file       string
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	node yaml.Node
}

// decodeAll reads every document of a YAML file.
func decodeAll(tb testing.TB, path string) []yaml.Node {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	var docs []yaml.Node
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			tb.Fatalf("%s: %v", path, err)
		}
		docs = append(docs, n)
	}
}

// mustLoadManifests parses every Kubernetes manifest in k8s/ except the
// kustomization, which is not an API object.
func mustLoadManifests(tb testing.TB) []manifest {
	tb.Helper()
	files, err := filepath.Glob("k8s/*.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	var out []manifest
	for _, file := range files {
		if filepath.Base(file) == "kustomization.yaml" {
			continue
		}
		for _, n := range decodeAll(tb, file) {
			var m manifest
			if err := n.Decode(&m); err != nil {
				tb.Fatalf("%s: %v", file, err)
			}
			m.file, m.node = file, n
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		tb.Fatal("no manifests found in k8s/")
	}
	return out
}

// only returns the one manifest of a kind and decodes it into v.
func only(tb testing.TB, ms []manifest, kind string, v any) manifest {
	tb.Helper()
	var found []manifest
	for _, m := range ms {
		if m.Kind == kind {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		tb.Fatalf("want exactly one %s manifest, found %d", kind, len(found))
	}
	if v != nil {
		if err := found[0].node.Decode(v); err != nil {
			tb.Fatalf("%s %s: %v", kind, found[0].file, err)
		}
	}
	return found[0]
}

var dns1123 = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

func TestManifestsHaveIdentity(t *testing.T) {
	// The API group/version each kind must use: the stable ones, so the
	// manifests apply to any supported cluster.
	wantAPI := map[string]string{
		"Namespace":               "v1",
		"ServiceAccount":          "v1",
		"ConfigMap":               "v1",
		"Secret":                  "v1",
		"Service":                 "v1",
		"Deployment":              "apps/v1",
		"PodDisruptionBudget":     "policy/v1",
		"HorizontalPodAutoscaler": "autoscaling/v2",
		"Ingress":                 "networking.k8s.io/v1",
	}
	seen := map[string]bool{}
	for _, m := range mustLoadManifests(t) {
		t.Run(m.file+"/"+m.Kind, func(t *testing.T) {
			if m.APIVersion == "" || m.Kind == "" || m.Metadata.Name == "" {
				t.Fatalf("apiVersion %q, kind %q, metadata.name %q: all are required", m.APIVersion, m.Kind, m.Metadata.Name)
			}
			want, ok := wantAPI[m.Kind]
			if !ok {
				t.Fatalf("kind %s is not checked by this test: add it to wantAPI", m.Kind)
			}
			if m.APIVersion != want {
				t.Errorf("apiVersion %q, want %q", m.APIVersion, want)
			}
			if !dns1123.MatchString(m.Metadata.Name) || len(m.Metadata.Name) > 63 {
				t.Errorf("metadata.name %q is not a DNS-1123 label", m.Metadata.Name)
			}
			if m.Kind != "Namespace" && m.Metadata.Labels["app.kubernetes.io/name"] != "hextrack" {
				t.Errorf("missing label app.kubernetes.io/name=hextrack")
			}
			key := m.Kind + "/" + m.Metadata.Name
			if seen[key] {
				t.Errorf("%s defined twice", key)
			}
			seen[key] = true
		})
	}
	for _, kind := range []string{"Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler", "ConfigMap", "Secret"} {
		if !seen[kind+"/hextrack"] {
			t.Errorf("no %s named hextrack", kind)
		}
	}
}

func TestKustomizationListsEveryManifest(t *testing.T) {
	var k struct {
		Namespace string   `yaml:"namespace"`
		Resources []string `yaml:"resources"`
		Images    []struct {
			Name string `yaml:"name"`
		} `yaml:"images"`
	}
	docs := decodeAll(t, "k8s/kustomization.yaml")
	if len(docs) != 1 {
		t.Fatalf("kustomization.yaml has %d documents", len(docs))
	}
	if err := docs[0].Decode(&k); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("k8s/*.yaml")
	var want []string
	for _, f := range files {
		if b := filepath.Base(f); b != "kustomization.yaml" {
			want = append(want, b)
		}
	}
	got := slices.Sorted(slices.Values(k.Resources))
	if !slices.Equal(got, want) {
		t.Errorf("kustomization resources %v, files in k8s/ %v", got, want)
	}
	if k.Namespace == "" {
		t.Error("kustomization sets no namespace")
	}
	var dep deployment
	only(t, mustLoadManifests(t), "Deployment", &dep)
	image := dep.Spec.Template.Spec.Containers[0].Image
	if !slices.ContainsFunc(k.Images, func(i struct {
		Name string `yaml:"name"`
	}) bool {
		return i.Name == image
	}) {
		t.Errorf("kustomization images do not rewrite the Deployment's image %q", image)
	}
}

// deployment is the part of apps/v1 Deployment these manifests use. It is
// decoded strictly, so a misspelt field (readinesProbe) fails the test; add
// a field here when adding it to deployment.yaml.
type deployment struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Spec struct {
		Replicas             int      `yaml:"replicas"`
		RevisionHistoryLimit int      `yaml:"revisionHistoryLimit"`
		Selector             selector `yaml:"selector"`
		Strategy             struct {
			Type          string `yaml:"type"`
			RollingUpdate struct {
				MaxSurge       any `yaml:"maxSurge"`
				MaxUnavailable any `yaml:"maxUnavailable"`
			} `yaml:"rollingUpdate"`
		} `yaml:"strategy"`
		Template struct {
			Metadata struct {
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"metadata"`
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type selector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

type podSpec struct {
	ServiceAccountName            string `yaml:"serviceAccountName"`
	AutomountServiceAccountToken  *bool  `yaml:"automountServiceAccountToken"`
	TerminationGracePeriodSeconds int    `yaml:"terminationGracePeriodSeconds"`
	SecurityContext               struct {
		RunAsNonRoot   *bool          `yaml:"runAsNonRoot"`
		RunAsUser      int64          `yaml:"runAsUser"`
		RunAsGroup     int64          `yaml:"runAsGroup"`
		FSGroup        int64          `yaml:"fsGroup"`
		SeccompProfile map[string]any `yaml:"seccompProfile"`
	} `yaml:"securityContext"`
	TopologySpreadConstraints []struct {
		MaxSkew           int      `yaml:"maxSkew"`
		TopologyKey       string   `yaml:"topologyKey"`
		WhenUnsatisfiable string   `yaml:"whenUnsatisfiable"`
		LabelSelector     selector `yaml:"labelSelector"`
	} `yaml:"topologySpreadConstraints"`
	Containers []container `yaml:"containers"`
	Volumes    []struct {
		Name   string `yaml:"name"`
		Secret *struct {
			SecretName  string           `yaml:"secretName"`
			Items       []map[string]any `yaml:"items"`
			DefaultMode int              `yaml:"defaultMode"`
		} `yaml:"secret"`
		ConfigMap *struct {
			Name string `yaml:"name"`
		} `yaml:"configMap"`
		EmptyDir *struct {
			SizeLimit string `yaml:"sizeLimit"`
		} `yaml:"emptyDir"`
	} `yaml:"volumes"`
}

type keyRef struct {
	Name string `yaml:"name"`
	Key  string `yaml:"key"`
}

type container struct {
	Name            string   `yaml:"name"`
	Image           string   `yaml:"image"`
	ImagePullPolicy string   `yaml:"imagePullPolicy"`
	Args            []string `yaml:"args"`
	Ports           []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
		Protocol      string `yaml:"protocol"`
	} `yaml:"ports"`
	EnvFrom []struct {
		ConfigMapRef *struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
		SecretRef *struct {
			Name string `yaml:"name"`
		} `yaml:"secretRef"`
	} `yaml:"envFrom"`
	Env []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef    *keyRef `yaml:"secretKeyRef"`
			ConfigMapKeyRef *keyRef `yaml:"configMapKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	StartupProbe   *probe `yaml:"startupProbe"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	Lifecycle      struct {
		PreStop *struct {
			Exec *struct {
				Command []string `yaml:"command"`
			} `yaml:"exec"`
			Sleep *struct {
				Seconds int `yaml:"seconds"`
			} `yaml:"sleep"`
		} `yaml:"preStop"`
	} `yaml:"lifecycle"`
	SecurityContext struct {
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
	InitialDelaySeconds int `yaml:"initialDelaySeconds"`
	PeriodSeconds       int `yaml:"periodSeconds"`
	TimeoutSeconds      int `yaml:"timeoutSeconds"`
	FailureThreshold    int `yaml:"failureThreshold"`
	SuccessThreshold    int `yaml:"successThreshold"`
}

// strictDecode decodes a node rejecting fields v does not declare.
func strictDecode(tb testing.TB, n yaml.Node, v any) {
	tb.Helper()
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	if err := enc.Encode(&n); err != nil {
		tb.Fatal(err)
	}
	dec := yaml.NewDecoder(&buf)
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		tb.Fatalf("strict decode: %v", err)
	}
}

type configMap struct {
	Data map[string]string `yaml:"data"`
}

type secret struct {
	StringData map[string]string `yaml:"stringData"`
	Data       map[string]string `yaml:"data"`
}

func TestDeployment(t *testing.T) {
	ms := mustLoadManifests(t)
	var dep deployment
	strictDecode(t, only(t, ms, "Deployment", nil).node, &dep)
	var cm configMap
	only(t, ms, "ConfigMap", &cm)
	var sec secret
	only(t, ms, "Secret", &sec)

	pod := dep.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(pod.Containers))
	}
	c := pod.Containers[0]

	t.Run("selector", func(t *testing.T) {
		if len(dep.Spec.Selector.MatchLabels) == 0 {
			t.Fatal("empty selector")
		}
		if !subset(dep.Spec.Selector.MatchLabels, dep.Spec.Template.Metadata.Labels) {
			t.Errorf("selector %v does not match template labels %v", dep.Spec.Selector.MatchLabels, dep.Spec.Template.Metadata.Labels)
		}
	})
	t.Run("rolling update keeps capacity", func(t *testing.T) {
		if dep.Spec.Strategy.Type != "RollingUpdate" {
			t.Errorf("strategy %q", dep.Spec.Strategy.Type)
		}
		if dep.Spec.Strategy.RollingUpdate.MaxUnavailable != 0 {
			t.Errorf("maxUnavailable %v: a rolling update should start a new pod before stopping an old one", dep.Spec.Strategy.RollingUpdate.MaxUnavailable)
		}
		if dep.Spec.Replicas < 2 {
			t.Errorf("replicas %d: one node cannot survive its own restart", dep.Spec.Replicas)
		}
	})
	t.Run("probes", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			p    *probe
			path string
		}{
			{"readiness", c.ReadinessProbe, "/readyz"},
			{"liveness", c.LivenessProbe, "/healthz"},
			{"startup", c.StartupProbe, "/healthz"},
		} {
			if tc.p == nil || tc.p.HTTPGet == nil {
				t.Errorf("%s probe: no httpGet", tc.name)
				continue
			}
			if tc.p.HTTPGet.Path != tc.path {
				t.Errorf("%s probe path %q, want %q", tc.name, tc.p.HTTPGet.Path, tc.path)
			}
			if !containerHasPort(c, tc.p.HTTPGet.Port) {
				t.Errorf("%s probe port %v is not a container port", tc.name, tc.p.HTTPGet.Port)
			}
		}
	})
	t.Run("preStop and grace period cover the drain", func(t *testing.T) {
		pre := c.Lifecycle.PreStop
		if pre == nil {
			t.Fatal("no preStop hook")
		}
		var sleep int
		switch {
		case pre.Sleep != nil:
			sleep = pre.Sleep.Seconds
		case pre.Exec != nil && len(pre.Exec.Command) == 2 && pre.Exec.Command[0] == "sleep":
			n, err := strconv.Atoi(pre.Exec.Command[1])
			if err != nil {
				t.Fatalf("preStop sleep %q: %v", pre.Exec.Command[1], err)
			}
			sleep = n
		default:
			t.Fatalf("preStop is not a sleep: %+v", pre)
		}
		if sleep < 1 {
			t.Errorf("preStop sleeps %d s: endpoints need time to drop the pod", sleep)
		}
		drain, err := time.ParseDuration(cm.Data["HEXTRACK_DRAIN_WINDOW"])
		if err != nil {
			t.Fatalf("ConfigMap HEXTRACK_DRAIN_WINDOW: %v", err)
		}
		const margin = 10 * time.Second
		need := time.Duration(sleep)*time.Second + drain + margin
		if grace := time.Duration(pod.TerminationGracePeriodSeconds) * time.Second; grace < need {
			t.Errorf("terminationGracePeriodSeconds %v < preStop %ds + drain %v + margin %v", grace, sleep, drain, margin)
		}
	})
	t.Run("non-root and locked down", func(t *testing.T) {
		if !isTrue(pod.SecurityContext.RunAsNonRoot) || pod.SecurityContext.RunAsUser == 0 {
			t.Error("pod must run as a non-root numeric user")
		}
		sc := c.SecurityContext
		if !isTrue(sc.ReadOnlyRootFilesystem) || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Error("container must have a read-only root and no privilege escalation")
		}
		if !slices.Contains(sc.Capabilities.Drop, "ALL") {
			t.Error("container must drop ALL capabilities")
		}
	})
	t.Run("resources", func(t *testing.T) {
		// The HPA's utilization targets are relative to requests.
		for _, r := range []string{"cpu", "memory"} {
			if c.Resources.Requests[r] == "" {
				t.Errorf("no %s request", r)
			}
		}
		if c.Resources.Limits["memory"] == "" {
			t.Error("no memory limit")
		}
	})
	t.Run("config and secrets resolve", func(t *testing.T) {
		for _, ef := range c.EnvFrom {
			if ef.ConfigMapRef != nil && ef.ConfigMapRef.Name != "hextrack" {
				t.Errorf("envFrom unknown ConfigMap %q", ef.ConfigMapRef.Name)
			}
		}
		env := map[string]bool{}
		for k := range cm.Data {
			env[k] = true
		}
		for _, e := range c.Env {
			env[e.Name] = true
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				ref := e.ValueFrom.SecretKeyRef
				if _, ok := sec.StringData[ref.Key]; !ok || ref.Name != "hextrack" {
					t.Errorf("env %s refers to secret %s key %q, which is not defined", e.Name, ref.Name, ref.Key)
				}
			}
		}
		for _, v := range pod.Volumes {
			if v.Secret == nil {
				continue
			}
			for _, it := range v.Secret.Items {
				if _, ok := sec.StringData[it["key"].(string)]; !ok {
					t.Errorf("volume %s mounts secret key %v, which is not defined", v.Name, it["key"])
				}
			}
		}
		for _, name := range []string{"HEXTRACK_ADDR", "HEXTRACK_REDIS_URL", "HEXTRACK_DRAIN_WINDOW", "HEXTRACK_PAYMENT_WEBHOOK_SECRETS"} {
			if !env[name] {
				t.Errorf("%s is not set", name)
			}
		}
		if !env["HEXTRACK_JWT_SECRET"] && !env["HEXTRACK_JWT_SECRET_FILE"] {
			t.Error("neither HEXTRACK_JWT_SECRET nor HEXTRACK_JWT_SECRET_FILE is set")
		}
		if f := cm.Data["HEXTRACK_JWT_SECRET_FILE"]; f != "" && !mountedUnder(c, f) {
			t.Errorf("HEXTRACK_JWT_SECRET_FILE %s is not under any volume mount", f)
		}
	})
}

func TestSecretValuesArePlaceholders(t *testing.T) {
	var sec secret
	only(t, mustLoadManifests(t), "Secret", &sec)
	if len(sec.Data) != 0 {
		t.Error("Secret has base64 data: keep placeholders in stringData so they are visible")
	}
	if len(sec.StringData) == 0 {
		t.Fatal("Secret has no stringData")
	}
	for k, v := range sec.StringData {
		if !strings.Contains(v, "REPLACE-ME") {
			t.Errorf("Secret key %s = %q is not marked REPLACE-ME", k, v)
		}
	}
}

func TestSelectorsAndTargetsMatchDeployment(t *testing.T) {
	ms := mustLoadManifests(t)
	var dep deployment
	only(t, ms, "Deployment", &dep)
	podLabels := dep.Spec.Template.Metadata.Labels

	var svc struct {
		Spec struct {
			Selector        map[string]string `yaml:"selector"`
			SessionAffinity string            `yaml:"sessionAffinity"`
			Ports           []struct {
				TargetPort any `yaml:"targetPort"`
			} `yaml:"ports"`
		} `yaml:"spec"`
	}
	only(t, ms, "Service", &svc)
	var pdb struct {
		Spec struct {
			Selector       selector `yaml:"selector"`
			MinAvailable   any      `yaml:"minAvailable"`
			MaxUnavailable any      `yaml:"maxUnavailable"`
		} `yaml:"spec"`
	}
	only(t, ms, "PodDisruptionBudget", &pdb)
	var hpa struct {
		Spec struct {
			ScaleTargetRef struct {
				APIVersion string `yaml:"apiVersion"`
				Kind       string `yaml:"kind"`
				Name       string `yaml:"name"`
			} `yaml:"scaleTargetRef"`
			MinReplicas int              `yaml:"minReplicas"`
			MaxReplicas int              `yaml:"maxReplicas"`
			Metrics     []map[string]any `yaml:"metrics"`
		} `yaml:"spec"`
	}
	only(t, ms, "HorizontalPodAutoscaler", &hpa)

	tests := []struct {
		name string
		err  string
	}{
		{"service selects the pods", check(len(svc.Spec.Selector) > 0 && subset(svc.Spec.Selector, podLabels), "Service selector %v, pod labels %v", svc.Spec.Selector, podLabels)},
		{"service is not sticky", check(svc.Spec.SessionAffinity == "" || svc.Spec.SessionAffinity == "None", "sessionAffinity %q", svc.Spec.SessionAffinity)},
		{"service targets a container port", check(len(svc.Spec.Ports) > 0 && containerHasPort(dep.Spec.Template.Spec.Containers[0], svc.Spec.Ports[0].TargetPort), "targetPort %v", svc.Spec.Ports)},
		{"pdb selects the pods", check(len(pdb.Spec.Selector.MatchLabels) > 0 && subset(pdb.Spec.Selector.MatchLabels, podLabels), "PDB selector %v", pdb.Spec.Selector.MatchLabels)},
		{"pdb bounds disruption", check((pdb.Spec.MinAvailable == nil) != (pdb.Spec.MaxUnavailable == nil), "PDB needs exactly one of minAvailable/maxUnavailable")},
		{"hpa targets the deployment", check(hpa.Spec.ScaleTargetRef.APIVersion == "apps/v1" && hpa.Spec.ScaleTargetRef.Kind == "Deployment" && hpa.Spec.ScaleTargetRef.Name == dep.Metadata.Name, "scaleTargetRef %+v", hpa.Spec.ScaleTargetRef)},
		{"hpa keeps two or more", check(hpa.Spec.MinReplicas >= 2 && hpa.Spec.MaxReplicas >= hpa.Spec.MinReplicas, "replicas %d..%d", hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas)},
		{"hpa has metrics", check(len(hpa.Spec.Metrics) > 0, "no metrics")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.err != "" {
				t.Error(tc.err)
			}
		})
	}
}

// check returns "" when ok, else the formatted failure.
func check(ok bool, format string, args ...any) string {
	if ok {
		return ""
	}
	return fmt.Sprintf(format, args...)
}

func subset(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func isTrue(b *bool) bool { return b != nil && *b }

func containerHasPort(c container, port any) bool {
	for _, p := range c.Ports {
		switch v := port.(type) {
		case string:
			if p.Name == v {
				return true
			}
		case int:
			if p.ContainerPort == v {
				return true
			}
		}
	}
	return false
}

func mountedUnder(c container, file string) bool {
	for _, m := range c.VolumeMounts {
		if strings.HasPrefix(file, strings.TrimSuffix(m.MountPath, "/")+"/") {
			return true
		}
	}
	return false
}

// composeFile is the part of compose.yaml the checks read.
type composeFile struct {
	Name     string                    `yaml:"name"`
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image           string            `yaml:"image"`
	Entrypoint      []string          `yaml:"entrypoint"`
	Command         []string          `yaml:"command"`
	Environment     map[string]string `yaml:"environment"`
	Ports           []string          `yaml:"ports"`
	Volumes         []string          `yaml:"volumes"`
	DependsOn       any               `yaml:"depends_on"` // list or map
	StopGracePeriod string            `yaml:"stop_grace_period"`
	Profiles        []string          `yaml:"profiles"`
	Ulimits         map[string]any    `yaml:"ulimits"`
}

func mustLoadCompose(tb testing.TB) composeFile {
	tb.Helper()
	docs := decodeAll(tb, "compose.yaml")
	if len(docs) != 1 {
		tb.Fatalf("compose.yaml has %d documents", len(docs))
	}
	var c composeFile
	if err := docs[0].Decode(&c); err != nil {
		tb.Fatalf("compose.yaml: %v", err)
	}
	return c
}

func TestCompose(t *testing.T) {
	c := mustLoadCompose(t)

	redis, ok := c.Services["redis"]
	if !ok {
		t.Fatal("no redis service")
	}
	var nodes []string
	for name, s := range c.Services {
		if slices.Contains(s.Entrypoint, "drivesim") || len(s.Profiles) > 0 {
			continue
		}
		if strings.Contains(s.Image, "hextrack") && (len(s.Command) == 0 || s.Command[0] == "serve") {
			nodes = append(nodes, name)
		}
	}
	slices.Sort(nodes)

	t.Run("redis persists with AOF", func(t *testing.T) {
		cmd := strings.Join(redis.Command, " ")
		for _, want := range []string{"--appendonly yes", "--appendfsync everysec", "--maxmemory-policy noeviction"} {
			if !strings.Contains(cmd, want) {
				t.Errorf("redis command %q lacks %q", cmd, want)
			}
		}
		if !slices.ContainsFunc(redis.Volumes, func(v string) bool { return strings.HasSuffix(v, ":/data") }) {
			t.Errorf("redis /data is not on a volume: %v", redis.Volumes)
		}
	})
	t.Run("two or more hextrack nodes on redis", func(t *testing.T) {
		if len(nodes) < 2 {
			t.Fatalf("hextrack nodes %v", nodes)
		}
		for _, n := range nodes {
			s := c.Services[n]
			if !strings.HasPrefix(s.Environment["HEXTRACK_REDIS_URL"], "redis://redis:") {
				t.Errorf("%s HEXTRACK_REDIS_URL %q: nodes must share the redis service", n, s.Environment["HEXTRACK_REDIS_URL"])
			}
			if deps, _ := s.DependsOn.(map[string]any); deps["redis"] == nil {
				t.Errorf("%s does not depend on redis", n)
			}
			drain, err := time.ParseDuration(s.Environment["HEXTRACK_DRAIN_WINDOW"])
			if err != nil {
				t.Fatalf("%s HEXTRACK_DRAIN_WINDOW: %v", n, err)
			}
			grace, err := time.ParseDuration(s.StopGracePeriod)
			if err != nil || grace < drain+5*time.Second {
				t.Errorf("%s stop_grace_period %q must exceed the drain window %v by 5 s or more", n, s.StopGracePeriod, drain)
			}
		}
	})
	t.Run("nginx fronts the nodes", func(t *testing.T) {
		ng, ok := c.Services["nginx"]
		if !ok {
			t.Fatal("no nginx service")
		}
		if !slices.ContainsFunc(ng.Ports, func(p string) bool { return strings.HasSuffix(p, ":8080") }) {
			t.Errorf("nginx publishes %v, want container port 8080", ng.Ports)
		}
		if !slices.Contains(ng.Volumes, "./nginx.conf:/etc/nginx/nginx.conf:ro") {
			t.Errorf("nginx does not mount ./nginx.conf: %v", ng.Volumes)
		}
		ups := upstreamServers(t, readNginxConf(t))
		var hosts []string
		for _, u := range ups {
			hosts = append(hosts, strings.Split(u, ":")[0])
		}
		slices.Sort(hosts)
		if !slices.Equal(hosts, nodes) {
			t.Errorf("nginx.conf upstreams %v, compose hextrack nodes %v", hosts, nodes)
		}
	})
	t.Run("drivesim goes through nginx", func(t *testing.T) {
		ds, ok := c.Services["drivesim"]
		if !ok {
			t.Fatal("no drivesim service")
		}
		args := strings.Join(append(slices.Clone(ds.Entrypoint), ds.Command...), " ")
		for _, want := range []string{"drivesim run", "--server http://nginx:8080", "--drivers", "--riders"} {
			if !strings.Contains(args, want) {
				t.Errorf("drivesim runs %q, lacks %q", args, want)
			}
		}
		// Without the servers' secret drivesim can mint no tokens once dev
		// mode is off.
		for _, n := range nodes {
			if got, want := ds.Environment["HEXTRACK_JWT_SECRET"], c.Services[n].Environment["HEXTRACK_JWT_SECRET"]; got == "" || got != want {
				t.Errorf("drivesim HEXTRACK_JWT_SECRET %q, %s has %q", got, n, want)
			}
		}
	})
	t.Run("prometheus scrapes every node", func(t *testing.T) {
		var prom struct {
			ScrapeConfigs []struct {
				StaticConfigs []struct {
					Targets []string `yaml:"targets"`
				} `yaml:"static_configs"`
			} `yaml:"scrape_configs"`
		}
		if err := decodeAll(t, "prometheus.yml")[0].Decode(&prom); err != nil {
			t.Fatal(err)
		}
		var hosts []string
		for _, sc := range prom.ScrapeConfigs {
			for _, st := range sc.StaticConfigs {
				for _, tg := range st.Targets {
					hosts = append(hosts, strings.Split(tg, ":")[0])
				}
			}
		}
		slices.Sort(hosts)
		if !slices.Equal(hosts, nodes) {
			t.Errorf("prometheus targets %v, nodes %v", hosts, nodes)
		}
	})
}

// TestComposeConfig runs the compose CLI's own validation when a compose
// CLI (the docker plugin or the standalone binary) is installed.
func TestComposeConfig(t *testing.T) {
	var cmd *exec.Cmd
	if _, err := exec.LookPath("docker"); err == nil && exec.Command("docker", "compose", "version").Run() == nil {
		cmd = exec.Command("docker", "compose", "-f", "compose.yaml", "config", "--quiet")
	} else if _, err := exec.LookPath("docker-compose"); err == nil && exec.Command("docker-compose", "version").Run() == nil {
		cmd = exec.Command("docker-compose", "-f", "compose.yaml", "config", "--quiet")
	} else {
		t.Skip("no docker compose CLI installed; TestCompose still parses the file")
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
	}
}

func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile("grafana/hextrack.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID        string `json:"uid"`
		Title      string `json:"title"`
		Templating struct {
			List []struct {
				Name string `json:"name"`
			} `json:"list"`
		} `json:"templating"`
		Panels []grafanaPanel `json:"panels"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&dash); err != nil {
		t.Fatalf("grafana/hextrack.json: %v", err)
	}
	if dash.UID == "" || dash.Title == "" {
		t.Error("dashboard needs uid and title")
	}
	vars := map[string]bool{"__rate_interval": true, "__interval": true}
	for _, v := range dash.Templating.List {
		vars[v.Name] = true
	}
	var all []grafanaPanel
	for _, p := range dash.Panels {
		all = append(all, p)
		all = append(all, p.Panels...)
	}
	ids := map[int]bool{}
	var exprs strings.Builder
	varRef := regexp.MustCompile(`\$\{?(\w+)`)
	for _, p := range all {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		t.Run(p.Title, func(t *testing.T) {
			if len(p.Targets) == 0 {
				t.Fatal("panel has no target")
			}
			if p.GridPos.W == 0 || p.GridPos.H == 0 {
				t.Error("panel has no size")
			}
			for _, tg := range p.Targets {
				if strings.TrimSpace(tg.Expr) == "" {
					t.Errorf("target %s has no expr", tg.RefID)
				}
				if strings.Count(tg.Expr, "(") != strings.Count(tg.Expr, ")") {
					t.Errorf("unbalanced parentheses in %q", tg.Expr)
				}
				for _, m := range varRef.FindAllStringSubmatch(tg.Expr+" "+p.Datasource.UID, -1) {
					if !vars[m[1]] {
						t.Errorf("undefined variable $%s in %q", m[1], tg.Expr)
					}
				}
				exprs.WriteString(tg.Expr + "\n")
			}
		})
	}
	// The metric names the server exposes; every one is on the dashboard.
	for _, m := range []string{
		"hextrack_http_requests_total", "hextrack_http_request_duration_seconds",
		"hextrack_pings_accepted_total", "hextrack_pings_rejected_total",
		"hextrack_ingest_duration_seconds", "hextrack_nearby_duration_seconds",
		"hextrack_feed_subscribers", "hextrack_feed_delivery_lag_seconds",
		"hextrack_feed_slow_consumer_drops_total", "hextrack_connections",
		"hextrack_eta_error_seconds",
	} {
		if !regexp.MustCompile(`\b` + m + `(_bucket)?\{`).MatchString(exprs.String()) {
			t.Errorf("metric %s is on no panel", m)
		}
	}
}

type grafanaPanel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	GridPos struct {
		W int `json:"w"`
		H int `json:"h"`
	} `json:"gridPos"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"`
}

func TestGrafanaProvisioning(t *testing.T) {
	for _, f := range []string{
		"grafana/provisioning/datasources/prometheus.yaml",
		"grafana/provisioning/dashboards/hextrack.yaml",
	} {
		t.Run(f, func(t *testing.T) {
			var v struct {
				APIVersion int `yaml:"apiVersion"`
			}
			if err := decodeAll(t, f)[0].Decode(&v); err != nil {
				t.Fatal(err)
			}
			if v.APIVersion != 1 {
				t.Errorf("apiVersion %d, want 1", v.APIVersion)
			}
		})
	}
}

func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	for _, tc := range []struct{ name, pattern string }{
		{"go builder on bookworm", `(?m)^FROM golang:\$\{GO_VERSION\}-\$\{DEBIAN_RELEASE\} AS build$`},
		{"go 1.26", `(?m)^ARG GO_VERSION=1\.26$`},
		{"cgo on", `CGO_ENABLED=1`},
		{"web bundle built with npm", `npm ci[^\n]*&& npm run build`},
		{"web bundle copied into the build", `COPY --from=web `},
		{"builds hextrack", `-o /out/hextrack \./cmd/hextrack`},
		{"builds drivesim", `-o /out/drivesim \./cmd/drivesim`},
		{"runtime slim", `(?m)^FROM debian:\$\{DEBIAN_RELEASE\}-slim`},
		{"non-root numeric user", `(?m)^USER [1-9][0-9]*:[1-9][0-9]*$`},
		{"health check on /healthz", `(?m)^HEALTHCHECK .*\n?.*/healthz`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !regexp.MustCompile(tc.pattern).MatchString(df) {
				t.Errorf("Dockerfile does not match %s", tc.pattern)
			}
		})
	}
}
