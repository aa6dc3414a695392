package kumofix_test

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/chatprep/chatprep/internal/devstack"
	"github.com/chatprep/chatprep/internal/devstack/kumotest"
)

// awsCLI runs Debian's aws-cli 2.9.19 (a client of SQS's query protocol)
// against an endpoint, with a home of its own: no configuration or
// credentials of the machine's are read.
type awsCLI struct {
	t        *testing.T
	bin, url string
	env      []string
}

func newAWSCLI(t *testing.T, endpoint string) awsCLI {
	t.Helper()
	bin, err := devstack.RepoAWSCLI(t.Context(), os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	return awsCLI{t: t, bin: bin, url: endpoint, env: []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + home,
		"AWS_CONFIG_FILE=" + filepath.Join(home, "config"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "credentials"),
		"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_DEFAULT_REGION=us-east-1", "AWS_PAGER=",
	}}
}

// run runs `aws --endpoint-url URL --output json sqs ARGS…`.
func (c awsCLI) run(args ...string) (stdout, stderr string, code int) {
	c.t.Helper()
	cmd := exec.CommandContext(c.t.Context(), c.bin, append([]string{"--endpoint-url", c.url, "--output", "json", "sqs"}, args...)...)
	cmd.Env = c.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		c.t.Fatalf("aws sqs %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errb.String(), code
}

// json runs the CLI, which must succeed, and decodes what it prints into v.
func (c awsCLI) json(v any, args ...string) {
	c.t.Helper()
	out, errOut, code := c.run(args...)
	if code != 0 {
		c.t.Fatalf("aws sqs %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
	}
	if v == nil {
		if strings.TrimSpace(out) != "" {
			c.t.Fatalf("aws sqs %s printed %q, want nothing", strings.Join(args, " "), out)
		}
		return
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		c.t.Fatalf("aws sqs %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// cliMessage is a message as `aws sqs receive-message` prints it.
type cliMessage struct {
	MessageId, ReceiptHandle, MD5OfBody, Body, MD5OfMessageAttributes string
	Attributes                                                        map[string]string
	MessageAttributes                                                 map[string]struct{ DataType, StringValue, BinaryValue string }
}

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestQueryProtocolWithTheAWSCLI: every SQS call of the query protocol the
// README and common tools use, made with Debian's aws-cli 2.9.19, against
// the same queue as aws-sdk-go-v2 (the JSON protocol): what one sends the
// other receives, with its message and system attributes, and errors come
// back with SQS's query error codes.
func TestQueryProtocolWithTheAWSCLI(t *testing.T) {
	t.Parallel()
	a := startAWS(t)
	ctx := t.Context()
	cli := newAWSCLI(t, a.URL)
	api := sqsClient(a.URL)

	// Queues: made by the CLI, found by both.
	var created struct{ QueueUrl string }
	cli.json(&created, "create-queue", "--queue-name", "cli-test.fifo", "--attributes", "FifoQueue=true,VisibilityTimeout=40",
		"--tags", "team=chat")
	q := created.QueueUrl
	var got struct{ QueueUrl string }
	cli.json(&got, "get-queue-url", "--queue-name", "cli-test.fifo")
	sdkURL, err := api.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("cli-test.fifo")})
	if err != nil || got.QueueUrl != q || aws.ToString(sdkURL.QueueUrl) != q {
		t.Fatalf("get-queue-url %q, the SDK's %v (%v); create-queue said %q", got.QueueUrl, sdkURL, err, q)
	}
	if _, err := api.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("cli-test-other")}); err != nil {
		t.Fatal(err)
	}
	var listed struct{ QueueUrls []string }
	cli.json(&listed, "list-queues", "--queue-name-prefix", "cli-test")
	if len(listed.QueueUrls) != 2 || !slices.Contains(listed.QueueUrls, q) {
		t.Errorf("list-queues: %q, want cli-test.fifo and cli-test-other", listed.QueueUrls)
	}
	cli.json(nil, "set-queue-attributes", "--queue-url", q, "--attributes", "VisibilityTimeout=45")
	var attrs struct{ Attributes map[string]string }
	cli.json(&attrs, "get-queue-attributes", "--queue-url", q, "--attribute-names", "All")
	sdkAttrs, err := api.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(q),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameVisibilityTimeout}})
	if err != nil || attrs.Attributes["VisibilityTimeout"] != "45" || attrs.Attributes["FifoQueue"] != "true" ||
		sdkAttrs.Attributes["VisibilityTimeout"] != "45" {
		t.Errorf("get-queue-attributes %v; the SDK's %v (%v); want VisibilityTimeout 45 and FifoQueue true", attrs.Attributes, sdkAttrs, err)
	}

	// The SDK sends, the CLI receives: a body XML must escape, message
	// attributes, and the system attributes SQS returns.
	body := "<event id=\"e-1\">a & b\r\nline 2\ttab 'quoted' ✓ 🙂</event>"
	sent, err := api.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q), MessageBody: aws.String(body),
		MessageGroupId: aws.String("chat-1"), MessageDeduplicationId: aws.String("e-1"),
		MessageAttributes: map[string]types.MessageAttributeValue{
			"traceparent": {DataType: aws.String("String"), StringValue: aws.String("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")},
			"event_id":    {DataType: aws.String("String"), StringValue: aws.String("e-1")},
			"raw":         {DataType: aws.String("Binary"), BinaryValue: []byte{0, 1, 2, 255}},
		}})
	if err != nil {
		t.Fatal(err)
	}
	var recv struct{ Messages []cliMessage }
	cli.json(&recv, "receive-message", "--queue-url", q, "--attribute-names", "All", "--message-attribute-names", "All",
		"--max-number-of-messages", "10", "--wait-time-seconds", "1")
	if len(recv.Messages) != 1 {
		t.Fatalf("receive-message: %d messages, want 1", len(recv.Messages))
	}
	m := recv.Messages[0]
	if m.Body != body || m.MessageId != aws.ToString(sent.MessageId) || m.MD5OfBody != md5hex(body) {
		t.Errorf("receive-message: body %q id %s md5 %s; want %q id %s md5 %s", m.Body, m.MessageId, m.MD5OfBody,
			body, aws.ToString(sent.MessageId), md5hex(body))
	}
	if m.MessageAttributes["traceparent"].StringValue != "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" ||
		m.MessageAttributes["event_id"].DataType != "String" || m.MessageAttributes["raw"].BinaryValue != "AAEC/w==" {
		t.Errorf("receive-message: message attributes %+v", m.MessageAttributes)
	}
	if m.MD5OfMessageAttributes == "" || m.MD5OfMessageAttributes != aws.ToString(sent.MD5OfMessageAttributes) {
		t.Errorf("receive-message: MD5OfMessageAttributes %q, the send's %q", m.MD5OfMessageAttributes, aws.ToString(sent.MD5OfMessageAttributes))
	}
	for k, want := range map[string]string{"MessageGroupId": "chat-1", "MessageDeduplicationId": "e-1", "ApproximateReceiveCount": "1"} {
		if m.Attributes[k] != want {
			t.Errorf("receive-message: attribute %s = %q, want %q (all: %v)", k, m.Attributes[k], want, m.Attributes)
		}
	}
	for _, k := range []string{"SentTimestamp", "SequenceNumber", "ApproximateFirstReceiveTimestamp"} {
		if m.Attributes[k] == "" {
			t.Errorf("receive-message: no %s among %v", k, m.Attributes)
		}
	}
	cli.json(nil, "change-message-visibility", "--queue-url", q, "--receipt-handle", m.ReceiptHandle, "--visibility-timeout", "0")
	again, err := api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q), WaitTimeSeconds: 1,
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameApproximateReceiveCount}})
	if err != nil || len(again.Messages) != 1 || aws.ToString(again.Messages[0].Body) != body {
		t.Fatalf("the SDK's receive after the CLI gave the message back: %v %v", again, err)
	}
	if len(again.Messages[0].MessageAttributes) != 0 || len(again.Messages[0].Attributes) != 1 {
		t.Errorf("the SDK asked for no message attributes and one system attribute, got %v and %v",
			again.Messages[0].MessageAttributes, again.Messages[0].Attributes)
	}
	cli.json(nil, "delete-message", "--queue-url", q, "--receipt-handle", aws.ToString(again.Messages[0].ReceiptHandle))

	// The CLI sends, the SDK receives.
	var one struct{ MessageId, MD5OfMessageBody, MD5OfMessageAttributes, SequenceNumber string }
	cli.json(&one, "send-message", "--queue-url", q, "--message-body", "from the CLI", "--message-group-id", "chat-2",
		"--message-deduplication-id", "cli-1", "--message-attributes", `{"chat_id":{"DataType":"String","StringValue":"chat-2"}}`)
	if one.MessageId == "" || one.MD5OfMessageBody != md5hex("from the CLI") || one.MD5OfMessageAttributes == "" || one.SequenceNumber == "" {
		t.Errorf("send-message printed %+v", one)
	}
	var batch struct {
		Successful []struct{ Id, MessageId, MD5OfMessageBody, MD5OfMessageAttributes string }
		Failed     []struct{ Id, Code string }
	}
	cli.json(&batch, "send-message-batch", "--queue-url", q, "--entries", `[
		{"Id":"a","MessageBody":"batch a","MessageGroupId":"chat-3","MessageDeduplicationId":"cli-2","MessageAttributes":{"route":{"DataType":"String","StringValue":"general"}}},
		{"Id":"b","MessageBody":"batch b","MessageGroupId":"chat-4","MessageDeduplicationId":"cli-3"}]`)
	if len(batch.Successful) != 2 || len(batch.Failed) != 0 {
		t.Fatalf("send-message-batch printed %+v", batch)
	}
	for _, s := range batch.Successful {
		if want := md5hex("batch " + s.Id); s.MD5OfMessageBody != want || (s.Id == "a") != (s.MD5OfMessageAttributes != "") {
			t.Errorf("send-message-batch entry %+v: want MD5 %s, and attributes' MD5 on a only", s, want)
		}
	}
	out, err := api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
		MessageAttributeNames:       []string{"All"},
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameMessageGroupId}})
	if err != nil {
		t.Fatal(err)
	}
	byBody := map[string]types.Message{}
	for _, m := range out.Messages {
		byBody[aws.ToString(m.Body)] = m
	}
	if len(byBody) != 3 || aws.ToString(byBody["from the CLI"].MessageAttributes["chat_id"].StringValue) != "chat-2" ||
		byBody["batch a"].Attributes["MessageGroupId"] != "chat-3" ||
		aws.ToString(byBody["batch a"].MD5OfMessageAttributes) != batch.Successful[0].MD5OfMessageAttributes {
		t.Fatalf("the SDK received %d messages: %+v", len(out.Messages), out.Messages)
	}

	// Batches of deletes and visibility changes, one good entry and one bad.
	var vis struct {
		Successful []struct{ Id string }
		Failed     []struct{ Id, Code string }
	}
	cli.json(&vis, "change-message-visibility-batch", "--queue-url", q, "--entries",
		`[{"Id":"ok","ReceiptHandle":"`+aws.ToString(byBody["batch a"].ReceiptHandle)+`","VisibilityTimeout":0},{"Id":"bad","ReceiptHandle":"nonsense","VisibilityTimeout":0}]`)
	if len(vis.Successful) != 1 || vis.Successful[0].Id != "ok" || len(vis.Failed) != 1 || vis.Failed[0].Id != "bad" || vis.Failed[0].Code == "" {
		t.Errorf("change-message-visibility-batch printed %+v", vis)
	}
	var del struct {
		Successful []struct{ Id string }
		Failed     []struct{ Id, Code string }
	}
	cli.json(&del, "delete-message-batch", "--queue-url", q, "--entries",
		`[{"Id":"cli","ReceiptHandle":"`+aws.ToString(byBody["from the CLI"].ReceiptHandle)+`"},{"Id":"b","ReceiptHandle":"`+aws.ToString(byBody["batch b"].ReceiptHandle)+`"}]`)
	if len(del.Successful) != 2 || len(del.Failed) != 0 {
		t.Errorf("delete-message-batch printed %+v", del)
	}
	cli.json(nil, "purge-queue", "--queue-url", q)
	if left, err := api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q), WaitTimeSeconds: 1}); err != nil || len(left.Messages) != 0 {
		t.Errorf("after purge-queue the SDK received %v (%v)", left, err)
	}

	// Errors: SQS's query codes, as the CLI prints them (exit status 254).
	for _, c := range []struct {
		args []string
		code string
	}{
		{[]string{"get-queue-url", "--queue-name", "no-such-queue"}, "AWS.SimpleQueueService.NonExistentQueue"},
		{[]string{"delete-message", "--queue-url", q, "--receipt-handle", "nonsense"}, "ReceiptHandleIsInvalid"},
		{[]string{"send-message-batch", "--queue-url", q, "--entries", `[{"Id":"x","MessageBody":"1","MessageGroupId":"g"},{"Id":"x","MessageBody":"2","MessageGroupId":"g"}]`},
			"AWS.SimpleQueueService.BatchEntryIdsNotDistinct"},
	} {
		out, errOut, code := cli.run(c.args...)
		if code != 254 || out != "" || !strings.Contains(errOut, "An error occurred ("+c.code+") when calling the") {
			t.Errorf("aws sqs %s: exit %d, stdout %q, stderr %q; want 254 and error %s", c.args[0], code, out, errOut, c.code)
		}
	}
	if calls := a.Calls(); calls["SQS.GetQueueUrl"] != 3 || calls["SQS.PurgeQueue"] != 1 {
		t.Errorf("calls counted: %v", calls)
	}
}

