package ecs_test

import (
	"errors"
	"maps"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/applicationautoscaling"
	"github.com/aws/aws-sdk-go-v2/service/applicationautoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/chatprep/chatprep/deploy/deploytest"
	"github.com/chatprep/chatprep/internal/config"
)

// minScaleInCooldown is the least scale-in cooldown that does not thrash:
// five one-minute metric periods.
const minScaleInCooldown = 300 * time.Second

// scalingFiles decodes the scaling files and the files they refer to.
func scalingFiles(t *testing.T) (*applicationautoscaling.RegisterScalableTargetInput, *applicationautoscaling.PutScalingPolicyInput, *ecs.CreateClusterInput, *ecs.CreateServiceInput) {
	t.Helper()
	var target applicationautoscaling.RegisterScalableTargetInput
	deploytest.MustDecode(t, "scalable-target.json", &target)
	var policy applicationautoscaling.PutScalingPolicyInput
	deploytest.MustDecode(t, "autoscaling.json", &policy)
	var cluster ecs.CreateClusterInput
	deploytest.MustDecode(t, "cluster.json", &cluster)
	var service ecs.CreateServiceInput
	deploytest.MustDecode(t, "service.json", &service)
	return &target, &policy, &cluster, &service
}

// TestScalingTargetFollowsTheBench checks autoscaling.json's TargetValue is
// DEPLOY.md's per-task throughput times the acceptable queue delay, the one
// formula for the backlog one task drains in time. When the bench updates
// the throughput there, this fails until the policy follows.
func TestScalingTargetFollowsTheBench(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(deployDoc)
	if err != nil {
		t.Fatal(err)
	}
	perTask := docValue(t, doc, "TASK_EVENTS_PER_SECOND")
	delay := docValue(t, doc, "ACCEPTABLE_QUEUE_DELAY_SECONDS")
	stated := docValue(t, doc, "TARGET_BACKLOG_PER_TASK")
	if perTask <= 0 || delay <= 0 {
		t.Fatalf("TASK_EVENTS_PER_SECOND %v, ACCEPTABLE_QUEUE_DELAY_SECONDS %v: both must be positive", perTask, delay)
	}
	want := perTask * delay
	if stated != want {
		t.Errorf("%s: TARGET_BACKLOG_PER_TASK is %v, but %v events/s × %v s = %v", deployDoc, stated, perTask, delay, want)
	}
	_, policy, _, _ := scalingFiles(t)
	tt := policy.TargetTrackingScalingPolicyConfiguration
	if tt == nil {
		t.Fatal("autoscaling.json has no target tracking configuration")
	}
	if got := aws.ToFloat64(tt.TargetValue); got != want {
		t.Errorf("autoscaling.json TargetValue %v, want %v events/s × %v s = %v (docs/DEPLOY.md)", got, perTask, delay, want)
	}
}

