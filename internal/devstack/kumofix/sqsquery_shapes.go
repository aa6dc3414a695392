package kumofix

// The shapes of SQS's query protocol, from botocore's service model
// sqs/2012-11-05/service-2.json (protocol "query"), the model Debian's
// aws-cli 2.9.19 speaks: each operation's input, as form parameters, and
// its output, as XML. Member names are those of the JSON protocol (the
// same model's member names); xml is the query and XML name where the
// model gives a locationName. Every list and map in this model is
// flattened: a list's elements are repeated under their element name
// (AttributeName.1, AttributeName.2, …; <Message>…</Message><Message>…),
// a map's entries under the member's name with a key and a Value
// (Attribute.1.Name, Attribute.1.Value; <Attribute><Name>…</Name><Value>…).

type kind uint8

const (
	kString kind = iota
	kInt
	kBool
	kBlob // base64 in both protocols
	kList
	kMap
	kStruct
)

// shape is a value's type in the model.
type shape struct {
	kind   kind
	fields []field // structure
	// elem is a list's element, or a map's value; elemName is a list
	// element's name, or the name of a map entry's key.
	elem     *shape
	elemName string
}

// field is a structure's member.
type field struct {
	name  string // in JSON
	xml   string // in query parameters and XML
	shape *shape
}

var (
	qString = &shape{kind: kString}
	qInt    = &shape{kind: kInt}
	qBool   = &shape{kind: kBool}
	qBlob   = &shape{kind: kBlob}
)

func structure(fs ...field) *shape { return &shape{kind: kStruct, fields: fs} }

// list is a flattened list whose elements are named elem.
func list(elem string, s *shape) *shape { return &shape{kind: kList, elem: s, elemName: elem} }

// mapOf is a flattened map with string keys named key and values v named
// Value.
func mapOf(key string, v *shape) *shape { return &shape{kind: kMap, elem: v, elemName: key} }

// f is a member whose query and XML name is its name; fx one with its own.
func f(name string, s *shape) field       { return field{name, name, s} }
func fx(name, xml string, s *shape) field { return field{name, xml, s} }

// queryOp is an operation's input and output (nil: an answer without a
// result element).
type queryOp struct{ in, out *shape }

var (
	queueURL = f("QueueUrl", qString)
	// MessageAttributeValue and MessageSystemAttributeValue.
	attrValue = structure(
		f("StringValue", qString), f("BinaryValue", qBlob),
		fx("StringListValues", "StringListValue", list("StringListValue", qString)),
		fx("BinaryListValues", "BinaryListValue", list("BinaryListValue", qBlob)),
		f("DataType", qString))
	messageAttributes = fx("MessageAttributes", "MessageAttribute", mapOf("Name", attrValue))
	systemAttributes  = fx("MessageSystemAttributes", "MessageSystemAttribute", mapOf("Name", attrValue))
	queueAttributes   = fx("Attributes", "Attribute", mapOf("Name", qString))
	tags              = mapOf("Key", qString)
	batchFailed       = f("Failed", list("BatchResultErrorEntry", structure(
		f("Id", qString), f("SenderFault", qBool), f("Code", qString), f("Message", qString))))
	batchIDs = func(entry string) *shape {
		return structure(f("Successful", list(entry, structure(f("Id", qString)))), batchFailed)
	}
	sendResult = []field{
		f("MD5OfMessageBody", qString), f("MD5OfMessageAttributes", qString),
		f("MD5OfMessageSystemAttributes", qString), f("MessageId", qString), f("SequenceNumber", qString),
	}
)

