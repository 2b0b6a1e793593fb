// Package k8s_test builds the kustomize overlays in process, decodes every
// object strictly into its type and checks what the cluster relies on.
package k8s_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/oversoc/cybereason-connector/internal/config"
	"github.com/oversoc/cybereason-connector/internal/connector"
	"github.com/oversoc/cybereason-connector/internal/kafkaconn/kafkaconntest"
)

// overlays are every kustomization a user may apply.
var overlays = []string{"base", "overlays/dev", "overlays/prod", "overlays/prod-autoscaled"}

// manifests are the decoded objects of one build.
type manifests struct {
	namespaces      []corev1.Namespace
	serviceAccounts []corev1.ServiceAccount
	configMaps      []corev1.ConfigMap
	deployments     []appsv1.Deployment
	budgets         []policyv1.PodDisruptionBudget
	networkPolicies []networkingv1.NetworkPolicy
	topics          []KafkaTopic
	users           []KafkaUser
	scaledObjects   []ScaledObject
	triggerAuths    []TriggerAuthentication
	podMonitors     []PodMonitor
	rules           []PrometheusRule
}

// build runs kustomize on dir and decodes every object strictly: an unknown
// field or kind fails the test.
func build(t *testing.T, dir string) *manifests {
	t.Helper()
	resources, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}

	m := &manifests{}
	for _, resource := range resources.Resources() {
		data, err := resource.MarshalJSON()
		if err != nil {
			t.Fatalf("%s: encode %s: %v", dir, resource.CurId(), err)
		}
		gvk := resource.GetGvk()
		kind := gvk.Group + "/" + gvk.Version + "/" + gvk.Kind
		var target any
		switch kind {
		case "/v1/Namespace":
			target = appendNew(&m.namespaces)
		case "/v1/ServiceAccount":
			target = appendNew(&m.serviceAccounts)
		case "/v1/ConfigMap":
			target = appendNew(&m.configMaps)
		case "apps/v1/Deployment":
			target = appendNew(&m.deployments)
		case "policy/v1/PodDisruptionBudget":
			target = appendNew(&m.budgets)
		case "networking.k8s.io/v1/NetworkPolicy":
			target = appendNew(&m.networkPolicies)
		case "kafka.strimzi.io/v1/KafkaTopic":
			target = appendNew(&m.topics)
		case "kafka.strimzi.io/v1/KafkaUser":
			target = appendNew(&m.users)
		case "keda.sh/v1alpha1/ScaledObject":
			target = appendNew(&m.scaledObjects)
		case "keda.sh/v1alpha1/TriggerAuthentication":
			target = appendNew(&m.triggerAuths)
		case "monitoring.coreos.com/v1/PodMonitor":
			target = appendNew(&m.podMonitors)
		case "monitoring.coreos.com/v1/PrometheusRule":
			target = appendNew(&m.rules)
		default:
			t.Fatalf("%s: unexpected kind %s of %s", dir, kind, resource.GetName())
		}
		if err := decodeStrict(data, target); err != nil {
			t.Fatalf("%s: %s %s: %v", dir, gvk.Kind, resource.GetName(), err)
		}
	}
	return m
}

// appendNew appends a zero element to list and returns a pointer to it.
func appendNew[T any](list *[]T) *T {
	*list = append(*list, *new(T))
	return &(*list)[len(*list)-1]
}

func decodeStrict(data []byte, target any) error {
	decoder := json.NewDecoder(bytes.NewReader(data))
	decoder.DisallowUnknownFields()
	return decoder.Decode(target)
}

func TestStrictDecodeRejectsUnknownField(t *testing.T) {
	var deployment appsv1.Deployment
	data := []byte(`{"spec": {"template": {"spec": {"containers": [{"name": "c", "readinesProbe": {}}]}}}}`)

	err := decodeStrict(data, &deployment)
	if err == nil || !strings.Contains(err.Error(), "readinesProbe") {
		t.Fatalf("decode error = %v, want one naming the unknown field", err)
	}
}

func TestOverlaysBuild(t *testing.T) {
	for _, overlay := range overlays {
		t.Run(overlay, func(t *testing.T) {
			m := build(t, overlay)
			if len(m.deployments) == 0 {
				t.Fatal("no Deployment")
			}
			for _, deployment := range m.deployments {
				checkPod(t, m, deployment)
			}
			checkNetworkPolicies(t, m)
			checkTopics(t, m)
			checkUsers(t, m)
		})
	}
}

