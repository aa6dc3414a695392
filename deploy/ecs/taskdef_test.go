package ecs_test

import (
	"context"
	"maps"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/sivchari/kumo"

	"github.com/chatprep/chatprep/deploy/deploytest"
	"github.com/chatprep/chatprep/internal/app"
	"github.com/chatprep/chatprep/internal/config"
)

const (
	// fargateMaxStopTimeout is the largest stopTimeout Fargate accepts.
	fargateMaxStopTimeout = 120 * time.Second
	// exitMargin is what stopTimeout leaves after the worker's worst-case
	// shutdown, for the process to exit and ECS to see it.
	exitMargin = time.Second
	// secretEnv is the one variable that must come from a secret.
	secretEnv = "WEAVIATE_API_KEY"
)

// pointsAtWeaviate are the variables whose value in ECS is the deployment's
// Weaviate rather than the contract's local default.
var pointsAtWeaviate = map[string]string{
	"WEAVIATE_URL":       "http://${WEAVIATE_HOST}:8080",
	"WEAVIATE_GRPC_ADDR": "${WEAVIATE_HOST}:50051",
}

func taskDefinition(t *testing.T) (*ecs.RegisterTaskDefinitionInput, types.ContainerDefinition) {
	t.Helper()
	var in ecs.RegisterTaskDefinitionInput
	deploytest.MustDecode(t, "task-definition.json", &in)
	if len(in.ContainerDefinitions) != 1 {
		t.Fatalf("%d container definitions, want the worker alone", len(in.ContainerDefinitions))
	}
	return &in, in.ContainerDefinitions[0]
}

// fargateMemory lists, per Fargate CPU size, the memory sizes (MiB) it can
// have: from, to, step.
var fargateMemory = map[int][3]int{
	256:   {512, 2048, 512},
	512:   {1024, 4096, 1024},
	1024:  {2048, 8192, 1024},
	2048:  {4096, 16384, 1024},
	4096:  {8192, 30720, 1024},
	8192:  {16384, 61440, 4096},
	16384: {32768, 122880, 8192},
}

// TestTaskDefinitionIsAFargateWorker decodes task-definition.json strictly
// into the SDK's RegisterTaskDefinitionInput and checks the task-level
// settings: Fargate, awsvpc, a CPU/memory pair Fargate offers, one essential
// container running `worker run` as the image's non-root user on a read-only
// root file system.
func TestTaskDefinitionIsAFargateWorker(t *testing.T) {
	t.Parallel()
	in, c := taskDefinition(t)
	if aws.ToString(in.Family) != "chatprep-worker" {
		t.Errorf("family %q", aws.ToString(in.Family))
	}
	if in.NetworkMode != types.NetworkModeAwsvpc {
		t.Errorf("networkMode %q, Fargate needs awsvpc", in.NetworkMode)
	}
	if !slices.Equal(in.RequiresCompatibilities, []types.Compatibility{types.CompatibilityFargate}) {
		t.Errorf("requiresCompatibilities %v", in.RequiresCompatibilities)
	}
	cpu, err1 := strconv.Atoi(aws.ToString(in.Cpu))
	mem, err2 := strconv.Atoi(aws.ToString(in.Memory))
	r, ok := fargateMemory[cpu]
	if err1 != nil || err2 != nil || !ok || mem < r[0] || mem > r[1] || (mem-r[0])%r[2] != 0 {
		t.Errorf("cpu %q / memory %q is not a Fargate task size", aws.ToString(in.Cpu), aws.ToString(in.Memory))
	}
	task, exec := aws.ToString(in.TaskRoleArn), aws.ToString(in.ExecutionRoleArn)
	if !strings.HasPrefix(task, "arn:aws:iam::") || !strings.HasPrefix(exec, "arn:aws:iam::") || task == exec {
		t.Errorf("taskRoleArn %q, executionRoleArn %q: want two distinct roles", task, exec)
	}

	if aws.ToString(c.Name) != "worker" || !aws.ToBool(c.Essential) {
		t.Errorf("container %q essential=%v", aws.ToString(c.Name), aws.ToBool(c.Essential))
	}
	if !slices.Equal(c.Command, []string{"run"}) || c.EntryPoint != nil {
		t.Errorf("command %v, entryPoint %v: want the image's /worker with [run]", c.Command, c.EntryPoint)
	}
	if !aws.ToBool(c.ReadonlyRootFilesystem) {
		t.Error("root file system is not read-only")
	}
	df := dockerfile(t)
	if aws.ToString(c.User) != df.user {
		t.Errorf("user %q, the Dockerfile's USER is %q", aws.ToString(c.User), df.user)
	}
	if uid, _, _ := strings.Cut(aws.ToString(c.User), ":"); uid == "" || uid == "0" || uid == "root" {
		t.Errorf("user %q is root", aws.ToString(c.User))
	}
	if img := aws.ToString(c.Image); !strings.HasSuffix(img, "/chatprep-worker:"+deploytest.Placeholders()["IMAGE_TAG"]) {
		t.Errorf("image %q, want the chatprep-worker repository at ${IMAGE_TAG}", img)
	}
}

