package ecs_test

import (
	"cmp"
	"encoding/json"
	"fmt"
	"path"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/chatprep/chatprep/deploy/deploytest"
	"github.com/chatprep/chatprep/internal/config"
	"github.com/chatprep/chatprep/internal/consumer"
	"github.com/chatprep/chatprep/internal/dlq"
	"github.com/chatprep/chatprep/internal/enqueue"
	"github.com/chatprep/chatprep/internal/metrics"
	"github.com/chatprep/chatprep/internal/peek"
	"github.com/chatprep/chatprep/internal/publish"
	"github.com/chatprep/chatprep/internal/queues"
	"github.com/chatprep/chatprep/internal/sqsbatch"
)

// runAPIs are the SDK interfaces `worker run` calls AWS through. Each
// method of each is a call the task role must allow; a new interface the
// running worker uses is one more line here.
var runAPIs = []reflect.Type{
	reflect.TypeFor[consumer.SQSAPI](),
	reflect.TypeFor[queues.Resolver](),
	reflect.TypeFor[publish.SQSAPI](),
	reflect.TypeFor[dlq.SQSAPI](),
	reflect.TypeFor[metrics.CloudWatchAPI](),
}

// setupAPIs are the SDK interfaces `worker setup` calls SQS through.
var setupAPIs = []reflect.Type{
	reflect.TypeFor[queues.API](),
}

// operatorAPIs are the SDK interfaces the operator's commands call SQS
// through: enqueue, results, dlq list and dlq redrive.
var operatorAPIs = []reflect.Type{
	reflect.TypeFor[queues.Resolver](),
	reflect.TypeFor[enqueue.API](),      // enqueue, to the input queue
	reflect.TypeFor[sqsbatch.SendAPI](), // redrive's sqsbatch.Sender, to the input queue
	reflect.TypeFor[peek.API](),         // results, dlq list and redrive, on their queues
}

// target is what an IAM grant is on.
type target int

const (
	inputQueue target = iota
	dlqQueue
	responseQueue
	metricsNamespace // Resource "*" with the cloudwatch:namespace condition
)

var allQueues = []target{inputQueue, dlqQueue, responseQueue}

// permission is the policy decision for one SDK method: the IAM action that
// authorizes it and what the worker calls it on.
type permission struct {
	action string
	on     []target
}

// runPermissions maps each method of runAPIs ("package.Interface.Method") to
// its permission. SQS's batch calls have no actions of their own: SendMessage,
// DeleteMessage and ChangeMessageVisibility authorize them.
var runPermissions = map[string]permission{
	"consumer.SQSAPI.ReceiveMessage":               {"sqs:ReceiveMessage", []target{inputQueue}},
	"consumer.SQSAPI.DeleteMessageBatch":           {"sqs:DeleteMessage", []target{inputQueue}},
	"consumer.SQSAPI.ChangeMessageVisibilityBatch": {"sqs:ChangeMessageVisibility", []target{inputQueue}},
	"dlq.SQSAPI.SendMessageBatch":                  {"sqs:SendMessage", []target{dlqQueue}}, // poison messages
	"queues.Resolver.GetQueueUrl":                  {"sqs:GetQueueUrl", allQueues},
	"queues.Resolver.GetQueueAttributes":           {"sqs:GetQueueAttributes", allQueues},
	"publish.SQSAPI.SendMessageBatch":              {"sqs:SendMessage", []target{responseQueue}},
	"metrics.CloudWatchAPI.PutMetricData":          {"cloudwatch:PutMetricData", []target{metricsNamespace}},
}

// setupPermissions does the same for setupAPIs.
var setupPermissions = map[string]permission{
	"queues.API.GetQueueUrl":        {"sqs:GetQueueUrl", allQueues},
	"queues.API.GetQueueAttributes": {"sqs:GetQueueAttributes", allQueues},
	"queues.API.CreateQueue":        {"sqs:CreateQueue", allQueues},
	"queues.API.SetQueueAttributes": {"sqs:SetQueueAttributes", allQueues},
}