// sqsOps are the SQS operations the proxy answers in the query protocol:
// all of the model's that kumo serves (and ListDeadLetterSourceQueues,
// which kumo answers with an error).
var sqsOps = map[string]queryOp{
	"CreateQueue": {
		in:  structure(f("QueueName", qString), queueAttributes, fx("tags", "Tag", tags)),
		out: structure(queueURL),
	},
	"GetQueueUrl": {
		in:  structure(f("QueueName", qString), f("QueueOwnerAWSAccountId", qString)),
		out: structure(queueURL),
	},
	"ListQueues": {
		in:  structure(f("QueueNamePrefix", qString), f("NextToken", qString), f("MaxResults", qInt)),
		out: structure(f("QueueUrls", list("QueueUrl", qString)), f("NextToken", qString)),
	},
	"ListDeadLetterSourceQueues": {
		in:  structure(queueURL, f("NextToken", qString), f("MaxResults", qInt)),
		out: structure(f("queueUrls", list("QueueUrl", qString)), f("NextToken", qString)),
	},
	"DeleteQueue": {in: structure(queueURL)},
	"PurgeQueue":  {in: structure(queueURL)},
	"GetQueueAttributes": {
		in:  structure(queueURL, f("AttributeNames", list("AttributeName", qString))),
		out: structure(queueAttributes),
	},
	"SetQueueAttributes": {in: structure(queueURL, queueAttributes)},
	"ListQueueTags":      {in: structure(queueURL), out: structure(fx("Tags", "Tag", tags))},
	"TagQueue":           {in: structure(queueURL, fx("Tags", "Tag", tags))},
	"UntagQueue":         {in: structure(queueURL, f("TagKeys", list("TagKey", qString)))},
	"AddPermission": {in: structure(queueURL, f("Label", qString),
		f("AWSAccountIds", list("AWSAccountId", qString)), f("Actions", list("ActionName", qString)))},
	"RemovePermission": {in: structure(queueURL, f("Label", qString))},
	"SendMessage": {
		in: structure(queueURL, f("MessageBody", qString), f("DelaySeconds", qInt), messageAttributes, systemAttributes,
			f("MessageDeduplicationId", qString), f("MessageGroupId", qString)),
		out: structure(sendResult...),
	},
	"SendMessageBatch": {
		in: structure(queueURL, f("Entries", list("SendMessageBatchRequestEntry", structure(
			f("Id", qString), f("MessageBody", qString), f("DelaySeconds", qInt), messageAttributes, systemAttributes,
			f("MessageDeduplicationId", qString), f("MessageGroupId", qString))))),
		out: structure(f("Successful", list("SendMessageBatchResultEntry", structure(append([]field{f("Id", qString)}, sendResult...)...))), batchFailed),
	},
	"ReceiveMessage": {
		in: structure(queueURL,
			f("AttributeNames", list("AttributeName", qString)),
			// Not in 2.9.19's model; newer query clients send it instead of
			// AttributeName.
			f("MessageSystemAttributeNames", list("MessageSystemAttributeName", qString)),
			f("MessageAttributeNames", list("MessageAttributeName", qString)),
			f("MaxNumberOfMessages", qInt), f("VisibilityTimeout", qInt), f("WaitTimeSeconds", qInt),
			f("ReceiveRequestAttemptId", qString)),
		out: structure(f("Messages", list("Message", structure(
			f("MessageId", qString), f("ReceiptHandle", qString), f("MD5OfBody", qString), f("Body", qString),
			fx("Attributes", "Attribute", mapOf("Name", qString)),
			f("MD5OfMessageAttributes", qString), messageAttributes)))),
	},
	"DeleteMessage": {in: structure(queueURL, f("ReceiptHandle", qString))},
	"DeleteMessageBatch": {
		in: structure(queueURL, f("Entries", list("DeleteMessageBatchRequestEntry", structure(
			f("Id", qString), f("ReceiptHandle", qString))))),
		out: batchIDs("DeleteMessageBatchResultEntry"),
	},
	"ChangeMessageVisibility": {in: structure(queueURL, f("ReceiptHandle", qString), f("VisibilityTimeout", qInt))},
	"ChangeMessageVisibilityBatch": {
		in: structure(queueURL, f("Entries", list("ChangeMessageVisibilityBatchRequestEntry", structure(
			f("Id", qString), f("ReceiptHandle", qString), f("VisibilityTimeout", qInt))))),
		out: batchIDs("ChangeMessageVisibilityBatchResultEntry"),
	},
}

// sqsErrorCodes are the query protocol's error codes of the JSON
// protocol's error types where they differ (the model's "error" codes).
// kumo already answers some in the query form (AWS.SimpleQueueService.
// NonExistentQueue, QueueAlreadyExists): those pass as they are.
var sqsErrorCodes = map[string]string{
	"QueueDoesNotExist":            "AWS.SimpleQueueService.NonExistentQueue",
	"QueueNameExists":              "QueueAlreadyExists",
	"QueueDeletedRecently":         "AWS.SimpleQueueService.QueueDeletedRecently",
	"MessageNotInflight":           "AWS.SimpleQueueService.MessageNotInflight",
	"PurgeQueueInProgress":         "AWS.SimpleQueueService.PurgeQueueInProgress",
	"BatchEntryIdsNotDistinct":     "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
	"BatchRequestTooLong":          "AWS.SimpleQueueService.BatchRequestTooLong",
	"EmptyBatchRequest":            "AWS.SimpleQueueService.EmptyBatchRequest",
	"InvalidBatchEntryId":          "AWS.SimpleQueueService.InvalidBatchEntryId",
	"TooManyEntriesInBatchRequest": "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
	"UnsupportedOperation":         "AWS.SimpleQueueService.UnsupportedOperation",
}