// TestTaskDefinitionFollowsTheContract checks the container against
// CONTRACT.md and the Dockerfile: every variable of config.Env() in the
// environment with its default (WEAVIATE_API_KEY only as a secret), an
// environment config.Load accepts, stopTimeout above SHUTDOWN_TIMEOUT, the
// health check `worker healthcheck` timed as in the Dockerfile, and awslogs.
func TestTaskDefinitionFollowsTheContract(t *testing.T) {
	t.Parallel()
	_, c := taskDefinition(t)
	raw := map[string]string{} // values before the placeholders are filled
	{
		var in ecs.RegisterTaskDefinitionInput
		if err := deploytest.DecodeStrict(readRaw(t, "task-definition.json"), &in); err != nil {
			t.Fatal(err)
		}
		for _, kv := range in.ContainerDefinitions[0].Environment {
			raw[aws.ToString(kv.Name)] = aws.ToString(kv.Value)
		}
	}

	env := map[string]string{}
	for _, kv := range c.Environment {
		name := aws.ToString(kv.Name)
		if _, dup := env[name]; dup {
			t.Errorf("%s is in the environment twice", name)
		}
		if kv.Value == nil {
			t.Errorf("%s has no value", name)
		}
		env[name] = aws.ToString(kv.Value)
	}
	var want []string
	for _, v := range config.Env() {
		name, def := v[0], v[1]
		if name == secretEnv {
			if _, ok := env[name]; ok {
				t.Errorf("%s is in the plain environment; it must come from secrets", name)
			}
			continue
		}
		want = append(want, name)
		got, ok := env[name]
		switch {
		case !ok:
		case pointsAtWeaviate[name] != "":
			if raw[name] != pointsAtWeaviate[name] {
				t.Errorf("%s = %q, want %q", name, raw[name], pointsAtWeaviate[name])
			}
		case got != def:
			t.Errorf("%s = %q, contract default %q", name, got, def)
		}
	}
	if raw["AWS_REGION"] != "${AWS_REGION}" {
		t.Errorf("AWS_REGION = %q, want ${AWS_REGION} (the region the ARNs name)", raw["AWS_REGION"])
	}
	got := slices.Sorted(maps.Keys(env))
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("environment names:\n got %v\nwant %v (config.Env() less %s)", got, want, secretEnv)
	}

	if len(c.Secrets) != 1 || aws.ToString(c.Secrets[0].Name) != secretEnv ||
		aws.ToString(c.Secrets[0].ValueFrom) != deploytest.Placeholders()["WEAVIATE_API_KEY_SECRET_ARN"] {
		t.Errorf("secrets %+v, want only %s from ${WEAVIATE_API_KEY_SECRET_ARN}", c.Secrets, secretEnv)
	}

	cfg, err := config.Load(func(name string) string {
		if name == secretEnv {
			return "sample-key"
		}
		return env[name]
	})
	if err != nil {
		t.Fatalf("the worker would not start with this environment: %v", err)
	}

	// The worst case from SIGTERM to exit is the whole shutdown budget the
	// worker derives from SHUTDOWN_TIMEOUT; ECS must not SIGKILL before it.
	stop := time.Duration(aws.ToInt32(c.StopTimeout)) * time.Second
	worst := app.ShutdownBudget(cfg.ShutdownTimeout).Total()
	if stop < worst+exitMargin || stop > fargateMaxStopTimeout {
		t.Errorf("stopTimeout %v: want at least the worst-case shutdown for SHUTDOWN_TIMEOUT %v (%v) + %v, at most Fargate's %v",
			stop, cfg.ShutdownTimeout, worst, exitMargin, fargateMaxStopTimeout)
	}

	hc := c.HealthCheck
	if hc == nil {
		t.Fatal("no health check")
	}
	if !slices.Equal(hc.Command, []string{"CMD", "/worker", "healthcheck"}) {
		t.Errorf("health check %v, want [CMD /worker healthcheck]", hc.Command)
	}
	df := dockerfile(t)
	for _, p := range []struct {
		name string
		got  *int32
		want time.Duration
	}{
		{"interval", hc.Interval, df.interval},
		{"timeout", hc.Timeout, df.timeout},
		{"startPeriod", hc.StartPeriod, df.startPeriod},
	} {
		if time.Duration(aws.ToInt32(p.got))*time.Second != p.want {
			t.Errorf("healthCheck.%s %ds, the Dockerfile's HEALTHCHECK has %v", p.name, aws.ToInt32(p.got), p.want)
		}
	}
	if int(aws.ToInt32(hc.Retries)) != df.retries {
		t.Errorf("healthCheck.retries %d, the Dockerfile's HEALTHCHECK has %d", aws.ToInt32(hc.Retries), df.retries)
	}

	lc := c.LogConfiguration
	if lc == nil || lc.LogDriver != types.LogDriverAwslogs {
		t.Fatalf("log configuration %+v, want awslogs", lc)
	}
	for k, want := range map[string]string{
		"awslogs-group":  logGroup,
		"awslogs-region": deploytest.Placeholders()["AWS_REGION"],
		"mode":           "non-blocking", // a slow CloudWatch Logs never stalls the worker's stdout
	} {
		if lc.Options[k] != want {
			t.Errorf("awslogs option %s = %q, want %q", k, lc.Options[k], want)
		}
	}
	if lc.Options["awslogs-stream-prefix"] == "" {
		t.Error("awslogs-stream-prefix unset: Fargate requires it")
	}
	if _, ok := lc.Options["awslogs-create-group"]; ok {
		t.Error("awslogs-create-group set: the log group is created once, so the execution role needs no logs:CreateLogGroup")
	}
}

