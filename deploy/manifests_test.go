package deploy

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// rendered is one overlay's objects, decoded into the Kubernetes types.
type rendered struct {
	deployments  []appsv1.Deployment
	statefulSets []appsv1.StatefulSet
	services     []corev1.Service
	secrets      []corev1.Secret
	pdbs         []policyv1.PodDisruptionBudget
	policies     []networkingv1.NetworkPolicy
}

// render builds overlay the way `kubectl kustomize` does, in process, and
// decodes every object strictly: a field the type lacks fails the test.
func render(t *testing.T, overlay string) rendered {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), overlay)
	if err != nil {
		t.Fatalf("kustomize %s: %v", overlay, err)
	}
	var r rendered
	for _, res := range m.Resources() {
		y, err := res.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		kind := res.GetKind()
		var dst any
		switch kind {
		case "Deployment":
			r.deployments = append(r.deployments, appsv1.Deployment{})
			dst = &r.deployments[len(r.deployments)-1]
		case "StatefulSet":
			r.statefulSets = append(r.statefulSets, appsv1.StatefulSet{})
			dst = &r.statefulSets[len(r.statefulSets)-1]
		case "Service":
			r.services = append(r.services, corev1.Service{})
			dst = &r.services[len(r.services)-1]
		case "Secret":
			r.secrets = append(r.secrets, corev1.Secret{})
			dst = &r.secrets[len(r.secrets)-1]
		case "PodDisruptionBudget":
			r.pdbs = append(r.pdbs, policyv1.PodDisruptionBudget{})
			dst = &r.pdbs[len(r.pdbs)-1]
		case "NetworkPolicy":
			r.policies = append(r.policies, networkingv1.NetworkPolicy{})
			dst = &r.policies[len(r.policies)-1]
		default:
			t.Fatalf("%s renders a %s, which this test does not check", overlay, kind)
		}
		if err := yaml.UnmarshalStrict(y, dst); err != nil {
			t.Fatalf("%s: %s %s: %v\n%s", overlay, kind, res.GetName(), err, y)
		}
	}
	return r
}

// flags returns the container's --name=value arguments.
func flags(c corev1.Container) map[string]string {
	f := map[string]string{}
	for _, a := range c.Args {
		if name, value, ok := strings.Cut(a, "="); ok && strings.HasPrefix(name, "--") {
			f[name] = value
		} else if strings.HasPrefix(a, "--") {
			f[a] = ""
		}
	}
	return f
}

// portOf returns the port of a --flag=host:port argument.
func portOf(t *testing.T, f map[string]string, flag string) int32 {
	t.Helper()
	addr, ok := f[flag]
	if !ok {
		t.Fatalf("no %s argument", flag)
	}
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%s=%s: %v", flag, addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%s: want a fixed port", flag, addr)
	}
	return int32(n)
}