// operatorPermissions does the same for operatorAPIs. `worker results`
// (--delete) and `worker dlq redrive` delete, and every reader gives
// messages back with a visibility change.
var operatorPermissions = map[string]permission{
	"queues.Resolver.GetQueueUrl":           {"sqs:GetQueueUrl", allQueues},
	"queues.Resolver.GetQueueAttributes":    {"sqs:GetQueueAttributes", allQueues},
	"enqueue.API.SendMessageBatch":          {"sqs:SendMessage", []target{inputQueue}},
	"sqsbatch.SendAPI.SendMessageBatch":     {"sqs:SendMessage", []target{inputQueue}},
	"peek.API.ReceiveMessage":               {"sqs:ReceiveMessage", []target{dlqQueue, responseQueue}},
	"peek.API.DeleteMessageBatch":           {"sqs:DeleteMessage", []target{dlqQueue, responseQueue}},
	"peek.API.ChangeMessageVisibilityBatch": {"sqs:ChangeMessageVisibility", []target{dlqQueue, responseQueue}},
}

// grant is one (action, resource, condition) triple a policy allows.
type grant struct {
	action, resource, condition string
}

func (g grant) String() string {
	s := g.action + " on " + g.resource
	if g.condition != "" {
		s += " if " + g.condition
	}
	return s
}

// queueARN is a default queue's ARN as the policies write it.
func queueARN(name string) string {
	return "arn:aws:sqs:${AWS_REGION}:${AWS_ACCOUNT_ID}:" + name
}

// namespaceCondition is the condition that limits PutMetricData to ns.
func namespaceCondition(ns string) string {
	return canonicalCondition(map[string]map[string]stringList{"StringEquals": {"cloudwatch:namespace": {ns}}})
}

// derive returns the grants the methods of apis need, by perms; every
// method must have a permission, and every permission a method.
func derive(t *testing.T, apis []reflect.Type, perms map[string]permission) map[grant]bool {
	t.Helper()
	cfg := config.Defaults()
	resources := map[target]string{
		inputQueue:       queueARN(cfg.InputQueue),
		dlqQueue:         queueARN(cfg.DLQQueue),
		responseQueue:    queueARN(cfg.ResponseQueue),
		metricsNamespace: "*",
	}
	want := map[grant]bool{}
	seen := map[string]bool{}
	for _, api := range apis {
		if api.NumMethod() == 0 {
			t.Errorf("%s has no methods", api)
		}
		for i := range api.NumMethod() {
			m := api.Method(i)
			key := api.String() + "." + m.Name
			seen[key] = true
			p, ok := perms[key]
			if !ok {
				t.Errorf("%s: no IAM permission decided for this SDK call; add it to the table and to the policy", key)
				continue
			}
			// The SDK package of the call's input names the service.
			if m.Type.NumIn() < 2 || m.Type.In(1).Kind() != reflect.Pointer {
				t.Errorf("%s is not an SDK call (ctx, *Input, ...)", key)
				continue
			}
			service := path.Base(m.Type.In(1).Elem().PkgPath())
			if prefix, _, _ := strings.Cut(p.action, ":"); prefix != service {
				t.Errorf("%s is a %s call, but its action is %s", key, service, p.action)
			}
			for _, on := range p.on {
				g := grant{action: p.action, resource: resources[on]}
				if on == metricsNamespace {
					g.condition = namespaceCondition(cfg.MetricsNamespace)
				}
				want[g] = true
			}
		}
	}
	for key := range perms {
		if !seen[key] {
			t.Errorf("%s is in the permission table, but no interface has that method", key)
		}
	}
	return want
}

// stringList is an IAM value that may be written as a string or a list.
type stringList []string

func (s *stringList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = stringList{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("want a string or a list of strings: %w", err)
	}
	*s = many
	return nil
}

// policy is an IAM policy document. Decoded strictly, so NotAction,
// NotResource and anything else unexpected fail to decode.
type policy struct {
	Version   string
	Statement []statement
}

type statement struct {
	Sid       string
	Effect    string
	Principal map[string]stringList
	Action    stringList
	Resource  stringList
	Condition map[string]map[string]stringList
}

func readPolicy(t *testing.T, name string) policy {
	t.Helper()
	var p policy
	if err := deploytest.DecodeStrict(readRaw(t, name), &p); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return p
}

func canonicalCondition(c map[string]map[string]stringList) string {
	if len(c) == 0 {
		return ""
	}
	b, _ := json.Marshal(c) // map keys come out sorted
	return string(b)
}

