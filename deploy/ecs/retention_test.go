package ecs_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	stypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"
	"github.com/sivchari/kumo"

	"github.com/chatprep/chatprep/deploy/deploytest"
	"github.com/chatprep/chatprep/internal/config"
	"github.com/chatprep/chatprep/internal/forget"
)

// The retention job: retention-task-definition.json runs `worker forget
// --older-than`, retention-schedule.json runs it daily with EventBridge
// Scheduler, as the role of scheduler-trust-policy.json and
// scheduler-policy.json.

// forgetVars are the variables `worker forget` reads (its --help).
var forgetVars = []string{"WEAVIATE_URL", "WEAVIATE_API_KEY", "WEAVIATE_GRPC_ADDR"}

func retentionTaskDefinition(t *testing.T) (*ecs.RegisterTaskDefinitionInput, types.ContainerDefinition) {
	t.Helper()
	var in ecs.RegisterTaskDefinitionInput
	deploytest.MustDecode(t, "retention-task-definition.json", &in)
	if len(in.ContainerDefinitions) != 1 {
		t.Fatalf("%d container definitions, want one", len(in.ContainerDefinitions))
	}
	return &in, in.ContainerDefinitions[0]
}

// TestRetentionTaskDefinition: a small Fargate task that runs `worker
// forget --older-than AGE` (an age the command takes, at least a day) with
// the variables it reads, valued as the worker's, and everything the
// execution role is for (image, user, logs, the API-key secret) as the
// worker's task definition has it, so execution-policy.json covers it. It
// calls no AWS API: no task role.
func TestRetentionTaskDefinition(t *testing.T) {
	t.Parallel()
	in, c := retentionTaskDefinition(t)
	wtd, w := taskDefinition(t)
	if in.NetworkMode != types.NetworkModeAwsvpc || !slices.Equal(in.RequiresCompatibilities, []types.Compatibility{types.CompatibilityFargate}) {
		t.Errorf("networkMode %q, requiresCompatibilities %v: want a Fargate task", in.NetworkMode, in.RequiresCompatibilities)
	}
	cpu, err1 := strconv.Atoi(aws.ToString(in.Cpu))
	mem, err2 := strconv.Atoi(aws.ToString(in.Memory))
	r, ok := fargateMemory[cpu]
	if err1 != nil || err2 != nil || !ok || mem < r[0] || mem > r[1] || (mem-r[0])%r[2] != 0 {
		t.Errorf("cpu %q / memory %q is not a Fargate task size", aws.ToString(in.Cpu), aws.ToString(in.Memory))
	}
	if in.TaskRoleArn != nil {
		t.Errorf("taskRoleArn %q: worker forget calls no AWS API", aws.ToString(in.TaskRoleArn))
	}
	if aws.ToString(in.ExecutionRoleArn) != aws.ToString(wtd.ExecutionRoleArn) {
		t.Errorf("executionRoleArn %q, want the worker's %q (execution-policy.json)", aws.ToString(in.ExecutionRoleArn), aws.ToString(wtd.ExecutionRoleArn))
	}
	if len(c.Command) != 3 || c.Command[0] != "forget" || c.Command[1] != "--older-than" || c.EntryPoint != nil {
		t.Fatalf("command %v, want [forget --older-than AGE]", c.Command)
	}
	if age, err := forget.ParseAge(c.Command[2]); err != nil || age < 24*time.Hour {
		t.Errorf("--older-than %q: %v, %v; want an age of a day or more", c.Command[2], age, err)
	}
	if aws.ToString(c.Image) != aws.ToString(w.Image) || aws.ToString(c.User) != aws.ToString(w.User) ||
		!aws.ToBool(c.ReadonlyRootFilesystem) || !aws.ToBool(c.Essential) {
		t.Errorf("container %s as %s (read-only %v): want the worker's image and user, read-only", aws.ToString(c.Image), aws.ToString(c.User), aws.ToBool(c.ReadonlyRootFilesystem))
	}
	if c.LogConfiguration == nil || c.LogConfiguration.LogDriver != types.LogDriverAwslogs {
		t.Fatal("no awslogs configuration")
	}
	lo, wo := c.LogConfiguration.Options, w.LogConfiguration.Options
	if lo["awslogs-group"] != wo["awslogs-group"] || lo["awslogs-region"] != wo["awslogs-region"] ||
		lo["awslogs-stream-prefix"] == "" || lo["awslogs-stream-prefix"] == wo["awslogs-stream-prefix"] {
		t.Errorf("logs %v: want the worker's group and region (the execution role may write there), a stream prefix of its own", lo)
	}
	if len(c.Secrets) != 1 || aws.ToString(c.Secrets[0].Name) != secretEnv || len(w.Secrets) != 1 ||
		aws.ToString(c.Secrets[0].ValueFrom) != aws.ToString(w.Secrets[0].ValueFrom) {
		t.Errorf("secrets %+v: want %s from the worker's secret", c.Secrets, secretEnv)
	}
	workerEnv := map[string]string{}
	for _, kv := range w.Environment {
		workerEnv[aws.ToString(kv.Name)] = aws.ToString(kv.Value)
	}
	env := map[string]string{secretEnv: "from-the-secret"}
	for _, kv := range c.Environment {
		name, v := aws.ToString(kv.Name), aws.ToString(kv.Value)
		if !slices.Contains(forgetVars, name) || name == secretEnv {
			t.Errorf("%s is in the environment; worker forget does not read it", name)
		}
		if v != workerEnv[name] {
			t.Errorf("%s=%q, the worker has %q", name, v, workerEnv[name])
		}
		env[name] = v
	}
	for _, name := range forgetVars {
		if _, ok := env[name]; !ok {
			t.Errorf("%s is not set", name)
		}
	}
	if _, err := config.Load(func(k string) string { return env[k] }); err != nil {
		t.Errorf("config.Load refuses the environment: %v", err)
	}
}