// TestPatchFilesDeleteOneObjectEach keeps every $patch: delete document in a
// file of its own. kustomize v5.5, the one in kubectl v1.32, panics with a nil
// pointer dereference on a patch file that contains two of them. The
// kustomize module that TestOverlaysBuild runs builds such a file without error.
func TestPatchFilesDeleteOneObjectEach(t *testing.T) {
	documentSeparator := regexp.MustCompile(`(?m)^---[ \t]*$`)
	deletePatch := regexp.MustCompile(`(?m)^[ \t]*\$patch:[ \t]*delete[ \t]*$`)
	files, err := filepath.Glob("*/*/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	more, err := filepath.Glob("*/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, more...)
	if len(files) == 0 {
		t.Fatal("no YAML files found")
	}

	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		deletions := 0
		for _, document := range documentSeparator.Split(string(data), -1) {
			if deletePatch.MatchString(document) {
				deletions++
			}
		}
		if deletions > 1 {
			t.Errorf("%s contains %d $patch: delete documents; put each one in a file of its own", file, deletions)
		}
	}
}

func TestProdRunsStagesApart(t *testing.T) {
	m := build(t, "overlays/prod")
	if len(m.deployments) != 3 {
		t.Fatalf("%d Deployments, want one per stage", len(m.deployments))
	}

	for _, deployment := range m.deployments {
		stages := containerEnv(t, m, deployment)["STAGES"]
		switch stages {
		case config.StageSource:
			if replicas := deref(deployment.Spec.Replicas); replicas != 1 {
				t.Errorf("source has %d replicas, want 1", replicas)
			}
			if deployment.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
				t.Errorf("source strategy is %q, want Recreate", deployment.Spec.Strategy.Type)
			}
		case config.StageEnrich, config.StageDedupe:
			if replicas := deref(deployment.Spec.Replicas); replicas < 2 {
				t.Errorf("%s has %d replicas, want several", stages, replicas)
			}
			if rolling := deployment.Spec.Strategy.RollingUpdate; rolling == nil || rolling.MaxUnavailable == nil || rolling.MaxUnavailable.IntValue() != 0 {
				t.Errorf("%s rollout may stop a pod before its successor is ready", stages)
			}
			checkBudget(t, m, deployment)
		default:
			t.Errorf("Deployment %s runs STAGES=%q, want one stage", deployment.Name, stages)
		}
	}
}

func TestProdIsMonitored(t *testing.T) {
	m := build(t, "overlays/prod")
	if len(m.podMonitors) != 1 || len(m.rules) != 1 {
		t.Fatalf("%d PodMonitors and %d PrometheusRules, want 1 of each", len(m.podMonitors), len(m.rules))
	}

	monitor := m.podMonitors[0]
	for _, deployment := range m.deployments {
		for key, value := range monitor.Spec.Selector.MatchLabels {
			if deployment.Spec.Template.Labels[key] != value {
				t.Errorf("PodMonitor does not select the pods of %s: label %s", deployment.Name, key)
			}
		}
	}
	if len(monitor.Spec.PodMetricsEndpoints) != 1 || monitor.Spec.PodMetricsEndpoints[0].Port != "metrics" {
		t.Error("PodMonitor does not scrape the metrics port")
	}

	// Every connector metric an alert uses is one the README documents,
	// whose table the connector tests keep true.
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	metricName := regexp.MustCompile(`cybereason_connector_([a-z_]+)`)
	for _, group := range m.rules[0].Spec.Groups {
		for _, rule := range group.Rules {
			if rule.Alert == "" || rule.Labels["severity"] == "" || rule.Annotations["summary"] == "" {
				t.Errorf("rule %q lacks a name, a severity or a summary", rule.Alert)
			}
			for _, match := range metricName.FindAllStringSubmatch(rule.Expr, -1) {
				if !strings.Contains(string(readme), "| `"+match[1]+"`") {
					t.Errorf("alert %s uses %s, which README.md does not list", rule.Alert, match[0])
				}
			}
		}
	}
}

