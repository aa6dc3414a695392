// Package cloudwatch holds no code: it is the home of dashboard.json, the
// CloudWatch dashboard body for the worker's metrics (namespace ChatPrep,
// region us-east-1; change both to deploy elsewhere), and of its test.
//
// Deploy it with
//
//	aws cloudwatch put-dashboard --dashboard-name ChatPrep \
//	    --dashboard-body file://deploy/cloudwatch/dashboard.json
//
// docs/METRICS.md describes the widgets.
package cloudwatch