func retentionSchedule(t *testing.T) (*scheduler.CreateScheduleInput, []byte) {
	t.Helper()
	var in scheduler.CreateScheduleInput
	file := deploytest.MustDecode(t, "retention-schedule.json", &in)
	return &in, file
}

// TestRetentionScheduleRunsTheTask: the schedule runs the retention task
// definition's latest revision once a day in the worker's cluster, on the
// service's network, as the scheduler role; kumo's EventBridge Scheduler
// takes the file through the real SDK, sent as it is (the keys are the
// API's), and gives back that target.
func TestRetentionScheduleRunsTheTask(t *testing.T) {
	t.Parallel()
	in, file := retentionSchedule(t)
	var cl ecs.CreateClusterInput
	deploytest.MustDecode(t, "cluster.json", &cl)
	var svc ecs.CreateServiceInput
	deploytest.MustDecode(t, "service.json", &svc)
	rtd, _ := retentionTaskDefinition(t)
	ph := deploytest.Placeholders()
	prefix := "arn:aws:ecs:" + ph["AWS_REGION"] + ":" + ph["AWS_ACCOUNT_ID"] + ":"

	if !strings.HasPrefix(aws.ToString(in.ScheduleExpression), "cron(") || strings.Count(aws.ToString(in.ScheduleExpression), " ") != 5 ||
		in.State != stypes.ScheduleStateEnabled || in.FlexibleTimeWindow == nil {
		t.Errorf("schedule %q, state %q: want an enabled daily cron expression", aws.ToString(in.ScheduleExpression), in.State)
	}
	tg := in.Target
	if tg == nil || tg.EcsParameters == nil {
		t.Fatal("no ECS target")
	}
	if aws.ToString(tg.Arn) != prefix+"cluster/"+aws.ToString(cl.ClusterName) {
		t.Errorf("target %q, want the cluster of cluster.json", aws.ToString(tg.Arn))
	}
	if aws.ToString(tg.RoleArn) != "arn:aws:iam::"+ph["AWS_ACCOUNT_ID"]+":role/chatprep-retention-scheduler" {
		t.Errorf("role %q, want chatprep-retention-scheduler (DEPLOY.md step 7)", aws.ToString(tg.RoleArn))
	}
	ep := tg.EcsParameters
	if aws.ToString(ep.TaskDefinitionArn) != prefix+"task-definition/"+aws.ToString(rtd.Family) {
		t.Errorf("task definition %q, want the family %s (its latest revision)", aws.ToString(ep.TaskDefinitionArn), aws.ToString(rtd.Family))
	}
	if ep.LaunchType != stypes.LaunchTypeFargate || aws.ToInt32(ep.TaskCount) != 1 || ep.NetworkConfiguration == nil || ep.NetworkConfiguration.AwsvpcConfiguration == nil {
		t.Fatalf("launch %q, %d tasks, network %+v: want one Fargate task", ep.LaunchType, aws.ToInt32(ep.TaskCount), ep.NetworkConfiguration)
	}
	net, want := ep.NetworkConfiguration.AwsvpcConfiguration, svc.NetworkConfiguration.AwsvpcConfiguration
	if !slices.Equal(net.Subnets, want.Subnets) || !slices.Equal(net.SecurityGroups, want.SecurityGroups) || string(net.AssignPublicIp) != string(want.AssignPublicIp) {
		t.Errorf("network %+v, want the service's %+v", net, want)
	}

	srv := kumo.NewServer()
	t.Cleanup(srv.Close)
	rec := &deploytest.Recorder{Next: &http.Client{Timeout: 30 * time.Second}}
	client := scheduler.NewFromConfig(deploytest.SDKConfig(rec), func(o *scheduler.Options) { o.BaseEndpoint = aws.String(srv.URL) })
	if _, err := client.CreateSchedule(t.Context(), in); err != nil {
		t.Fatalf("CreateSchedule: %v", err)
	}
	t.Cleanup(func() {
		_, err := client.DeleteSchedule(context.Background(), &scheduler.DeleteScheduleInput{Name: in.Name})
		noErr(t, "DeleteSchedule", err)
	})
	// REST: the name goes in the path, and the SDK adds a ClientToken.
	var f, sent map[string]any
	if err := json.Unmarshal(file, &f); err != nil {
		t.Fatal(err)
	}
	delete(f, "Name")
	if err := json.Unmarshal(rec.Body(t, aws.ToString(in.Name)), &sent); err != nil {
		t.Fatal(err)
	}
	delete(sent, "ClientToken")
	fb, _ := json.Marshal(f)
	sb, _ := json.Marshal(sent)
	deploytest.SameJSON(t, "retention-schedule.json", fb, sb)

	got, err := client.GetSchedule(t.Context(), &scheduler.GetScheduleInput{Name: in.Name})
	if err != nil {
		t.Fatalf("GetSchedule: %v", err)
	}
	if got.Target == nil || got.Target.EcsParameters == nil || aws.ToString(got.Target.Arn) != aws.ToString(tg.Arn) ||
		aws.ToString(got.Target.EcsParameters.TaskDefinitionArn) != aws.ToString(ep.TaskDefinitionArn) ||
		aws.ToString(got.ScheduleExpression) != aws.ToString(in.ScheduleExpression) {
		t.Errorf("kumo's schedule %+v differs from the file", got)
	}
}