// logGroup is the log group of the worker's logs.
const logGroup = "/ecs/chatprep-worker"

// dockerfileFacts are the parts of the Dockerfile's final stage the task
// definition must agree with.
type dockerfileFacts struct {
	user                           string
	interval, timeout, startPeriod time.Duration
	retries                        int
}

func dockerfile(t *testing.T) dockerfileFacts {
	t.Helper()
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var f dockerfileFacts
	var health string
	for _, line := range strings.Split(string(b), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		switch strings.ToUpper(fields[0]) {
		case "FROM":
			f.user, health = "", ""
		case "USER":
			f.user = fields[1]
		case "HEALTHCHECK":
			health = line
		}
	}
	if health == "" {
		t.Fatal("the Dockerfile's final stage has no HEALTHCHECK")
	}
	f.retries = 3 // Docker's defaults
	f.interval, f.timeout = 30*time.Second, 30*time.Second
	for _, field := range strings.Fields(health) {
		k, v, ok := strings.Cut(strings.TrimPrefix(field, "--"), "=")
		if !ok || !strings.HasPrefix(field, "--") {
			continue
		}
		var err error
		switch k {
		case "interval":
			f.interval, err = time.ParseDuration(v)
		case "timeout":
			f.timeout, err = time.ParseDuration(v)
		case "start-period":
			f.startPeriod, err = time.ParseDuration(v)
		case "retries":
			f.retries, err = strconv.Atoi(v)
		}
		if err != nil {
			t.Fatalf("Dockerfile HEALTHCHECK --%s=%s: %v", k, v, err)
		}
	}
	return f
}