func TestDevRunsEveryStageInOnePod(t *testing.T) {
	m := build(t, "overlays/dev")
	if len(m.deployments) != 1 {
		t.Fatalf("%d Deployments, want 1", len(m.deployments))
	}

	deployment := m.deployments[0]
	if stages := containerEnv(t, m, deployment)["STAGES"]; stages != "source,enrich,dedupe" {
		t.Errorf("STAGES = %q, want every stage", stages)
	}
	if replicas := deref(deployment.Spec.Replicas); replicas != 1 || deployment.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("%d replicas with strategy %q, want 1 with Recreate, because it runs the source", replicas, deployment.Spec.Strategy.Type)
	}
	if len(m.budgets) != 0 {
		t.Errorf("%d PodDisruptionBudgets left for Deployments that do not exist", len(m.budgets))
	}
	for _, topic := range m.topics {
		if topic.Spec.Replicas != 1 || topic.Spec.Config["min.insync.replicas"] != "1" {
			t.Errorf("KafkaTopic %s: %d replicas, min.insync.replicas %s; want 1 and 1 on a single broker",
				topic.Name(), topic.Spec.Replicas, topic.Spec.Config["min.insync.replicas"])
		}
	}
}

func TestAutoscalingScalesEnrichAndDedupe(t *testing.T) {
	m := build(t, "overlays/prod-autoscaled")
	cfg := loadDefaults(t)
	groups := map[string]string{
		"cybereason-connector-enrich": cfg.Kafka.EnrichGroup,
		"cybereason-connector-dedupe": cfg.Kafka.DedupeGroup,
	}

	var scaled []string
	for _, object := range m.scaledObjects {
		target := object.Spec.ScaleTargetRef.Name
		scaled = append(scaled, target)
		group, ok := groups[target]
		if !ok {
			t.Errorf("ScaledObject %s scales %s, want only enrich and dedupe", object.Name, target)
			continue
		}
		if deref(object.Spec.MinReplicaCount) < 1 {
			t.Errorf("ScaledObject %s may scale to zero, which drops the restored dedupe state", object.Name)
		}
		for _, trigger := range object.Spec.Triggers {
			checkTrigger(t, m, object, trigger.Type, trigger.Metadata, group)
			if trigger.AuthenticationRef == nil || !slices.ContainsFunc(m.triggerAuths, func(a TriggerAuthentication) bool { return a.Name == trigger.AuthenticationRef.Name }) {
				t.Errorf("ScaledObject %s: trigger without a TriggerAuthentication of the component", object.Name)
			}
		}
	}
	slices.Sort(scaled)
	if !slices.Equal(scaled, []string{"cybereason-connector-dedupe", "cybereason-connector-enrich"}) {
		t.Errorf("scaled Deployments = %v, want enrich and dedupe", scaled)
	}

	for _, auth := range m.triggerAuths {
		var parameters []string
		for _, env := range auth.Spec.Env {
			parameters = append(parameters, env.Parameter)
		}
		for _, ref := range auth.Spec.SecretTargetRef {
			parameters = append(parameters, ref.Parameter)
		}
		for _, want := range []string{"username", "password", "ca"} {
			if !slices.Contains(parameters, want) {
				t.Errorf("TriggerAuthentication %s: no %s parameter", auth.Name, want)
			}
		}
	}
}

// checkTrigger checks a Kafka trigger: the stage's group, one of its
// topics, and no more replicas than that topic has partitions.
func checkTrigger(t *testing.T, m *manifests, object ScaledObject, kind string, metadata map[string]string, group string) {
	t.Helper()
	if kind != "kafka" {
		t.Errorf("ScaledObject %s: trigger type %q, want kafka", object.Name, kind)
		return
	}
	if metadata["consumerGroup"] != group {
		t.Errorf("ScaledObject %s: consumerGroup %q, want %q", object.Name, metadata["consumerGroup"], group)
	}
	if metadata["offsetResetPolicy"] != "earliest" {
		t.Errorf("ScaledObject %s: offsetResetPolicy %q, want earliest, where the connector starts", object.Name, metadata["offsetResetPolicy"])
	}
	topic := topicByName(m, metadata["topic"])
	if topic == nil {
		t.Errorf("ScaledObject %s: trigger topic %q has no KafkaTopic", object.Name, metadata["topic"])
		return
	}
	if maxReplicas := deref(object.Spec.MaxReplicaCount); maxReplicas > topic.Spec.Partitions {
		t.Errorf("ScaledObject %s: up to %d replicas for %d partitions of %s", object.Name, maxReplicas, topic.Spec.Partitions, topic.Name())
	}
}