// checkPod checks the invariants every overlay's pod keeps.
func checkPod(t *testing.T, pod corev1.PodTemplateSpec) {
	t.Helper()
	spec := pod.Spec
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(spec.Containers))
	}
	c := spec.Containers[0]
	f := flags(c)
	if len(c.Args) == 0 || c.Args[0] != "serve" {
		t.Errorf("args %v: want serve first", c.Args)
	}
	grpcPort, healthPort, metricsPort := portOf(t, f, "--addr"), portOf(t, f, "--health-addr"), portOf(t, f, "--metrics-addr")
	httpPort := portOf(t, f, "--http-addr")
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	for name, want := range map[string]int32{"grpc": grpcPort, "http": httpPort, "health": healthPort, "metrics": metricsPort} {
		if ports[name] != want {
			t.Errorf("container port %q = %d, want %d as the flags say", name, ports[name], want)
		}
	}

	// Probes: gRPC, on the health-only listener (the kubelet sends no TLS).
	// Readiness follows the store; liveness and startup must not, or a
	// database outage restarts every replica.
	for _, p := range []struct {
		name    string
		probe   *corev1.Probe
		service string
	}{
		{"readiness", c.ReadinessProbe, "RouteGuide"},
		{"liveness", c.LivenessProbe, "liveness"},
		{"startup", c.StartupProbe, "liveness"},
	} {
		switch {
		case p.probe == nil || p.probe.GRPC == nil:
			t.Errorf("%s probe is not a gRPC probe: %+v", p.name, p.probe)
		case p.probe.GRPC.Port != healthPort:
			t.Errorf("%s probe port %d, want --health-addr's %d", p.name, p.probe.GRPC.Port, healthPort)
		case p.probe.GRPC.Service == nil || *p.probe.GRPC.Service != p.service:
			t.Errorf("%s probe asks for service %v, want %q", p.name, p.probe.GRPC.Service, p.service)
		}
	}
	if sp := c.StartupProbe; sp != nil {
		if budget := time.Duration(sp.PeriodSeconds*sp.FailureThreshold) * time.Second; budget < time.Minute {
			t.Errorf("the startup probe allows %v for the first cache load, want a minute or more", budget)
		}
	}

	timeout, err := time.ParseDuration(f["--shutdown-timeout"])
	if err != nil {
		t.Errorf("--shutdown-timeout: %v", err)
	}
	if g := spec.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= timeout {
		t.Errorf("terminationGracePeriodSeconds %v, want more than --shutdown-timeout %v", g, timeout)
	}

	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext %+v: want runAsNonRoot and the RuntimeDefault seccomp profile", psc)
	}
	sc := c.SecurityContext
	switch {
	case sc == nil:
		t.Fatal("no container securityContext")
	case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot, sc.RunAsUser == nil || *sc.RunAsUser != 65532:
		t.Errorf("container runs as %v (non-root %v), want non-root 65532", sc.RunAsUser, sc.RunAsNonRoot)
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Error("allowPrivilegeEscalation is not false")
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Error("readOnlyRootFilesystem is not true")
	case sc.Capabilities == nil || fmt.Sprint(sc.Capabilities.Drop) != "[ALL]" || len(sc.Capabilities.Add) != 0:
		t.Errorf("capabilities %+v, want ALL dropped and none added", sc.Capabilities)
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[r]; !ok {
			t.Errorf("no %s request", r)
		}
	}
	if _, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok {
		t.Error("no memory limit")
	}
	a := pod.Annotations
	if a["prometheus.io/scrape"] != "true" || a["prometheus.io/port"] != strconv.Itoa(int(metricsPort)) {
		t.Errorf("prometheus annotations %v, want scrape on --metrics-addr's port %d", a, metricsPort)
	}
}

