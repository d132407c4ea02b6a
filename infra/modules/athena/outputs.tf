output "database_name" {
  description = "Glue database of the lake tables."
  value       = aws_glue_catalog_database.this.name
}

output "table_names" {
  description = "The lake tables."
  value = [
    aws_glue_catalog_table.events.name,
    aws_glue_catalog_table.review_sentiment.name,
    aws_glue_catalog_table.exposures.name,
    aws_glue_catalog_table.dead_letter.name,
    aws_glue_catalog_table.audit.name,
  ]
}

output "workgroup_name" {
  description = "Athena workgroup analysts query in."
  value       = aws_athena_workgroup.this.name
}

output "results_bucket_name" {
  description = "Bucket of the query results."
  value       = aws_s3_bucket.results.bucket
}
