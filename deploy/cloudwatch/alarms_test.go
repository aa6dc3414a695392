package cloudwatch_test

import (
	"errors"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/sivchari/kumo"

	"github.com/chatprep/chatprep/deploy/deploytest"
	"github.com/chatprep/chatprep/internal/metrics"
)

const deployDoc = "../../docs/DEPLOY.md"

// alarm is one file of alarms/: a PutMetricAlarm input.
type alarm struct {
	path string
	file []byte // placeholders filled
	in   cloudwatch.PutMetricAlarmInput
}

func alarms(t *testing.T) []alarm {
	t.Helper()
	paths, err := filepath.Glob("alarms/*.json")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no alarms: %v", err)
	}
	var out []alarm
	for _, p := range paths {
		a := alarm{path: p}
		a.file = deploytest.MustDecode(t, p, &a.in)
		out = append(out, a)
	}
	return out
}

func dims(ds []types.Dimension) map[string]string {
	m := map[string]string{}
	for _, d := range ds {
		m[aws.ToString(d.Name)] = aws.ToString(d.Value)
	}
	return m
}

// ref is one metric an alarm reads.
type ref struct {
	ns, name string
	dims     map[string]string
}

// refs are the metrics an alarm reads: its metric, or its metric math's.
func (a alarm) refs() []ref {
	if a.in.MetricName != nil {
		return []ref{{aws.ToString(a.in.Namespace), aws.ToString(a.in.MetricName), dims(a.in.Dimensions)}}
	}
	var out []ref
	for _, q := range a.in.Metrics {
		if s := q.MetricStat; s != nil && s.Metric != nil {
			out = append(out, ref{aws.ToString(s.Metric.Namespace), aws.ToString(s.Metric.MetricName), dims(s.Metric.Dimensions)})
		}
	}
	return out
}

var exprWordRE = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*`)

// TestAlarms checks deploy/cloudwatch/alarms: each file decodes strictly
// into the SDK's PutMetricAlarmInput (as `aws cloudwatch put-metric-alarm
// --cli-input-json` reads it) and the SDK sends exactly the file; every
// metric is the contract's (namespace, name, Route dimension) or an AWS/SQS
// metric of the contract's queues; actions go to the one topic; each has
// its runbook in docs/DEPLOY.md; and the four alarms the issue asks for are
// there.
func TestAlarms(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(deployDoc)
	if err != nil {
		t.Fatal(err)
	}
	topic := "arn:aws:sns:" + deploytest.Placeholders()["AWS_REGION"] + ":" + deploytest.Placeholders()["AWS_ACCOUNT_ID"] + ":chatprep-alarms"
	rec := &deploytest.Recorder{}
	client := cloudwatch.NewFromConfig(deploytest.SDKConfig(rec), func(o *cloudwatch.Options) {
		o.BaseEndpoint = aws.String("http://127.0.0.1:9") // never dialled: the recorder ends the call
	})
	qs := queueNames()
	var dlq, oldest, failed, stalled bool
	for _, a := range alarms(t) {
		name := aws.ToString(a.in.AlarmName)
		if want := "chatprep-" + strings.TrimSuffix(filepath.Base(a.path), ".json"); name != want {
			t.Errorf("%s: AlarmName %q, want %q (the file's name)", a.path, name, want)
		}
		if !strings.Contains(aws.ToString(a.in.AlarmDescription), "docs/DEPLOY.md") || !strings.Contains(string(doc), "#### `"+name+"`") {
			t.Errorf("%s: the description must point at docs/DEPLOY.md, which needs a runbook section #### `%s`", a.path, name)
		}
		if !slices.Equal(a.in.AlarmActions, []string{topic}) || !slices.Equal(a.in.OKActions, []string{topic}) || !aws.ToBool(a.in.ActionsEnabled) {
			t.Errorf("%s: actions %v / %v, want the topic %s for both", a.path, a.in.AlarmActions, a.in.OKActions, topic)
		}
		if a.in.TreatMissingData == nil {
			t.Errorf("%s: say how missing data counts (TreatMissingData)", a.path)
		}
		refs := a.refs()
		if len(refs) == 0 {
			t.Errorf("%s reads no metric", a.path)
		}
		for _, r := range refs {
			if err := checkMetric(r.ns, r.name, r.dims); err != nil {
				t.Errorf("%s: %v", a.path, err)
			}
		}
		checkMath(t, a)

		if _, err := client.PutMetricAlarm(t.Context(), &a.in); !errors.Is(err, deploytest.ErrNotSent) {
			t.Fatalf("%s: PutMetricAlarm: %v", a.path, err)
		}
		deploytest.SameJSON(t, a.path, a.file, rec.Body(t, "PutMetricAlarm"))

		one := len(refs) == 1
		dlq = dlq || one && refs[0].is("AWS/SQS", "ApproximateNumberOfMessagesVisible", qs["dlq"]) && aws.ToFloat64(a.in.Threshold) == 0 &&
			a.in.ComparisonOperator == types.ComparisonOperatorGreaterThanThreshold
		oldest = oldest || one && refs[0].is("AWS/SQS", "ApproximateAgeOfOldestMessage", qs["input"])
		failed = failed || one && refs[0].is(namespace, metrics.MessagesFailed, "")
		stalled = stalled || len(a.in.Metrics) > 0 && processesEveryRoute(refs) && readsBacklog(refs)
	}
	for what, ok := range map[string]bool{
		"the dead-letter queue not empty": dlq, "the age of the oldest input message": oldest,
		"the messages_failed rate": failed, "no messages_processed while the input has a backlog (metric math)": stalled,
	} {
		if !ok {
			t.Errorf("no alarm on %s", what)
		}
	}
}

