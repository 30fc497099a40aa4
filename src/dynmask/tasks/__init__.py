"""Task glue between data, models and the trainer."""
