// Package cloudwatch holds no code: it is the home of the operations pack
// and its tests: dashboard.json, the CloudWatch dashboard body for the
// worker's metrics and its queues (namespace ChatPrep, region us-east-1;
// change both to deploy elsewhere), and alarms/, one `aws cloudwatch
// put-metric-alarm --cli-input-json` input per alarm (the dead-letter queue
// not empty, the age of the oldest input message, the messages_failed rate,
// no messages_processed while the input queue has a backlog), whose
// runbook is in docs/DEPLOY.md.
//
// Deploy it with
//
//	aws cloudwatch put-dashboard --dashboard-name ChatPrep \
//	    --dashboard-body file://deploy/cloudwatch/dashboard.json
//
// docs/METRICS.md describes the widgets; docs/DEPLOY.md (step 6) creates
// the alarms and their SNS topic.
package cloudwatch