// checkPolicy returns what is wrong with an identity policy that must allow
// exactly want: statements other than Allow, wildcard actions, principals,
// and every grant too many or missing.
func checkPolicy(p policy, want map[grant]bool) []string {
	var bad []string
	if p.Version != "2012-10-17" {
		bad = append(bad, fmt.Sprintf("Version %q, want 2012-10-17", p.Version))
	}
	got := map[grant]bool{}
	for i, s := range p.Statement {
		name := cmp.Or(s.Sid, fmt.Sprint("statement ", i))
		if s.Effect != "Allow" {
			bad = append(bad, fmt.Sprintf("%s: Effect %q, want Allow", name, s.Effect))
		}
		if s.Principal != nil {
			bad = append(bad, name+": an identity policy has no Principal")
		}
		if len(s.Action) == 0 || len(s.Resource) == 0 {
			bad = append(bad, name+": no Action or no Resource")
		}
		for _, a := range s.Action {
			if strings.ContainsAny(a, "*?") {
				bad = append(bad, fmt.Sprintf("%s: wildcard action %q", name, a))
			}
			for _, r := range s.Resource {
				got[grant{action: a, resource: r, condition: canonicalCondition(s.Condition)}] = true
			}
		}
	}
	for g := range got {
		if !want[g] {
			bad = append(bad, "allows more than is needed: "+g.String())
		}
	}
	for g := range want {
		if !got[g] {
			bad = append(bad, "does not allow what is needed: "+g.String())
		}
	}
	slices.Sort(bad)
	return bad
}

// TestTaskPolicyIsWhatTheWorkerCalls derives the task role's grants from the
// SDK interfaces `worker run` uses and checks task-policy.json allows exactly
// those: each SQS action on its queue only, PutMetricData only in the
// contract's namespace, no wildcard action, nothing more, nothing missing.
func TestTaskPolicyIsWhatTheWorkerCalls(t *testing.T) {
	t.Parallel()
	want := derive(t, runAPIs, runPermissions)
	for _, bad := range checkPolicy(readPolicy(t, "task-policy.json"), want) {
		t.Error("task-policy.json: " + bad)
	}
}

// TestSetupPolicyIsWhatSetupCalls does the same for `worker setup`'s
// policy, derived from queues.API, and checks the task role has none of
// setup's own calls.
func TestSetupPolicyIsWhatSetupCalls(t *testing.T) {
	t.Parallel()
	want := derive(t, setupAPIs, setupPermissions)
	for _, bad := range checkPolicy(readPolicy(t, "setup-policy.json"), want) {
		t.Error("setup-policy.json: " + bad)
	}
	task := derive(t, runAPIs, runPermissions)
	for g := range want {
		if g.action == "sqs:CreateQueue" || g.action == "sqs:SetQueueAttributes" {
			if task[g] {
				t.Errorf("the task role would allow %s, which only setup needs", g)
			}
		}
	}
}

// TestOperatorPolicyIsWhatTheToolsCall does the same for the operator's
// commands (operator-policy.json), derived from the interfaces they call
// through: they never read the input queue, nor write to the response or
// dead-letter queue.
func TestOperatorPolicyIsWhatTheToolsCall(t *testing.T) {
	t.Parallel()
	want := derive(t, operatorAPIs, operatorPermissions)
	for _, bad := range checkPolicy(readPolicy(t, "operator-policy.json"), want) {
		t.Error("operator-policy.json: " + bad)
	}
}

// TestPolicyCheckCatchesTooMuch shows the check above fails on the mistakes
// it is there for, each made to a copy of task-policy.json.
func TestPolicyCheckCatchesTooMuch(t *testing.T) {
	t.Parallel()
	want := derive(t, runAPIs, runPermissions)
	for _, tc := range []struct {
		name   string
		change func(p *policy)
	}{
		{"sqs:*", func(p *policy) { p.Statement[0].Action = append(p.Statement[0].Action, "sqs:*") }},
		{"CreateQueue on the input queue", func(p *policy) { p.Statement[0].Action = append(p.Statement[0].Action, "sqs:CreateQueue") }},
		{"any queue", func(p *policy) { p.Statement[0].Resource = stringList{"arn:aws:sqs:*:*:*"} }},
		{"another queue", func(p *policy) { p.Statement[1].Resource = append(p.Statement[1].Resource, queueARN("other.fifo")) }},
		{"SendMessage on the input queue", func(p *policy) { p.Statement[0].Action = append(p.Statement[0].Action, "sqs:SendMessage") }},
		{"missing ChangeMessageVisibility", func(p *policy) { p.Statement[0].Action = p.Statement[0].Action[:2] }},
		{"PutMetricData in any namespace", func(p *policy) { p.Statement[3].Condition = nil }},
		{"PutMetricData in another namespace", func(p *policy) {
			p.Statement[3].Condition = map[string]map[string]stringList{"StringEquals": {"cloudwatch:namespace": {"Other"}}}
		}},
		{"a Deny", func(p *policy) { p.Statement[2].Effect = "Deny" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := readPolicy(t, "task-policy.json")
			if len(p.Statement) != 4 {
				t.Fatalf("task-policy.json has %d statements; adjust this test's changes", len(p.Statement))
			}
			tc.change(&p)
			if bad := checkPolicy(p, want); len(bad) == 0 {
				t.Error("the check finds nothing wrong")
			}
		})
	}
}