// checkPod checks a Deployment's pod against the "restricted" Pod Security
// Standard, its probes, resources, grace period and secrets.
func checkPod(t *testing.T, m *manifests, deployment appsv1.Deployment) {
	t.Helper()
	pod := deployment.Spec.Template.Spec
	name := deployment.Name

	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Errorf("%s: automountServiceAccountToken is not false", name)
	}
	account := slices.IndexFunc(m.serviceAccounts, func(a corev1.ServiceAccount) bool { return a.Name == pod.ServiceAccountName })
	if account < 0 {
		t.Errorf("%s: ServiceAccount %q is not in the build", name, pod.ServiceAccountName)
	} else if token := m.serviceAccounts[account].AutomountServiceAccountToken; token == nil || *token {
		t.Errorf("ServiceAccount %s mounts its token", pod.ServiceAccountName)
	}
	if sc := pod.SecurityContext; sc == nil || !deref(sc.RunAsNonRoot) || sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: pod securityContext lacks runAsNonRoot or the RuntimeDefault seccomp profile", name)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%s: %d containers, want 1", name, len(pod.Containers))
	}

	container := pod.Containers[0]
	checkContainerSecurity(t, name, container)
	checkProbes(t, name, container)
	checkResources(t, name, container)
	checkSecretsAsFiles(t, m, deployment)

	cfg := loadEffectiveConfig(t, m, deployment)
	drain := cfg.ShutdownTimeout + 20*time.Second // console logout (at most 10 s) and the writer's flush
	if grace := time.Duration(deref(pod.TerminationGracePeriodSeconds)) * time.Second; grace < drain {
		t.Errorf("%s: terminationGracePeriodSeconds %s is shorter than SHUTDOWN_TIMEOUT %s plus 20s", name, grace, cfg.ShutdownTimeout)
	}
}

func checkContainerSecurity(t *testing.T, name string, container corev1.Container) {
	t.Helper()
	sc := container.SecurityContext
	if sc == nil {
		t.Errorf("%s: container has no securityContext", name)
		return
	}

	checks := []struct {
		what string
		ok   bool
	}{
		{"runAsNonRoot", deref(sc.RunAsNonRoot)},
		{"readOnlyRootFilesystem", deref(sc.ReadOnlyRootFilesystem)},
		{"allowPrivilegeEscalation false", sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation},
		{"capabilities drop ALL", sc.Capabilities != nil && slices.Contains(sc.Capabilities.Drop, "ALL") && len(sc.Capabilities.Add) == 0},
		{"seccompProfile RuntimeDefault", sc.SeccompProfile != nil && sc.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault},
		{"not privileged", !deref(sc.Privileged)},
	}
	for _, check := range checks {
		if !check.ok {
			t.Errorf("%s: container securityContext lacks %s", name, check.what)
		}
	}
}

func checkProbes(t *testing.T, name string, container corev1.Container) {
	t.Helper()
	probes := []struct {
		kind  string
		probe *corev1.Probe
		path  string
	}{
		{"liveness", container.LivenessProbe, "/healthz"},
		{"readiness", container.ReadinessProbe, "/readyz"},
		{"startup", container.StartupProbe, "/readyz"},
	}
	for _, p := range probes {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s: no HTTP %s probe", name, p.kind)
			continue
		}
		if p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Port.String() != "metrics" {
			t.Errorf("%s: %s probe on %s port %s, want %s on the metrics port", name, p.kind, p.probe.HTTPGet.Path, p.probe.HTTPGet.Port.String(), p.path)
		}
	}
	if !slices.ContainsFunc(container.Ports, func(p corev1.ContainerPort) bool { return p.Name == "metrics" && p.ContainerPort == 9090 }) {
		t.Errorf("%s: no container port metrics 9090", name)
	}

	// The startup probe holds liveness off while dedupe restores its state.
	if startup := container.StartupProbe; startup != nil {
		budget := time.Duration(startup.FailureThreshold*startup.PeriodSeconds) * time.Second
		if budget < 5*time.Minute {
			t.Errorf("%s: startup probe allows %s, want at least 5m for the state restore", name, budget)
		}
	}
}