// checkNetworkPolicy wants one policy that selects the pods and lets in
// gRPC, HTTP and health, and metrics from the monitoring namespace.
func checkNetworkPolicy(t *testing.T, r rendered, pod corev1.PodTemplateSpec) {
	t.Helper()
	if len(r.policies) != 1 {
		t.Fatalf("%d NetworkPolicies, want 1", len(r.policies))
	}
	p := r.policies[0]
	for k, v := range p.Spec.PodSelector.MatchLabels {
		if pod.Labels[k] != v {
			t.Errorf("the NetworkPolicy selects %s=%s, which the pod lacks", k, v)
		}
	}
	if len(p.Spec.PodSelector.MatchLabels) == 0 {
		t.Error("the NetworkPolicy selects every pod in the namespace")
	}
	open := map[string]string{}
	for _, in := range p.Spec.Ingress {
		from := "anywhere"
		if len(in.From) > 0 && in.From[0].NamespaceSelector != nil {
			from = in.From[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"]
		}
		for _, port := range in.Ports {
			open[port.Port.String()] = from
		}
	}
	want := map[string]string{"grpc": "anywhere", "http": "anywhere", "health": "anywhere", "metrics": "monitoring"}
	if fmt.Sprint(open) != fmt.Sprint(want) {
		t.Errorf("NetworkPolicy opens %v, want %v", open, want)
	}
}

func TestSQLiteOverlay(t *testing.T) {
	r := render(t, "overlays/sqlite")
	if len(r.deployments) != 0 || len(r.statefulSets) != 1 {
		t.Fatalf("%d Deployments and %d StatefulSets, want a StatefulSet alone", len(r.deployments), len(r.statefulSets))
	}
	s := r.statefulSets[0]
	if s.Spec.Replicas == nil || *s.Spec.Replicas != 1 {
		t.Errorf("replicas %v, want 1: SQLite is one writer", s.Spec.Replicas)
	}
	checkPod(t, s.Spec.Template)
	checkNetworkPolicy(t, r, s.Spec.Template)
	if len(s.Spec.VolumeClaimTemplates) != 1 {
		t.Fatalf("%d volumeClaimTemplates, want 1", len(s.Spec.VolumeClaimTemplates))
	}
	claim := s.Spec.VolumeClaimTemplates[0].Name
	c := s.Spec.Template.Spec.Containers[0]
	var mount string
	for _, m := range c.VolumeMounts {
		if m.Name == claim {
			mount = m.MountPath
		}
	}
	var store string
	for _, e := range c.Env {
		if e.Name == "ROUTEGUIDE_STORE" {
			store = e.Value
		}
	}
	if mount == "" || !strings.HasPrefix(store, mount+"/") {
		t.Errorf("ROUTEGUIDE_STORE=%q is not on the claim %q (mounted at %q)", store, claim, mount)
	}
	if !matches(s.Spec.Selector.MatchLabels, s.Spec.Template.Labels) {
		t.Errorf("selector %v does not match the pod's labels %v", s.Spec.Selector.MatchLabels, s.Spec.Template.Labels)
	}
}

func TestPostgresOverlay(t *testing.T) {
	r := render(t, "overlays/postgres")
	if len(r.deployments) != 1 || len(r.statefulSets) != 0 {
		t.Fatalf("%d Deployments and %d StatefulSets, want a Deployment alone", len(r.deployments), len(r.statefulSets))
	}
	d := r.deployments[0]
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 3 {
		t.Errorf("replicas %v, want 3", d.Spec.Replicas)
	}
	pod := d.Spec.Template
	checkPod(t, pod)
	checkNetworkPolicy(t, r, pod)

	var ref *corev1.SecretKeySelector
	for _, e := range pod.Spec.Containers[0].Env {
		if e.Name == "ROUTEGUIDE_STORE" {
			if e.Value != "" || e.ValueFrom == nil {
				t.Fatal("ROUTEGUIDE_STORE is not taken from a Secret: a DSN holds a password")
			}
			ref = e.ValueFrom.SecretKeyRef
		}
	}
	if ref == nil {
		t.Fatal("no ROUTEGUIDE_STORE from a secretKeyRef")
	}
	found := false
	for _, s := range r.secrets {
		if s.Name == ref.Name {
			_, inData := s.Data[ref.Key]
			_, inString := s.StringData[ref.Key]
			found = inData || inString
		}
	}
	if !found {
		t.Errorf("the Secret %s with key %s is not in the overlay", ref.Name, ref.Key)
	}

	var headless, normal int
	for _, s := range r.services {
		if !matches(s.Spec.Selector, pod.Labels) {
			t.Errorf("Service %s selects %v, not the pods (%v)", s.Name, s.Spec.Selector, pod.Labels)
		}
		if s.Spec.ClusterIP == corev1.ClusterIPNone {
			headless++
		} else {
			normal++
		}
	}
	if headless != 1 || normal != 1 {
		t.Errorf("%d headless and %d normal Services, want one of each", headless, normal)
	}

	if len(r.pdbs) != 1 {
		t.Fatalf("%d PodDisruptionBudgets, want 1", len(r.pdbs))
	}
	pdb := r.pdbs[0]
	if pdb.Spec.Selector == nil || !matches(pdb.Spec.Selector.MatchLabels, pod.Labels) || len(pdb.Spec.Selector.MatchLabels) == 0 {
		t.Errorf("the PodDisruptionBudget selects %v, not the pods (%v)", pdb.Spec.Selector, pod.Labels)
	}
	if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("PodDisruptionBudget maxUnavailable %v, want 1", pdb.Spec.MaxUnavailable)
	}
}

// matches reports whether every label of selector is on labels.
func matches(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return len(selector) > 0
}

// TestStrictDecoding checks that render's decoding refuses a field the
// Kubernetes types lack, so a misspelt field cannot pass unnoticed.
func TestStrictDecoding(t *testing.T) {
	y := []byte("apiVersion: apps/v1\nkind: Deployment\nspec:\n  replicaz: 3\n")
	var d appsv1.Deployment
	if err := yaml.UnmarshalStrict(y, &d); err == nil {
		t.Error("a misspelt field decoded without error")
	}
}