// TestExecutionPolicyMatchesTheTaskDefinition checks the execution role
// allows exactly what ECS does for the task definition before the worker
// starts: log in to ECR and pull the image's repository, write to the log
// group, read the secrets.
func TestExecutionPolicyMatchesTheTaskDefinition(t *testing.T) {
	t.Parallel()
	var td ecs.RegisterTaskDefinitionInput
	if err := deploytest.DecodeStrict(readRaw(t, "task-definition.json"), &td); err != nil {
		t.Fatal(err)
	}
	c := td.ContainerDefinitions[0]
	// ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPOSITORY:TAG
	host, repoTag, ok := strings.Cut(aws.ToString(c.Image), "/")
	repo, _, _ := strings.Cut(repoTag, ":")
	account, rest, ok2 := strings.Cut(host, ".dkr.ecr.")
	region := strings.TrimSuffix(rest, ".amazonaws.com")
	if !ok || !ok2 || region == rest {
		t.Fatalf("image %q is not in ECR", aws.ToString(c.Image))
	}
	want := map[grant]bool{{action: "ecr:GetAuthorizationToken", resource: "*"}: true}
	repoARN := fmt.Sprintf("arn:aws:ecr:%s:%s:repository/%s", region, account, repo)
	for _, a := range []string{"ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"} {
		want[grant{action: a, resource: repoARN}] = true
	}
	if c.LogConfiguration == nil {
		t.Fatal("no log configuration")
	}
	logARN := fmt.Sprintf("arn:aws:logs:%s:%s:log-group:%s:*", c.LogConfiguration.Options["awslogs-region"], account, c.LogConfiguration.Options["awslogs-group"])
	for _, a := range []string{"logs:CreateLogStream", "logs:PutLogEvents"} {
		want[grant{action: a, resource: logARN}] = true
	}
	for _, s := range c.Secrets {
		want[grant{action: "secretsmanager:GetSecretValue", resource: aws.ToString(s.ValueFrom)}] = true
	}
	for _, bad := range checkPolicy(readPolicy(t, "execution-policy.json"), want) {
		t.Error("execution-policy.json: " + bad)
	}
}

// TestTrustPolicy checks both roles may be assumed by ECS tasks of the
// account only.
func TestTrustPolicy(t *testing.T) {
	t.Parallel()
	checkTrust(t, "trust-policy.json", "ecs-tasks.amazonaws.com")
}

// checkTrust checks that the trust policy in file lets service, and no
// one else, assume the role, for the account only.
func checkTrust(t *testing.T, file, service string) {
	t.Helper()
	p := readPolicy(t, file)
	if len(p.Statement) != 1 {
		t.Fatalf("%s: %d statements, want 1", file, len(p.Statement))
	}
	s := p.Statement[0]
	if s.Effect != "Allow" || !slices.Equal(s.Action, stringList{"sts:AssumeRole"}) || len(s.Resource) != 0 ||
		len(s.Principal) != 1 || !slices.Equal(s.Principal["Service"], stringList{service}) {
		t.Errorf("%s: trust statement %+v, want %s may sts:AssumeRole", file, s, service)
	}
	if got := canonicalCondition(s.Condition); got != `{"StringEquals":{"aws:SourceAccount":["${AWS_ACCOUNT_ID}"]}}` {
		t.Errorf("%s: condition %s, want aws:SourceAccount = ${AWS_ACCOUNT_ID}", file, got)
	}
}