func checkResources(t *testing.T, name string, container corev1.Container) {
	t.Helper()
	for _, resource := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		request, hasRequest := container.Resources.Requests[resource]
		limit, hasLimit := container.Resources.Limits[resource]
		if !hasRequest || !hasLimit {
			t.Errorf("%s: %s request or limit missing", name, resource)
			continue
		}
		if request.Cmp(limit) > 0 {
			t.Errorf("%s: %s request %s above its limit %s", name, resource, request.String(), limit.String())
		}
	}
}

// checkSecretsAsFiles checks that no credential reaches the container as an
// environment value, and that every Secret volume is mounted whole, so that
// the kubelet updates rotated files.
func checkSecretsAsFiles(t *testing.T, m *manifests, deployment appsv1.Deployment) {
	t.Helper()
	container := deployment.Spec.Template.Spec.Containers[0]
	for _, source := range container.EnvFrom {
		if source.SecretRef != nil {
			t.Errorf("%s: envFrom Secret %s", deployment.Name, source.SecretRef.Name)
		}
	}
	for _, env := range container.Env {
		if env.ValueFrom != nil && env.ValueFrom.SecretKeyRef != nil {
			t.Errorf("%s: env %s comes from a Secret", deployment.Name, env.Name)
		}
	}
	for name := range containerEnv(t, m, deployment) {
		if credentialVariable(name) {
			t.Errorf("%s: credential %s set as an environment value; use %s_FILE", deployment.Name, name, name)
		}
	}

	secretVolumes := map[string]bool{}
	for _, volume := range deployment.Spec.Template.Spec.Volumes {
		if volume.Secret != nil {
			secretVolumes[volume.Name] = true
		}
	}
	for _, mount := range container.VolumeMounts {
		if secretVolumes[mount.Name] && mount.SubPath != "" {
			t.Errorf("%s: Secret volume %s mounted with subPath, which the kubelet never updates", deployment.Name, mount.Name)
		}
	}
	for name, value := range containerEnv(t, m, deployment) {
		if strings.HasSuffix(name, "_FILE") && !mountedFrom(container, secretVolumes, value) {
			t.Errorf("%s: %s=%s is not in a mounted Secret volume", deployment.Name, name, value)
		}
	}
}

// credentialVariable reports whether name is a setting that holds a
// credential itself rather than the path of its file.
func credentialVariable(name string) bool {
	return slices.Contains([]string{"CYBEREASON_PASSWORD", "CYBEREASON_TOTP_SECRET", "KAFKA_SASL_PASSWORD"}, name)
}

func mountedFrom(container corev1.Container, secretVolumes map[string]bool, path string) bool {
	for _, mount := range container.VolumeMounts {
		if secretVolumes[mount.Name] && strings.HasPrefix(path, mount.MountPath+"/") {
			return true
		}
	}
	return false
}

func checkBudget(t *testing.T, m *manifests, deployment appsv1.Deployment) {
	t.Helper()
	podLabels := deployment.Spec.Template.Labels
	for _, budget := range m.budgets {
		matches := true
		for key, value := range budget.Spec.Selector.MatchLabels {
			matches = matches && podLabels[key] == value
		}
		if !matches {
			continue
		}
		if budget.Spec.MaxUnavailable == nil || budget.Spec.MaxUnavailable.IntValue() != 1 {
			t.Errorf("PodDisruptionBudget %s: maxUnavailable is not 1", budget.Name)
		}
		if p := budget.Spec.UnhealthyPodEvictionPolicy; p == nil || *p != policyv1.AlwaysAllow {
			t.Errorf("PodDisruptionBudget %s: unhealthy pods cannot be evicted, which blocks drains during an outage", budget.Name)
		}
		return
	}
	t.Errorf("%s: no PodDisruptionBudget selects its pods", deployment.Name)
}