// TestTaskDefinitionRegistersWithECS sends the files through the real SDK to
// kumo's ECS, as `aws ecs register-task-definition`, `create-cluster` and
// `create-service --cli-input-json` would: the SDK must send each file as it
// is (so the CLI's keys are the API's), kumo must register the task
// definition as given, and the service must run that revision.
func TestTaskDefinitionRegistersWithECS(t *testing.T) {
	t.Parallel()
	srv := kumo.NewServer()
	t.Cleanup(srv.Close) // after the cleanups below, which delete what the test made
	rec := &deploytest.Recorder{Next: &http.Client{Timeout: 30 * time.Second}}
	client := ecs.NewFromConfig(deploytest.SDKConfig(rec), func(o *ecs.Options) { o.BaseEndpoint = aws.String(srv.URL) })
	ctx := t.Context()

	var td ecs.RegisterTaskDefinitionInput
	tdFile := deploytest.MustDecode(t, "task-definition.json", &td)
	reg, err := client.RegisterTaskDefinition(ctx, &td)
	if err != nil {
		t.Fatalf("RegisterTaskDefinition: %v", err)
	}
	deploytest.SameJSON(t, "task-definition.json", tdFile, rec.Body(t, "RegisterTaskDefinition"))
	got := reg.TaskDefinition
	if got == nil || len(got.ContainerDefinitions) != 1 {
		t.Fatalf("registered %+v", got)
	}
	arn := aws.ToString(got.TaskDefinitionArn)
	t.Cleanup(func() {
		_, err := client.DeregisterTaskDefinition(context.Background(), &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String(arn)})
		noErr(t, "DeregisterTaskDefinition", err)
	})
	if aws.ToString(got.Family) != aws.ToString(td.Family) || got.Revision < 1 || got.Status != types.TaskDefinitionStatusActive ||
		!strings.HasSuffix(arn, ":task-definition/"+aws.ToString(td.Family)+":"+strconv.Itoa(int(got.Revision))) {
		t.Errorf("registered %s revision %d (%s), status %s", aws.ToString(got.Family), got.Revision, arn, got.Status)
	}
	if aws.ToString(got.Cpu) != aws.ToString(td.Cpu) || aws.ToString(got.Memory) != aws.ToString(td.Memory) ||
		got.NetworkMode != td.NetworkMode || !slices.Equal(got.RequiresCompatibilities, td.RequiresCompatibilities) ||
		aws.ToString(got.TaskRoleArn) != aws.ToString(td.TaskRoleArn) || aws.ToString(got.ExecutionRoleArn) != aws.ToString(td.ExecutionRoleArn) {
		t.Errorf("registered task settings differ from the file: %+v", got)
	}
	gc, wc := got.ContainerDefinitions[0], td.ContainerDefinitions[0]
	if aws.ToString(gc.Name) != aws.ToString(wc.Name) || aws.ToString(gc.Image) != aws.ToString(wc.Image) ||
		!aws.ToBool(gc.Essential) || !slices.Equal(gc.Command, wc.Command) {
		t.Errorf("registered container %s %s essential=%v %v", aws.ToString(gc.Name), aws.ToString(gc.Image), aws.ToBool(gc.Essential), gc.Command)
	}
	if !slices.EqualFunc(gc.Environment, wc.Environment, func(a, b types.KeyValuePair) bool {
		return aws.ToString(a.Name) == aws.ToString(b.Name) && aws.ToString(a.Value) == aws.ToString(b.Value)
	}) {
		t.Errorf("registered environment differs from the file:\n got %s\nwant %s", envString(gc.Environment), envString(wc.Environment))
	}

	var cl ecs.CreateClusterInput
	clFile := deploytest.MustDecode(t, "cluster.json", &cl)
	cout, err := client.CreateCluster(ctx, &cl)
	if err != nil {
		t.Fatalf("CreateCluster: %v", err)
	}
	deploytest.SameJSON(t, "cluster.json", clFile, rec.Body(t, "CreateCluster"))
	t.Cleanup(func() {
		_, _ = client.DeleteCluster(context.Background(), &ecs.DeleteClusterInput{Cluster: cl.ClusterName})
	})

	var svc ecs.CreateServiceInput
	svcFile := deploytest.MustDecode(t, "service.json", &svc)
	sout, err := client.CreateService(ctx, &svc)
	if err != nil {
		t.Fatalf("CreateService: %v", err)
	}
	deploytest.SameJSON(t, "service.json", svcFile, rec.Body(t, "CreateService"))
	t.Cleanup(func() {
		_, err := client.DeleteService(context.Background(), &ecs.DeleteServiceInput{Cluster: svc.Cluster, Service: svc.ServiceName, Force: aws.Bool(true)})
		noErr(t, "DeleteService", err)
	})
	s := sout.Service
	if s == nil || aws.ToString(s.TaskDefinition) != arn || s.DesiredCount != aws.ToInt32(svc.DesiredCount) ||
		s.LaunchType != types.LaunchTypeFargate || aws.ToString(s.ClusterArn) != aws.ToString(cout.Cluster.ClusterArn) {
		t.Errorf("service %+v, want %d Fargate tasks of %s in %s", s, aws.ToInt32(svc.DesiredCount), arn, aws.ToString(cout.Cluster.ClusterArn))
	}
}

