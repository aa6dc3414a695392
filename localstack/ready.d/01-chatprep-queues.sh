#!/bin/bash
# LocalStack ready hook: creates chatprep's queues with exactly the attributes
# `worker setup` wants, so a later `worker setup` finds them unchanged.
# Names and settings follow the same variables as the worker (CONTRACT.md).
set -euo pipefail

INPUT_QUEUE=${INPUT_QUEUE:-chat-events.fifo}
DLQ_QUEUE=${DLQ_QUEUE:-chat-events-dlq.fifo}
RESPONSE_QUEUE=${RESPONSE_QUEUE:-chat-context.fifo}
MAX_RECEIVE_COUNT=${MAX_RECEIVE_COUNT:-5}
VISIBILITY_SECONDS=${VISIBILITY_SECONDS:-30}

fifo_attrs() { # $1 = queue name, $2 = "high" for high-throughput FIFO
  case "$1" in
    *.fifo)
      printf '"FifoQueue":"true","ContentBasedDeduplication":"false"'
      if [ "${2:-}" = high ]; then
        printf ',"DeduplicationScope":"messageGroup","FifoThroughputLimit":"perMessageGroupId"'
      fi
      printf ','
      ;;
  esac
}

create() { # $1 = name, $2 = attributes JSON object
  awslocal sqs create-queue --queue-name "$1" --attributes "$2" --output text --query QueueUrl
}

dlq_url=$(create "$DLQ_QUEUE" "{$(fifo_attrs "$DLQ_QUEUE")\"MessageRetentionPeriod\":\"1209600\"}")
dlq_arn=$(awslocal sqs get-queue-attributes --queue-url "$dlq_url" --attribute-names QueueArn --output text --query Attributes.QueueArn)
redrive="{\\\"deadLetterTargetArn\\\":\\\"$dlq_arn\\\",\\\"maxReceiveCount\\\":$MAX_RECEIVE_COUNT}"
create "$INPUT_QUEUE" "{$(fifo_attrs "$INPUT_QUEUE" high)\"VisibilityTimeout\":\"$VISIBILITY_SECONDS\",\"ReceiveMessageWaitTimeSeconds\":\"20\",\"RedrivePolicy\":\"$redrive\"}"
create "$RESPONSE_QUEUE" "{$(fifo_attrs "$RESPONSE_QUEUE" high)\"ReceiveMessageWaitTimeSeconds\":\"20\"}"
echo "chatprep queues ready: $INPUT_QUEUE (dead letters to $DLQ_QUEUE after $MAX_RECEIVE_COUNT receives), $RESPONSE_QUEUE"
