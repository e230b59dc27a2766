//! Per-rank output files.
