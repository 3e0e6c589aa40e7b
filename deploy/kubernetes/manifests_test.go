package kubernetes_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/cutover/cutover/rules"
	"github.com/cutover/cutover/stats"
	"github.com/cutover/cutover/web"
)

// The kustomizations this directory ships.
var kustomizations = []string{"base", "overlays/example"}

// objects are the resources of one kustomize build, decoded strictly.
type objects struct {
	statefulSet    *appsv1.StatefulSet
	services       map[string]*corev1.Service
	configMaps     map[string]*corev1.ConfigMap
	pdbs           []*policyv1.PodDisruptionBudget
	serviceMonitor *monitoringv1.ServiceMonitor
	prometheusRule *monitoringv1.PrometheusRule
	all            int
	namespaces     map[string]bool
}

// apiVersions says which apiVersion each kind must be written in.
var apiVersions = map[string]string{
	"StatefulSet": "apps/v1", "Service": "v1", "ConfigMap": "v1", "ServiceAccount": "v1",
	"PodDisruptionBudget": "policy/v1", "ServiceMonitor": "monitoring.coreos.com/v1", "PrometheusRule": "monitoring.coreos.com/v1",
}

// decodeStrict decodes one manifest into the API type of its kind; an
// unknown field, a wrong type or an unknown kind is an error.
func decodeStrict(t *testing.T, where string, doc []byte, o *objects) {
	t.Helper()
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal(doc, &meta); err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	want, known := apiVersions[meta.Kind]
	if !known {
		t.Fatalf("%s: kind %q has no test of its fields", where, meta.Kind)
	}
	if meta.APIVersion != want {
		t.Errorf("%s: %s is apiVersion %q, want %q", where, meta.Kind, meta.APIVersion, want)
	}
	var target any
	switch meta.Kind {
	case "StatefulSet":
		o.statefulSet = &appsv1.StatefulSet{}
		target = o.statefulSet
	case "Service":
		s := &corev1.Service{}
		target = s
		defer func() { o.services[s.Name] = s }()
	case "ConfigMap":
		c := &corev1.ConfigMap{}
		target = c
		defer func() { o.configMaps[c.Name] = c }()
	case "ServiceAccount":
		target = &corev1.ServiceAccount{}
	case "PodDisruptionBudget":
		p := &policyv1.PodDisruptionBudget{}
		o.pdbs = append(o.pdbs, p)
		target = p
	case "ServiceMonitor":
		o.serviceMonitor = &monitoringv1.ServiceMonitor{}
		target = o.serviceMonitor
	case "PrometheusRule":
		o.prometheusRule = &monitoringv1.PrometheusRule{}
		target = o.prometheusRule
	}
	if err := unmarshalStrict(doc, target); err != nil {
		t.Errorf("%s: %s: %v", where, meta.Kind, err)
	}
	o.all++
	o.namespaces[meta.Metadata.Namespace] = true
}

// build runs kustomize on dir, as kubectl apply -k would, and decodes every
// resource strictly.
func build(t *testing.T, dir string) *objects {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	res, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	o := &objects{services: map[string]*corev1.Service{}, configMaps: map[string]*corev1.ConfigMap{}, namespaces: map[string]bool{}}
	for _, r := range res.Resources() {
		doc, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		decodeStrict(t, dir+": "+r.GetKind()+"/"+r.GetName(), doc, o)
	}
	return o
}

