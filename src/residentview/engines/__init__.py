"""Where the stages run: the embedded DuckDB (the default, `residentview.pipeline`) or Spark
(`residentview.engines.spark`, the `spark` extra; CONTRACT §9 `engine: spark`)."""