// queryCall posts form parameters to the endpoint (path "/" or a queue's)
// and returns the status and the answer (XML when it is SQS's).
func queryCall(t *testing.T, endpoint, path string, params url.Values) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, endpoint+path, strings.NewReader(params.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); params.Get("Version") == "2012-11-05" && ct != "text/xml" {
		t.Errorf("Content-Type %q, want text/xml", ct)
	}
	return resp.StatusCode, string(b)
}

// TestQueryProtocolXML: the XML of answers and errors, element by element,
// as SQS's API reference shows it; a call posted to the queue's URL without
// QueueUrl and one made as a GET (older clients do that); an action SQS
// does not have; an injected fault; and another service's query call left
// to kumo.
func TestQueryProtocolXML(t *testing.T) {
	t.Parallel()
	a := startAWS(t)
	ctx := t.Context()
	api := sqsClient(a.URL)
	q := kumotest.Queue(t, api, false)
	if _, err := api.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q), MessageBody: aws.String("hello"),
		MessageAttributes: map[string]types.MessageAttributeValue{"a": {DataType: aws.String("String"), StringValue: aws.String("1")}}}); err != nil {
		t.Fatal(err)
	}

	status, body := queryCall(t, a.URL, "/", url.Values{"Action": {"ReceiveMessage"}, "Version": {"2012-11-05"},
		"QueueUrl": {q}, "AttributeName.1": {"SentTimestamp"}, "MessageAttributeName.1": {"a"}})
	var rm struct {
		XMLName xml.Name `xml:"http://queue.amazonaws.com/doc/2012-11-05/ ReceiveMessageResponse"`
		Result  struct {
			Messages []struct {
				MessageId, ReceiptHandle, MD5OfBody, Body, MD5OfMessageAttributes string
				Attributes                                                        []struct{ Name, Value string } `xml:"Attribute"`
				MessageAttributes                                                 []struct {
					Name  string
					Value struct{ StringValue, DataType string }
				} `xml:"MessageAttribute"`
			} `xml:"Message"`
		} `xml:"ReceiveMessageResult"`
		RequestId string `xml:"ResponseMetadata>RequestId"`
	}
	if err := xml.Unmarshal([]byte(body), &rm); err != nil || status != 200 {
		t.Fatalf("ReceiveMessage: %d %v\n%s", status, err, body)
	}
	if len(rm.Result.Messages) != 1 || rm.RequestId == "" {
		t.Fatalf("ReceiveMessage:\n%s", body)
	}
	m := rm.Result.Messages[0]
	if m.Body != "hello" || m.MD5OfBody != md5hex("hello") || len(m.Attributes) != 1 || m.Attributes[0].Name != "SentTimestamp" ||
		len(m.MessageAttributes) != 1 || m.MessageAttributes[0].Name != "a" || m.MessageAttributes[0].Value.StringValue != "1" ||
		m.MessageAttributes[0].Value.DataType != "String" || m.MD5OfMessageAttributes == "" {
		t.Errorf("ReceiveMessage:\n%s", body)
	}

	// Posted to the queue's URL, as boto and the Java SDK v1 do.
	path := q[strings.Index(q, "/000000000000/"):]
	status, body = queryCall(t, a.URL, path, url.Values{"Action": {"GetQueueAttributes"}, "Version": {"2012-11-05"}, "AttributeName.1": {"All"}})
	if status != 200 || !strings.Contains(body, "<Attribute><Name>ApproximateNumberOfMessagesNotVisible</Name><Value>1</Value></Attribute>") ||
		!strings.HasPrefix(body, `<?xml version="1.0"?><GetQueueAttributesResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/"><GetQueueAttributesResult>`) {
		t.Errorf("GetQueueAttributes posted to the queue's URL: %d\n%s", status, body)
	}
	status, body = queryCall(t, a.URL, path, url.Values{"Action": {"DeleteMessage"}, "Version": {"2012-11-05"}, "ReceiptHandle": {m.ReceiptHandle}})
	if status != 200 || !strings.HasPrefix(body, `<?xml version="1.0"?><DeleteMessageResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/"><ResponseMetadata><RequestId>`) {
		t.Errorf("DeleteMessage: %d\n%s", status, body)
	}

	// As a GET with the parameters in the URL, as some old clients send it.
	resp, err := http.Get(a.URL + "/?" + url.Values{"Action": {"ListQueues"}, "Version": {"2012-11-05"}, "QueueNamePrefix": {q[strings.LastIndex(q, "/")+1:]}}.Encode()) // its own queue only: -count=N keeps the earlier runs' queues
	if err != nil {
		t.Fatal(err)
	}
	listed, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || !strings.Contains(string(listed), "<ListQueuesResult><QueueUrl>"+q+"</QueueUrl></ListQueuesResult>") {
		t.Errorf("ListQueues as a GET: %d %v\n%s", resp.StatusCode, err, listed)
	}

	errorXML := func(body string) (typ, code string) {
		var e struct {
			XMLName   xml.Name `xml:"http://queue.amazonaws.com/doc/2012-11-05/ ErrorResponse"`
			Type      string   `xml:"Error>Type"`
			Code      string   `xml:"Error>Code"`
			Message   string   `xml:"Error>Message"`
			RequestId string
		}
		if err := xml.Unmarshal([]byte(body), &e); err != nil || e.Message == "" || e.RequestId == "" {
			t.Errorf("not an SQS error: %v\n%s", err, body)
		}
		return e.Type, e.Code
	}
	for _, c := range []struct {
		name           string
		params         url.Values
		status         int
		typ, code      string
		fault          devstack.Fault
		faultedActions string
	}{
		{"unknown queue", url.Values{"Action": {"GetQueueUrl"}, "Version": {"2012-11-05"}, "QueueName": {"nope"}},
			400, "Sender", "AWS.SimpleQueueService.NonExistentQueue", devstack.Fault{}, ""},
		{"unknown action", url.Values{"Action": {"StealMessages"}, "Version": {"2012-11-05"}}, 400, "Sender", "InvalidAction", devstack.Fault{}, ""},
		{"not a number", url.Values{"Action": {"ReceiveMessage"}, "Version": {"2012-11-05"}, "QueueUrl": {q},
			"MaxNumberOfMessages": {"ten"}}, 400, "Sender", "InvalidParameterValue", devstack.Fault{}, ""},
		{"throttled", url.Values{"Action": {"ListQueues"}, "Version": {"2012-11-05"}}, 400, "Receiver", "ThrottlingException",
			devstack.Fault{Status: 400, Code: "ThrottlingException"}, "SQS.ListQueues"},
	} {
		if c.faultedActions != "" {
			a.SetFault(func(api string) devstack.Fault {
				if api == c.faultedActions {
					return c.fault
				}
				return devstack.Fault{}
			})
		}
		status, body := queryCall(t, a.URL, "/", c.params)
		a.SetFault(nil)
		if typ, code := errorXML(body); status != c.status || typ != c.typ || code != c.code {
			t.Errorf("%s: %d %s %s, want %d %s %s\n%s", c.name, status, typ, code, c.status, c.typ, c.code, body)
		}
	}

	// CloudWatch's query protocol (Version 2010-08-01) is not SQS's: it
	// passes to kumo as it came.
	status, body = queryCall(t, a.URL, "/", url.Values{"Action": {"ListMetrics"}, "Version": {"2010-08-01"}})
	if strings.Contains(body, "queue.amazonaws.com") {
		t.Errorf("a CloudWatch query call was answered as SQS: %d\n%s", status, body)
	}
}