func checkNetworkPolicies(t *testing.T, m *manifests) {
	t.Helper()
	var defaultDeny, metricsIngress bool
	egressPorts := map[int32]bool{}
	for _, policy := range m.networkPolicies {
		if len(policy.Spec.PodSelector.MatchLabels) == 0 && len(policy.Spec.Ingress) == 0 && len(policy.Spec.Egress) == 0 && len(policy.Spec.PolicyTypes) == 2 {
			defaultDeny = true
		}
		for _, rule := range policy.Spec.Ingress {
			for _, port := range rule.Ports {
				metricsIngress = metricsIngress || (port.Port != nil && port.Port.String() == "metrics")
			}
		}
		for _, rule := range policy.Spec.Egress {
			for _, port := range rule.Ports {
				if port.Port != nil {
					egressPorts[int32(port.Port.IntValue())] = true
				}
			}
		}
	}
	if !defaultDeny {
		t.Error("no default-deny NetworkPolicy")
	}
	if !metricsIngress {
		t.Error("no NetworkPolicy lets Prometheus reach the metrics port")
	}
	for port, what := range map[int32]string{53: "DNS", 9093: "Kafka", 443: "the console"} {
		if !egressPorts[port] {
			t.Errorf("no NetworkPolicy allows egress to %s (port %d)", what, port)
		}
	}
}

// checkTopics checks that a KafkaTopic exists for every topic the stages use.
func checkTopics(t *testing.T, m *manifests) {
	t.Helper()
	cfg := loadDefaults(t)
	want := connector.RequiredTopics(cfg)
	for _, name := range want {
		if topicByName(m, name) == nil {
			t.Errorf("no KafkaTopic %s", name)
		}
	}

	compacted := []string{cfg.Kafka.Topics.State, cfg.Kafka.Topics.Assets, cfg.Kafka.Topics.Findings}
	for _, topic := range m.topics {
		isCompacted := topic.Spec.Config["cleanup.policy"] == "compact"
		if isCompacted != slices.Contains(compacted, topic.Name()) {
			t.Errorf("KafkaTopic %s: compacted is %t, want %t", topic.Name(), isCompacted, !isCompacted)
		}
		if topic.Spec.Partitions < 1 || topic.Spec.Replicas < 1 {
			t.Errorf("KafkaTopic %s: partitions %d and replicas %d must be set", topic.Name(), topic.Spec.Partitions, topic.Spec.Replicas)
		}
		if minISR, err := strconv.Atoi(topic.Spec.Config["min.insync.replicas"]); err != nil || minISR > int(topic.Spec.Replicas) {
			t.Errorf("KafkaTopic %s: min.insync.replicas %q is not a count up to its %d replicas, so acks=all writes would fail",
				topic.Name(), topic.Spec.Config["min.insync.replicas"], topic.Spec.Replicas)
		}
		if topic.Labels["strimzi.io/cluster"] == "" {
			t.Errorf("KafkaTopic %s: no strimzi.io/cluster label", topic.Name())
		}
	}

	// Enrich forwards the inventory end events of raw sensors partition p
	// to normalized assets partition p, and dedupe keeps the state of input
	// partition p in output partition p.
	copartitioned := map[string]string{
		cfg.Kafka.Topics.RawSensors:         cfg.Kafka.Topics.NormalizedAssets,
		cfg.Kafka.Topics.NormalizedAssets:   cfg.Kafka.Topics.Assets,
		cfg.Kafka.Topics.NormalizedFindings: cfg.Kafka.Topics.Findings,
	}
	for in, out := range copartitioned {
		if a, b := topicByName(m, in), topicByName(m, out); a != nil && b != nil && a.Spec.Partitions != b.Spec.Partitions {
			t.Errorf("KafkaTopic %s has %d partitions but its input %s has %d", out, b.Spec.Partitions, in, a.Spec.Partitions)
		}
	}
}