// TestSourceFilesAreStrict decodes every file as written, before kustomize
// touches it: kustomize itself forgives unknown fields in patches.
func TestSourceFilesAreStrict(t *testing.T) {
	files, err := filepath.Glob("*/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	more, _ := filepath.Glob("*/*/*.yaml")
	files = append(files, more...)
	if len(files) < 10 {
		t.Fatalf("found only %v", files)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		switch filepath.Base(f) {
		case "kustomization.yaml":
			var k types.Kustomization
			if err := unmarshalStrict(b, &k); err != nil {
				t.Errorf("%s: %v", f, err)
			}
		case "cutover.yaml":
			if _, err := rules.Parse(f, strings.NewReader(string(b))); err != nil {
				t.Errorf("%s does not validate: %v", f, err)
			}
		default:
			for i, doc := range strings.Split(string(b), "\n---\n") {
				decodeStrict(t, f+"#"+strconv.Itoa(i), []byte(doc), &objects{services: map[string]*corev1.Service{}, configMaps: map[string]*corev1.ConfigMap{}, namespaces: map[string]bool{}})
			}
		}
	}
}

func TestKustomizationsAgreeWithTheCode(t *testing.T) {
	img := readDockerfile(t)
	for _, dir := range kustomizations {
		t.Run(dir, func(t *testing.T) {
			o := build(t, dir)
			d := o.statefulSet
			if d == nil || d.Name != "cutover" {
				t.Fatal("no StatefulSet cutover")
			}
			pod := d.Spec.Template
			c := container(t, &pod.Spec, "cutover")

			// The configuration: the file the arguments name is the
			// ConfigMap's key in the mounted directory, and it validates.
			flags := parseArgs(t, c.Args)
			if flags["config"] != img.env["CUTOVER_CONFIG"] || flags["data-dir"] != img.env["CUTOVER_DATA_DIR"] {
				t.Errorf("args %v disagree with the image's CUTOVER_CONFIG %q and CUTOVER_DATA_DIR %q", c.Args, img.env["CUTOVER_CONFIG"], img.env["CUTOVER_DATA_DIR"])
			}
			vol, mount := mountOf(t, &pod.Spec, c, path.Dir(flags["config"]))
			if vol.ConfigMap == nil || mount.SubPath != "" {
				t.Fatalf("%s is not a whole ConfigMap mount (a subPath mount never sees updates)", path.Dir(flags["config"]))
			}
			cm := o.configMaps[vol.ConfigMap.Name]
			if cm == nil {
				t.Fatalf("the config volume names ConfigMap %q, which the build lacks", vol.ConfigMap.Name)
			}
			src, ok := cm.Data[path.Base(flags["config"])]
			if !ok {
				t.Fatalf("ConfigMap %s has no key %q", cm.Name, path.Base(flags["config"]))
			}
			set, err := rules.Parse(dir+"/cutover.yaml", strings.NewReader(src))
			if err != nil {
				t.Fatalf("the configuration does not validate: %v", err)
			}
			// The queue must outlive the pod: the data directory is the
			// replica's own volume claim, kept when the pod goes.
			if !claimed(d, c, flags["data-dir"]) {
				t.Errorf("--data-dir %s is not on a volume claim of the StatefulSet: queued and held writes would die with the pod", flags["data-dir"])
			}
			for _, vc := range d.Spec.VolumeClaimTemplates {
				if _, ok := vc.Spec.Resources.Requests[corev1.ResourceStorage]; !ok || !slices.Contains(vc.Spec.AccessModes, corev1.ReadWriteOnce) {
					t.Errorf("volume claim %s: want a storage request and ReadWriteOnce, got %+v", vc.Name, vc.Spec)
				}
			}
			// The image's user writes the volume: it must own it.
			if sc := pod.Spec.SecurityContext; sc == nil || sc.FSGroup == nil || sc.RunAsGroup == nil || *sc.FSGroup != *sc.RunAsGroup {
				t.Error("the pod's fsGroup is not its runAsGroup: the volume stays root's and cutover cannot write its queue")
			}
			if p := d.Spec.PersistentVolumeClaimRetentionPolicy; p != nil && (p.WhenDeleted == appsv1.DeletePersistentVolumeClaimRetentionPolicyType || p.WhenScaled == appsv1.DeletePersistentVolumeClaimRetentionPolicyType) {
				t.Errorf("the claims are deleted with the StatefulSet or on scale-down (%+v): their undelivered writes with them", *p)
			}

			// Ports: the container's named ports are the listeners of the
			// configuration, and the image exposes them.
			ports := map[string]int32{}
			for _, p := range c.Ports {
				ports[p.Name] = p.ContainerPort
			}
			if ports["http"] != portOf(t, set.Listen) || ports["admin"] != portOf(t, set.Admin.Listen) {
				t.Errorf("container ports %v, configuration listens on %s and %s", ports, set.Listen, set.Admin.Listen)
			}
			for name, p := range ports {
				if !img.expose[p] {
					t.Errorf("port %s (%d) is not EXPOSEd by the Dockerfile", name, p)
				}
			}
			// The admin listener leaves loopback for probes and scrapes:
			// serve insists on a token, which must be a mounted file.
			if set.Admin.Auth.TokenFile == "" {
				t.Fatal("admin.listen is reachable from other pods but admin.auth.token_file is not set: serve refuses to start")
			}
			tokenVol, _ := mountOf(t, &pod.Spec, c, path.Dir(set.Admin.Auth.TokenFile))
			if tokenVol.Secret == nil {
				t.Fatalf("%s is not on a Secret volume", set.Admin.Auth.TokenFile)
			}
			// Without an operator's token, held writes can be neither
			// replayed nor discarded, nor a route reset.
			if f := set.Admin.Auth.OperatorTokenFile; f == "" {
				t.Error("admin.auth.operator_token_file is not set: no one can replay, discard or reset")
			} else if v, _ := mountOf(t, &pod.Spec, c, path.Dir(f)); v.Secret == nil || v.Secret.SecretName != tokenVol.Secret.SecretName {
				t.Errorf("%s is not in Secret %s with the viewers' token", f, tokenVol.Secret.SecretName)
			}

			// Probes hit the admin port at paths the admin handler serves.
			checkProbe(t, "liveness", c.LivenessProbe, "/healthz", true, set.Admin.Auth)
			checkProbe(t, "readiness", c.ReadinessProbe, "/readyz", false, set.Admin.Auth)
			// The drain: one failed readiness probe must fit in the
			// drain delay, and the whole shutdown in the grace period.
			p := c.ReadinessProbe
			if took := p.PeriodSeconds * p.FailureThreshold; float64(took) >= set.Server.DrainDelay.Seconds() {
				t.Errorf("readiness needs %ds to fail, server.drain_delay is %v", took, set.Server.DrainDelay)
			}
			if g := pod.Spec.TerminationGracePeriodSeconds; g == nil || float64(*g) <= (set.Server.DrainDelay+set.Server.ShutdownTimeout).Seconds() {
				t.Errorf("terminationGracePeriodSeconds must exceed drain_delay + shutdown_timeout (%v)", set.Server.DrainDelay+set.Server.ShutdownTimeout)
			}

			checkSecurity(t, &pod.Spec, c, img)

			// Services and the PDB select these pods, by named ports.
			podLabels := pod.Labels
			if !subset(d.Spec.Selector.MatchLabels, podLabels) {
				t.Errorf("the StatefulSet's selector %v does not match its pods %v", d.Spec.Selector.MatchLabels, podLabels)
			}
			if s, ok := o.services[d.Spec.ServiceName]; !ok || s.Spec.ClusterIP != corev1.ClusterIPNone {
				t.Errorf("the StatefulSet's serviceName %q is not a headless Service of the build", d.Spec.ServiceName)
			}
			if d.Spec.UpdateStrategy.Type != "" && d.Spec.UpdateStrategy.Type != appsv1.RollingUpdateStatefulSetStrategyType {
				t.Errorf("updateStrategy %q: a new image or configuration would never roll out", d.Spec.UpdateStrategy.Type)
			}
			for name, s := range o.services {
				if len(s.Spec.Selector) == 0 || !subset(s.Spec.Selector, podLabels) {
					t.Errorf("Service %s selects %v, not the pods %v", name, s.Spec.Selector, podLabels)
				}
				for _, sp := range s.Spec.Ports {
					if _, ok := ports[sp.TargetPort.StrVal]; !ok {
						t.Errorf("Service %s targets port %q, which the container does not name", name, sp.TargetPort.String())
					}
				}
			}
			if len(o.pdbs) != 1 || o.pdbs[0].Spec.Selector == nil || len(o.pdbs[0].Spec.Selector.MatchLabels) == 0 || !subset(o.pdbs[0].Spec.Selector.MatchLabels, podLabels) {
				t.Errorf("want one PodDisruptionBudget over the pods, got %d", len(o.pdbs))
			}
			if sm := o.serviceMonitor; sm != nil {
				checkServiceMonitor(t, sm, o.services, tokenVol.Secret.SecretName, path.Base(set.Admin.Auth.TokenFile))
			}
			if r := o.prometheusRule; r != nil {
				checkPrometheusRule(t, r)
			}
			if dir != "base" && (len(o.namespaces) != 1 || o.namespaces[""]) {
				t.Errorf("an overlay puts everything in one namespace: %v", o.namespaces)
			}
		})
	}
}

func container(t *testing.T, spec *corev1.PodSpec, name string) *corev1.Container {
	t.Helper()
	for i := range spec.Containers {
		if spec.Containers[i].Name == name {
			return &spec.Containers[i]
		}
	}
	t.Fatalf("no container %q", name)
	return nil
}

// parseArgs reads "serve --flag value ..." into a map.
func parseArgs(t *testing.T, args []string) map[string]string {
	t.Helper()
	if len(args) == 0 || args[0] != "serve" {
		t.Fatalf("args %v do not run serve", args)
	}
	out := map[string]string{}
	for i := 1; i < len(args); i++ {
		name, ok := strings.CutPrefix(args[i], "--")
		if !ok || i+1 == len(args) {
			t.Fatalf("args %v: want --flag value pairs", args)
		}
		out[name] = args[i+1]
		i++
	}
	return out
}

// claimed reports whether dir in c is mounted from one of the StatefulSet's
// volume claim templates.
func claimed(s *appsv1.StatefulSet, c *corev1.Container, dir string) bool {
	for _, m := range c.VolumeMounts {
		if m.MountPath != dir {
			continue
		}
		for _, vc := range s.Spec.VolumeClaimTemplates {
			if vc.Name == m.Name {
				return true
			}
		}
	}
	return false
}

// mountOf returns the volume mounted at dir in c.
func mountOf(t *testing.T, spec *corev1.PodSpec, c *corev1.Container, dir string) (*corev1.Volume, *corev1.VolumeMount) {
	t.Helper()
	for i := range c.VolumeMounts {
		m := &c.VolumeMounts[i]
		if m.MountPath != dir {
			continue
		}
		for j := range spec.Volumes {
			if spec.Volumes[j].Name == m.Name {
				return &spec.Volumes[j], m
			}
		}
		t.Fatalf("mount %s names volume %q, which the pod lacks", dir, m.Name)
	}
	t.Fatalf("nothing is mounted at %s", dir)
	return nil, nil
}

func portOf(t *testing.T, addr string) int32 {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return int32(n)
}

func subset(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// noStats is an empty statistics source for the admin handler.
type noStats struct{}

func (noStats) Routes() []stats.RouteView { return nil }
func (noStats) Evidence(string, stats.EvidenceQuery) (stats.Evidence, bool) {
	return stats.Evidence{}, false
}

// checkProbe holds a probe to the admin handler of the code, with the
// configuration's auth in force: the kubelet sends no token, so the path
// must answer 200 without one while healthy, /readyz must turn 503 when the
// gateway drains, and /metrics must want the token the ServiceMonitor sends.
func checkProbe(t *testing.T, kind string, p *corev1.Probe, want string, liveness bool, auth rules.Auth) {
	t.Helper()
	if p == nil || p.HTTPGet == nil {
		t.Fatalf("no %s probe over HTTP", kind)
	}
	if p.HTTPGet.Path != want || p.HTTPGet.Port.StrVal != "admin" {
		t.Errorf("%s probe = %s on port %s, want %s on admin", kind, p.HTTPGet.Path, p.HTTPGet.Port.String(), want)
	}
	if len(p.HTTPGet.HTTPHeaders) != 0 {
		t.Errorf("%s probe sends headers: a token in a manifest is a leaked token", kind)
	}
	const token = "the-token-in-the-secret"
	for _, ready := range []bool{true, false} {
		h := web.New(web.Options{
			Stats:      noStats{},
			Ready:      func() bool { return ready },
			Auth:       web.NewCredentials([]string{token}, nil, nil),
			ProbesOpen: auth.ProbesOpen,
			Metrics:    http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}),
		})
		status := func(path, bearer string) int {
			req := httptest.NewRequest(http.MethodGet, path, nil)
			if bearer != "" {
				req.Header.Set("Authorization", "Bearer "+bearer)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			return rec.Code
		}
		want := http.StatusOK
		if !ready && !liveness {
			want = http.StatusServiceUnavailable
		}
		if got := status(p.HTTPGet.Path, ""); got != want {
			t.Errorf("%s probe %s answers %d without a token while ready=%v, want %d", kind, p.HTTPGet.Path, got, ready, want)
		}
		if got := status("/metrics", ""); got != http.StatusUnauthorized {
			t.Errorf("/metrics answers %d without a token, want 401", got)
		}
		if got := status("/metrics", token); got != http.StatusOK {
			t.Errorf("/metrics answers %d with the token, want 200", got)
		}
	}
}

// checkSecurity holds the pod to the restricted Pod Security Standard and
// to the image's user.
func checkSecurity(t *testing.T, spec *corev1.PodSpec, c *corev1.Container, img *dockerfile) {
	t.Helper()
	ps, cs := spec.SecurityContext, c.SecurityContext
	if ps == nil || cs == nil {
		t.Fatal("pod and container need a securityContext")
	}
	if ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot || ps.RunAsUser == nil || strconv.FormatInt(*ps.RunAsUser, 10)+":"+strconv.FormatInt(*ps.RunAsGroup, 10) != img.user {
		t.Errorf("pod runs as %v, the image as %s", ps.RunAsUser, img.user)
	}
	if ps.SeccompProfile == nil || ps.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Error("seccompProfile is not RuntimeDefault")
	}
	if cs.AllowPrivilegeEscalation == nil || *cs.AllowPrivilegeEscalation || cs.ReadOnlyRootFilesystem == nil || !*cs.ReadOnlyRootFilesystem {
		t.Error("the container must not escalate and must have a read-only root")
	}
	if cs.Capabilities == nil || len(cs.Capabilities.Drop) != 1 || cs.Capabilities.Drop[0] != "ALL" || len(cs.Capabilities.Add) != 0 {
		t.Error("the container must drop ALL capabilities")
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Error("cutover calls no Kubernetes API: automountServiceAccountToken must be false")
	}
	r := c.Resources
	if r.Requests.Cpu().IsZero() || r.Requests.Memory().IsZero() || r.Limits.Memory().IsZero() {
		t.Errorf("resources = %+v: want cpu and memory requests and a memory limit", r)
	}
}

func checkServiceMonitor(t *testing.T, sm *monitoringv1.ServiceMonitor, services map[string]*corev1.Service, secret, key string) {
	t.Helper()
	var selected []string
	for name, s := range services {
		if subset(sm.Spec.Selector.MatchLabels, s.Labels) {
			selected = append(selected, name)
		}
	}
	if len(selected) != 1 {
		t.Fatalf("the ServiceMonitor selects Services %v, want the admin Service only", selected)
	}
	admin := services[selected[0]]
	if len(sm.Spec.Endpoints) != 1 {
		t.Fatalf("want one endpoint, got %d", len(sm.Spec.Endpoints))
	}
	ep := sm.Spec.Endpoints[0]
	if len(admin.Spec.Ports) != 1 || ep.Port != admin.Spec.Ports[0].Name || admin.Spec.Ports[0].TargetPort.StrVal != "admin" {
		t.Errorf("the ServiceMonitor scrapes port %q of Service %s, not its admin port", ep.Port, admin.Name)
	}
	if ep.Path != "/metrics" {
		t.Errorf("the ServiceMonitor scrapes %s", ep.Path)
	}
	a := ep.Authorization
	if a == nil || a.Credentials == nil || a.Credentials.Name != secret || a.Credentials.Key != key {
		t.Errorf("the ServiceMonitor's bearer token is not the admin token (Secret %s, key %s): %+v", secret, key, a)
	}
}
