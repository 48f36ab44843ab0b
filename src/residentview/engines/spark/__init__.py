"""The pipeline on Spark (`engine: spark`, CONTRACT §9; needs the `spark` extra). See
`engines.spark.pipeline` for what runs on Spark and what on the driver."""

from residentview.engines.spark.session import require_java, require_pyspark, spark_session

__all__ = ["require_java", "require_pyspark", "spark_session"]
