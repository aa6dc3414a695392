// Package ecs holds no code: it is the home of the worker's Amazon ECS
// (Fargate) deployment files and of their tests. docs/DEPLOY.md is the
// walk-through; in short:
//
//   - task-definition.json: RegisterTaskDefinition input (the shape
//     `aws ecs register-task-definition --cli-input-json` takes): every
//     variable of CONTRACT.md with its default, WEAVIATE_API_KEY from
//     Secrets Manager, awslogs, the `worker healthcheck` health check and a
//     stopTimeout above SHUTDOWN_TIMEOUT.
//   - task-policy.json: the task role, exactly what `worker run` calls.
//   - execution-policy.json: the execution role (image pull, logs, the
//     API-key secret). setup-policy.json: what `worker setup` needs, for
//     the operator who runs it; operator-policy.json: what enqueue,
//     results, dlq list and dlq redrive need. trust-policy.json: both
//     roles' trust.
//   - cluster.json, service.json: CreateCluster (Container Insights on) and
//     CreateService inputs.
//   - scalable-target.json, autoscaling.json: Application Auto Scaling
//     RegisterScalableTarget and PutScalingPolicy inputs: target tracking on
//     the input queue's backlog per running task.
//   - retention-task-definition.json, retention-schedule.json,
//     scheduler-trust-policy.json, scheduler-policy.json: the retention job,
//     `worker forget --older-than` as a Fargate task that EventBridge
//     Scheduler runs daily (CreateSchedule input), and the role it runs it
//     as.
//
// Values that differ per deployment are ${NAME} placeholders (envsubst
// fills them); the tests list the allowed names.
package ecs
