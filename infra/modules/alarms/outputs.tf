output "topic_arn" {
  description = "ARN of the alarm topic (subscribe on-call tooling to it)."
  value       = aws_sns_topic.this.arn
}

output "alarm_names" {
  description = "Names of the CloudWatch alarms."
  value = concat(
    [
      aws_cloudwatch_metric_alarm.api_5xx.alarm_name,
      aws_cloudwatch_metric_alarm.ingest_errors.alarm_name,
      aws_cloudwatch_metric_alarm.ingest_throttles.alarm_name,
      aws_cloudwatch_metric_alarm.dead_letters.alarm_name,
      aws_cloudwatch_metric_alarm.compact_errors.alarm_name,
      aws_cloudwatch_metric_alarm.report_errors.alarm_name,
      aws_cloudwatch_metric_alarm.no_model_promoted.alarm_name,
    ],
    [for a in aws_cloudwatch_metric_alarm.dead_letter_queues : a.alarm_name],
    [for a in aws_cloudwatch_metric_alarm.train_errors : a.alarm_name],
    [for a in aws_cloudwatch_metric_alarm.edge_publish_failures : a.alarm_name],
  )
}