// checkUsers checks that every Deployment's Kafka user exists and may use
// every topic its stages need, and that no user may change topics.
func checkUsers(t *testing.T, m *manifests) {
	t.Helper()
	for _, user := range m.users {
		if auth := user.Spec.Authentication.Type; auth != "scram-sha-512" && auth != "tls" {
			t.Errorf("KafkaUser %s: authentication %q, want scram-sha-512 or tls", user.Name, auth)
		}
		for _, acl := range user.Spec.Authorization.ACLs {
			for _, operation := range acl.Operations {
				if slices.Contains([]string{"All", "Create", "Alter", "Delete", "AlterConfigs", "IdempotentWrite", "ClusterAction"}, operation) {
					t.Errorf("KafkaUser %s: operation %s on %s %s is more than the connector needs", user.Name, operation, acl.Resource.Type, acl.Resource.Name)
				}
			}
		}
	}

	for _, deployment := range m.deployments {
		env := containerEnv(t, m, deployment)
		index := slices.IndexFunc(m.users, func(u KafkaUser) bool { return u.Name == env["KAFKA_SASL_USERNAME"] })
		if index < 0 {
			t.Errorf("%s: KAFKA_SASL_USERNAME %q has no KafkaUser", deployment.Name, env["KAFKA_SASL_USERNAME"])
			continue
		}
		user := m.users[index]

		cfg := loadDefaults(t)
		cfg.Stages = strings.Split(env["STAGES"], ",")
		for _, topic := range connector.RequiredTopics(cfg) {
			if !allowed(user, "topic", topic, "Describe") {
				t.Errorf("KafkaUser %s may not describe topic %s, which %s checks at start", user.Name, topic, deployment.Name)
			}
		}
		for stage, group := range map[string]string{config.StageEnrich: cfg.Kafka.EnrichGroup, config.StageDedupe: cfg.Kafka.DedupeGroup} {
			if cfg.Runs(stage) && !allowed(user, "group", group, "Read") {
				t.Errorf("KafkaUser %s may not join group %s", user.Name, group)
			}
		}
	}
}

// allowed reports whether an ACL of user grants operation on the resource.
// Read and Write imply Describe, as in Kafka.
func allowed(user KafkaUser, resourceType, name, operation string) bool {
	for _, acl := range user.Spec.Authorization.ACLs {
		r := acl.Resource
		matches := r.Type == resourceType && (r.Name == name || (r.PatternType == "prefix" && strings.HasPrefix(name, r.Name)))
		if !matches {
			continue
		}
		if slices.Contains(acl.Operations, operation) ||
			(operation == "Describe" && (slices.Contains(acl.Operations, "Read") || slices.Contains(acl.Operations, "Write"))) {
			return true
		}
	}
	return false
}

func topicByName(m *manifests, name string) *KafkaTopic {
	for i := range m.topics {
		if m.topics[i].Name() == name {
			return &m.topics[i]
		}
	}
	return nil
}

// containerEnv returns the literal environment of deployment's container:
// its ConfigMaps, then its own env values, which win.
func containerEnv(t *testing.T, m *manifests, deployment appsv1.Deployment) map[string]string {
	t.Helper()
	container := deployment.Spec.Template.Spec.Containers[0]
	env := map[string]string{}
	for _, source := range container.EnvFrom {
		if source.ConfigMapRef == nil {
			continue
		}
		index := slices.IndexFunc(m.configMaps, func(c corev1.ConfigMap) bool { return c.Name == source.ConfigMapRef.Name })
		if index < 0 {
			t.Fatalf("%s: ConfigMap %s is not in the build", deployment.Name, source.ConfigMapRef.Name)
		}
		for key, value := range m.configMaps[index].Data {
			env[key] = value
		}
	}
	for _, variable := range container.Env {
		if variable.ValueFrom == nil {
			env[variable.Name] = variable.Value
		}
	}
	return env
}

// loadEffectiveConfig loads the connector's settings as the container gets
// them, with each *_FILE pointing to a local stand-in of the mounted file.
func loadEffectiveConfig(t *testing.T, m *manifests, deployment appsv1.Deployment) *config.Config {
	t.Helper()
	env := containerEnv(t, m, deployment)
	pki := kafkaconntest.NewPKI(t)
	for name := range env {
		switch {
		case strings.HasSuffix(name, "_CA_FILE"):
			env[name] = pki.CAFile
		case strings.HasSuffix(name, "_FILE"):
			path := filepath.Join(t.TempDir(), name)
			if err := os.WriteFile(path, []byte("stand-in credential\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			env[name] = path
		}
	}

	cfg, err := config.Load(context.Background(), envconfig.MapLookuper(env))
	if err != nil {
		t.Fatalf("%s: the connector rejects its settings: %v", deployment.Name, err)
	}
	return cfg
}

// loadDefaults returns the default settings of every stage.
func loadDefaults(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Load(context.Background(), envconfig.MapLookuper(map[string]string{
		"KAFKA_BROKERS":       "kafka:9092",
		"CYBEREASON_URL":      "https://acme.cybereason.net",
		"CYBEREASON_USERNAME": "reader",
		"CYBEREASON_PASSWORD": "unused",
	}))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func deref[T any](p *T) T {
	if p == nil {
		return *new(T)
	}
	return *p
}
