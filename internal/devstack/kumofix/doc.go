// Package kumofix makes the kumo AWS emulator answer like SQS: Proxy sits
// between SQS's clients and kumo, forwards every call and restores what kumo
// leaves out or does differently. It also counts calls by API and injects
// faults (SetFault) for fault tests. Package devstack runs it in front of
// every kumo it starts; nothing in the worker knows about it.
//
// The SQS behaviours it restores, where, and the test that pins each:
//
//   - System attributes kept (awsproxy.go: rememberSend, addSentAttributes):
//     kumo does not return a message's MessageGroupId and
//     MessageDeduplicationId and drops its AWSTraceHeader; the proxy
//     remembers them from the sends and adds them on ReceiveMessage.
//     TestAWSProxyAnswersLikeSQS, TestAWSProxyKeepsAWSTraceHeader.
//   - Long polls that end when a message becomes receivable (longpoll.go:
//     receive, poll): kumo wakes a long poll only when a message is sent,
//     not when one becomes receivable by a delete (the next of its FIFO
//     group) or by its visibility timeout ending; the proxy long-polls for
//     the client. TestAWSProxyLongPollReturnsWhenAMessageBecomesReceivable.
//   - A long poll whose caller went away still takes what arrives
//     (longpoll.go: orphan), as at SQS (aws-sdk-go-v2#2068): those messages
//     stay invisible for their visibility timeout.
//     TestAWSProxyCancelledLongPollStrandsWhatArrives.
//   - ReceiveRequestAttemptId (attempt.go): kumo ignores it; the proxy
//     answers a FIFO receive retried with the attempt id of one that took
//     messages (the SDK retries a receive whose answer it could not read)
//     with that answer again, within SQS's 5 minutes, instead of taking
//     new messages and leaving the first hidden.
//     TestAWSProxyReceiveRequestAttemptId.
//   - FIFO order within an answer (longpoll.go: groupOrder): kumo may hand
//     out a group's released messages shuffled.
//     TestAWSProxyKeepsFIFOGroupOrder.
//   - The deduplication window (dedup.go): kumo forgets a FIFO
//     deduplication id once its message is deleted; the proxy keeps each
//     for DedupWindow and answers a repeated send itself, with the first
//     MessageId. TestAWSProxyDeduplicatesLikeSQS.
//   - A send carried out whole (awsproxy.go: serve): kumo's answer to a
//     send is awaited even when the caller went away meanwhile (a worker
//     SIGKILLed mid-publish), so that its deduplication id is remembered as
//     SQS counts it; cancelled, the message could be in kumo and its id
//     forgotten. TestAWSProxyCarriesOutASendWhoseCallerWentAway.
//   - Only the attributes asked for, with their MD5s (sqsattrs.go): kumo
//     returns every attribute whatever was asked, and answers no
//     MD5OfMessageAttributes or MD5OfMessageSystemAttributes.
//     TestAWSProxyKeepsAWSTraceHeader, TestMD5OfMessageAttributes.
//   - The characters SQS takes (chars.go): kumo takes any character in a
//     message body; the proxy refuses what SQS refuses
//     (InvalidMessageContents: for SendMessage the call, for
//     SendMessageBatch the entry). TestAWSProxyRefusesWhatSQSRefuses.
//   - Queue counts (visibility.go): kumo counts a message given back
//     (visibility 0) as not visible until the queue is next received from.
//     TestAWSProxyCountsMessagesGivenBack.
//   - The query protocol (sqsquery.go, sqsquery_shapes.go): kumo speaks
//     only SQS's JSON protocol; the proxy also answers form-encoded
//     Action=… calls in XML, through all of the above (the README's `aws sqs`
//     examples use Debian's aws-cli 2.9.19, a query-protocol client).
//     TestQueryProtocolWithTheAWSCLI, TestQueryProtocolXML.
//
// Test tools, not SQS behaviours: call counts by API (Calls), faults
// (SetFault: an error status, a dropped connection, a truncated answer), a
// second endpoint that faults never reach (UnfaultedURL), and more
// endpoints with faults of their own (NewEndpoint), for fault tests that
// run at once. TestAWSProxyAnswersLikeSQS, TestAWSProxyUnfaultedURL,
// TestAWSProxyTruncate, TestAWSProxyEndpointFaultsAreItsOwn.
package kumofix