// TestSchedulerPolicyIsWhatTheScheduleNeeds: the scheduler role may run
// exactly the retention task definition (the family and its revisions), in
// the cluster of the schedule only, and pass exactly the roles that task
// definition names, to ECS tasks only.
func TestSchedulerPolicyIsWhatTheScheduleNeeds(t *testing.T) {
	t.Parallel()
	var sch scheduler.CreateScheduleInput
	if err := deploytest.DecodeStrict(readRaw(t, "retention-schedule.json"), &sch); err != nil {
		t.Fatal(err)
	}
	var td ecs.RegisterTaskDefinitionInput
	if err := deploytest.DecodeStrict(readRaw(t, "retention-task-definition.json"), &td); err != nil {
		t.Fatal(err)
	}
	family := aws.ToString(sch.Target.EcsParameters.TaskDefinitionArn)
	inCluster := canonicalCondition(map[string]map[string]stringList{"ArnEquals": {"ecs:cluster": {aws.ToString(sch.Target.Arn)}}})
	toECS := canonicalCondition(map[string]map[string]stringList{"StringEquals": {"iam:PassedToService": {"ecs-tasks.amazonaws.com"}}})
	want := map[grant]bool{
		{action: "ecs:RunTask", resource: family, condition: inCluster}:        true,
		{action: "ecs:RunTask", resource: family + ":*", condition: inCluster}: true,
	}
	for _, role := range []*string{td.ExecutionRoleArn, td.TaskRoleArn} {
		if role != nil {
			want[grant{action: "iam:PassRole", resource: aws.ToString(role), condition: toECS}] = true
		}
	}
	for _, bad := range checkPolicy(readPolicy(t, "scheduler-policy.json"), want) {
		t.Error("scheduler-policy.json: " + bad)
	}
}

// TestSchedulerTrustPolicy: the scheduler role may be assumed by
// EventBridge Scheduler of the account only.
func TestSchedulerTrustPolicy(t *testing.T) {
	t.Parallel()
	checkTrust(t, "scheduler-trust-policy.json", "scheduler.amazonaws.com")
}