// noErr reports a failed cleanup call: kumo's state is process-wide, so
// what a run leaves behind breaks the next run in the same process.
func noErr(t *testing.T, op string, err error) {
	t.Helper()
	if err != nil {
		t.Errorf("cleanup: %s: %v", op, err)
	}
}

func envString(kvs []types.KeyValuePair) string {
	var b strings.Builder
	for _, kv := range kvs {
		b.WriteString(aws.ToString(kv.Name) + "=" + aws.ToString(kv.Value) + " ")
	}
	return b.String()
}

// TestServiceAndClusterSettings checks what the deploy and the scaling
// policy rely on: Container Insights (RunningTaskCount), rolling deploys that
// start new tasks before stopping old ones, the circuit breaker, private
// subnets, and the task definition by family (its latest revision).
func TestServiceAndClusterSettings(t *testing.T) {
	t.Parallel()
	var cl ecs.CreateClusterInput
	deploytest.MustDecode(t, "cluster.json", &cl)
	insights := ""
	for _, s := range cl.Settings {
		if s.Name == types.ClusterSettingNameContainerInsights {
			insights = aws.ToString(s.Value)
		}
	}
	if insights != "enabled" && insights != "enhanced" {
		t.Errorf("containerInsights %q: the scaling policy reads ECS/ContainerInsights RunningTaskCount", insights)
	}

	var svc ecs.CreateServiceInput
	deploytest.MustDecode(t, "service.json", &svc)
	var td ecs.RegisterTaskDefinitionInput
	deploytest.MustDecode(t, "task-definition.json", &td)
	if aws.ToString(svc.Cluster) != aws.ToString(cl.ClusterName) {
		t.Errorf("service cluster %q, cluster.json creates %q", aws.ToString(svc.Cluster), aws.ToString(cl.ClusterName))
	}
	if aws.ToString(svc.TaskDefinition) != aws.ToString(td.Family) {
		t.Errorf("service task definition %q, want the family %q", aws.ToString(svc.TaskDefinition), aws.ToString(td.Family))
	}
	if svc.LaunchType != types.LaunchTypeFargate {
		t.Errorf("launchType %q", svc.LaunchType)
	}
	dc := svc.DeploymentConfiguration
	if dc == nil || aws.ToInt32(dc.MinimumHealthyPercent) < 100 || aws.ToInt32(dc.MaximumPercent) <= 100 {
		t.Errorf("deploymentConfiguration %+v: want new tasks up (maximumPercent > 100) before old ones stop (minimumHealthyPercent 100)", dc)
	} else if cb := dc.DeploymentCircuitBreaker; cb == nil || !cb.Enable || !cb.Rollback {
		t.Errorf("deployment circuit breaker %+v, want enabled with rollback", cb)
	}
	nc := svc.NetworkConfiguration
	if nc == nil || nc.AwsvpcConfiguration == nil || len(nc.AwsvpcConfiguration.Subnets) < 2 ||
		nc.AwsvpcConfiguration.AssignPublicIp != types.AssignPublicIpDisabled {
		t.Errorf("networkConfiguration %+v: want two or more private subnets", nc)
	}
}