// TestMD5OfMessageAttributes: the MD5s SQS answers for message
// attributes, for the published examples of the algorithm (a string, a
// custom number type, a binary value, the three together), sent through
// the proxy with the SDK and read back on receive.
func TestMD5OfMessageAttributes(t *testing.T) {
	t.Parallel()
	a := startAWS(t)
	ctx := t.Context()
	api := sqsClient(a.URL)
	q := kumotest.Queue(t, api, false)
	str := types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String("attribValue 1")}
	num := types.MessageAttributeValue{DataType: aws.String("Number.float"), StringValue: aws.String("4563442423554324324264524243.32543234")}
	bin := types.MessageAttributeValue{DataType: aws.String("Binary"), BinaryValue: []byte("Hello binary world!")}
	for _, c := range []struct {
		attrs map[string]types.MessageAttributeValue
		want  string
	}{
		{map[string]types.MessageAttributeValue{"attribName1": str}, "19e27d4e946b072f3f58da80d94fd778"},
		{map[string]types.MessageAttributeValue{"customNumberTypeAttrib": num}, "9fe1b90bbd9965bdf77bac517c7d2495"},
		{map[string]types.MessageAttributeValue{"binaryAttribute": bin}, "31a92b15d92f8db860eda32aceb656c3"},
		{map[string]types.MessageAttributeValue{"attribName1": str, "customNumberTypeAttrib": num, "binaryAttribute": bin}, "c932db14a896c663f83c260297d594ff"},
	} {
		sent, err := api.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q), MessageBody: aws.String("x"), MessageAttributes: c.attrs})
		if err != nil {
			t.Fatal(err)
		}
		got, err := api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q), MessageAttributeNames: []string{"All"}})
		if err != nil || len(got.Messages) != 1 {
			t.Fatalf("receive: %v %v", got, err)
		}
		if _, err := api.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(q), ReceiptHandle: got.Messages[0].ReceiptHandle}); err != nil {
			t.Fatal(err)
		}
		if s, r := aws.ToString(sent.MD5OfMessageAttributes), aws.ToString(got.Messages[0].MD5OfMessageAttributes); s != c.want || r != c.want {
			t.Errorf("%d attributes: MD5 %s on send, %s on receive; want %s", len(c.attrs), s, r, c.want)
		}
	}
}