// is tells whether r is ns/name of queue (or without dimensions, for "").
func (r ref) is(ns, name, queue string) bool {
	if r.ns != ns || r.name != name {
		return false
	}
	if queue == "" {
		return len(r.dims) == 0
	}
	return len(r.dims) == 1 && r.dims["QueueName"] == queue
}

func processesEveryRoute(refs []ref) bool {
	for _, route := range routes() {
		if !slices.ContainsFunc(refs, func(r ref) bool {
			return r.ns == namespace && r.name == metrics.MessagesProcessed && r.dims[metrics.RouteDimension] == route
		}) {
			return false
		}
	}
	return true
}

func readsBacklog(refs []ref) bool {
	return slices.ContainsFunc(refs, func(r ref) bool {
		return r.is("AWS/SQS", "ApproximateNumberOfMessagesVisible", queueNames()["input"])
	})
}

// checkMath checks a metric-math alarm: valid ids, expressions that name
// only its own ids (and functions), exactly one query returning data (the
// one the alarm evaluates), and no top-level metric fields beside Metrics.
func checkMath(t *testing.T, a alarm) {
	t.Helper()
	if len(a.in.Metrics) == 0 {
		return
	}
	if a.in.MetricName != nil || a.in.Namespace != nil || a.in.Statistic != "" || a.in.Period != nil || len(a.in.Dimensions) > 0 {
		t.Errorf("%s: metric math with a top-level metric, statistic or period too", a.path)
	}
	ids := map[string]bool{}
	returns := 0
	for _, q := range a.in.Metrics {
		id := aws.ToString(q.Id)
		if !regexp.MustCompile(`^[a-z][a-zA-Z0-9_]*$`).MatchString(id) || ids[id] {
			t.Errorf("%s: id %q is invalid or repeated", a.path, id)
		}
		ids[id] = true
		if aws.ToBool(q.ReturnData) {
			returns++
		}
		if (q.Expression == nil) == (q.MetricStat == nil) {
			t.Errorf("%s: %s needs an expression or a metric, not both", a.path, id)
		}
		if s := q.MetricStat; s != nil && (aws.ToInt32(s.Period) != 60 || s.Stat == nil) {
			t.Errorf("%s: %s: period %d stat %v, want per minute with a stat", a.path, id, aws.ToInt32(s.Period), s.Stat)
		}
	}
	if returns != 1 {
		t.Errorf("%s: %d queries return data, want the one the alarm evaluates", a.path, returns)
	}
	for _, q := range a.in.Metrics {
		for _, w := range exprWordRE.FindAllString(aws.ToString(q.Expression), -1) {
			if w != strings.ToUpper(w) && !ids[w] {
				t.Errorf("%s: expression %q names %q, not an id of the alarm", a.path, aws.ToString(q.Expression), w)
			}
		}
	}
}

// TestAlarmsRegisterWithKumo puts each single-metric alarm into kumo's
// CloudWatch through the real SDK, as `put-metric-alarm` would, and reads
// it back with DescribeAlarms. kumo has no metric math (it refuses an alarm
// without MetricName), so the metric-math alarm is checked by TestAlarms
// only, through the SDK's types and serializer.
func TestAlarmsRegisterWithKumo(t *testing.T) {
	t.Parallel()
	srv := kumo.NewServer()
	t.Cleanup(srv.Close)
	rec := &deploytest.Recorder{Next: &http.Client{Timeout: 30 * time.Second}}
	client := cloudwatch.NewFromConfig(deploytest.SDKConfig(rec), func(o *cloudwatch.Options) { o.BaseEndpoint = aws.String(srv.URL) })
	registered := 0
	for _, a := range alarms(t) {
		if len(a.in.Metrics) > 0 {
			continue
		}
		if _, err := client.PutMetricAlarm(t.Context(), &a.in); err != nil {
			t.Fatalf("%s: PutMetricAlarm: %v", a.path, err)
		}
		out, err := client.DescribeAlarms(t.Context(), &cloudwatch.DescribeAlarmsInput{AlarmNames: []string{aws.ToString(a.in.AlarmName)}})
		if err != nil || len(out.MetricAlarms) != 1 {
			t.Fatalf("%s: DescribeAlarms: %v %+v", a.path, err, out)
		}
		got := out.MetricAlarms[0]
		if aws.ToString(got.Namespace) != aws.ToString(a.in.Namespace) || aws.ToString(got.MetricName) != aws.ToString(a.in.MetricName) ||
			!maps.Equal(dims(got.Dimensions), dims(a.in.Dimensions)) || got.Statistic != a.in.Statistic ||
			aws.ToInt32(got.Period) != aws.ToInt32(a.in.Period) || aws.ToInt32(got.EvaluationPeriods) != aws.ToInt32(a.in.EvaluationPeriods) ||
			aws.ToFloat64(got.Threshold) != aws.ToFloat64(a.in.Threshold) || got.ComparisonOperator != a.in.ComparisonOperator {
			t.Errorf("%s: kumo holds %+v", a.path, got)
		}
		registered++
	}
	if registered < 3 {
		t.Errorf("%d single-metric alarms registered, want at least 3", registered)
	}
}