// TestScalingPolicyTracksBacklogPerTask checks the policy is target tracking
// of the input queue's visible messages divided by the service's running
// tasks, on the service cluster.json and service.json create, with bounds
// and cooldowns that let stopped tasks drain.
func TestScalingPolicyTracksBacklogPerTask(t *testing.T) {
	t.Parallel()
	target, policy, cluster, service := scalingFiles(t)
	resource := "service/" + aws.ToString(cluster.ClusterName) + "/" + aws.ToString(service.ServiceName)
	for name, in := range map[string]struct {
		ns  types.ServiceNamespace
		id  string
		dim types.ScalableDimension
	}{
		"scalable-target.json": {target.ServiceNamespace, aws.ToString(target.ResourceId), target.ScalableDimension},
		"autoscaling.json":     {policy.ServiceNamespace, aws.ToString(policy.ResourceId), policy.ScalableDimension},
	} {
		if in.ns != types.ServiceNamespaceEcs || in.id != resource || in.dim != types.ScalableDimensionECSServiceDesiredCount {
			t.Errorf("%s scales %s %s %s, want ecs %s ecs:service:DesiredCount", name, in.ns, in.id, in.dim, resource)
		}
	}

	lo, hi := aws.ToInt32(target.MinCapacity), aws.ToInt32(target.MaxCapacity)
	if lo < 1 || hi < lo {
		t.Errorf("capacity %d..%d: at zero tasks RunningTaskCount has no data and the policy could never scale out", lo, hi)
	}
	if d := aws.ToInt32(service.DesiredCount); d < lo || d > hi {
		t.Errorf("service desiredCount %d outside %d..%d", d, lo, hi)
	}

	if policy.PolicyType != types.PolicyTypeTargetTrackingScaling {
		t.Fatalf("PolicyType %s", policy.PolicyType)
	}
	tt := policy.TargetTrackingScalingPolicyConfiguration
	if tt == nil || tt.CustomizedMetricSpecification == nil || tt.PredefinedMetricSpecification != nil {
		t.Fatal("want a customized metric")
	}
	if aws.ToBool(tt.DisableScaleIn) {
		t.Error("scale-in is disabled")
	}
	var td ecs.RegisterTaskDefinitionInput
	deploytest.MustDecode(t, "task-definition.json", &td)
	stop := time.Duration(aws.ToInt32(td.ContainerDefinitions[0].StopTimeout)) * time.Second
	in := time.Duration(aws.ToInt32(tt.ScaleInCooldown)) * time.Second
	out := time.Duration(aws.ToInt32(tt.ScaleOutCooldown)) * time.Second
	if in < minScaleInCooldown || in <= stop || in < out {
		t.Errorf("ScaleInCooldown %v: want at least %v, above stopTimeout (%v) so stopped tasks have drained, and not below ScaleOutCooldown (%v)",
			in, minScaleInCooldown, stop, out)
	}
	if out <= 0 {
		t.Errorf("ScaleOutCooldown %v", out)
	}

	cms := tt.CustomizedMetricSpecification
	if cms.MetricName != nil || cms.Namespace != nil || cms.Dimensions != nil || cms.Statistic != "" {
		t.Error("customized metric mixes a single metric with metric math")
	}
	metrics := map[string]types.TargetTrackingMetricDataQuery{}
	var result []types.TargetTrackingMetricDataQuery
	for _, m := range cms.Metrics {
		metrics[aws.ToString(m.Id)] = m
		if aws.ToBool(m.ReturnData) {
			result = append(result, m)
		}
	}
	if len(result) != 1 || result[0].Expression == nil {
		t.Fatalf("want exactly one returned series, an expression; got %d", len(result))
	}
	ids := regexp.MustCompile(`^\s*([a-z][A-Za-z0-9_]*)\s*/\s*([a-z][A-Za-z0-9_]*)\s*$`).FindStringSubmatch(aws.ToString(result[0].Expression))
	if ids == nil {
		t.Fatalf("expression %q is not a division of two metrics", aws.ToString(result[0].Expression))
	}
	cfg := config.Defaults()
	checkMetric(t, "numerator", metrics[ids[1]], "AWS/SQS", "ApproximateNumberOfMessagesVisible", "Sum",
		map[string]string{"QueueName": cfg.InputQueue})
	checkMetric(t, "denominator", metrics[ids[2]], "ECS/ContainerInsights", "RunningTaskCount", "Average",
		map[string]string{"ClusterName": aws.ToString(cluster.ClusterName), "ServiceName": aws.ToString(service.ServiceName)})
	if len(cms.Metrics) != 3 {
		t.Errorf("%d metric queries, want the two metrics and the expression", len(cms.Metrics))
	}
}

func checkMetric(t *testing.T, role string, q types.TargetTrackingMetricDataQuery, ns, name, stat string, dims map[string]string) {
	t.Helper()
	ms := q.MetricStat
	if ms == nil || ms.Metric == nil || aws.ToBool(q.ReturnData) {
		t.Errorf("%s %q: want a metric that is not returned itself", role, aws.ToString(q.Id))
		return
	}
	m := ms.Metric
	got := map[string]string{}
	for _, d := range m.Dimensions {
		got[aws.ToString(d.Name)] = aws.ToString(d.Value)
	}
	if aws.ToString(m.Namespace) != ns || aws.ToString(m.MetricName) != name || aws.ToString(ms.Stat) != stat || !maps.Equal(got, dims) {
		t.Errorf("%s: %s %s %s %v, want %s %s %s %v", role, aws.ToString(m.Namespace), aws.ToString(m.MetricName), aws.ToString(ms.Stat), got, ns, name, stat, dims)
	}
}

// TestScalingFilesSerializeAsTheyAre sends both scaling files through the
// real Application Auto Scaling client (kumo has no Application Auto
// Scaling, so the request is recorded, not sent) and checks the SDK's
// request is the file: the keys are the API's own, as the CLI takes them.
func TestScalingFilesSerializeAsTheyAre(t *testing.T) {
	t.Parallel()
	rec := &deploytest.Recorder{}
	client := applicationautoscaling.NewFromConfig(deploytest.SDKConfig(rec), func(o *applicationautoscaling.Options) {
		o.BaseEndpoint = aws.String("http://127.0.0.1:9") // never dialled: the recorder ends the call
	})
	var target applicationautoscaling.RegisterScalableTargetInput
	targetFile := deploytest.MustDecode(t, "scalable-target.json", &target)
	if _, err := client.RegisterScalableTarget(t.Context(), &target); !errors.Is(err, deploytest.ErrNotSent) {
		t.Fatalf("RegisterScalableTarget: %v (the SDK rejected the input before sending?)", err)
	}
	deploytest.SameJSON(t, "scalable-target.json", targetFile, rec.Body(t, "RegisterScalableTarget"))

	var policy applicationautoscaling.PutScalingPolicyInput
	policyFile := deploytest.MustDecode(t, "autoscaling.json", &policy)
	if _, err := client.PutScalingPolicy(t.Context(), &policy); !errors.Is(err, deploytest.ErrNotSent) {
		t.Fatalf("PutScalingPolicy: %v (the SDK rejected the input before sending?)", err)
	}
	deploytest.SameJSON(t, "autoscaling.json", policyFile, rec.Body(t, "PutScalingPolicy"))
}
