"""Apache Kafka's real broker (KRaft), fetched from Maven Central and run with the local JDK."""
