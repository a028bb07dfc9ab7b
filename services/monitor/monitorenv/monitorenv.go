// Package monitorenv names the environment variables of the monitor
// (services/monitor), beyond PORT, AUTONOMICS_LISTEN_HOST and the
// AUTONOMICS_* variables platform.FromEnv reads.
//
// The names live here rather than in package main so that the local stack
// (services/autonomicsctl) sets them with the constants the monitor reads.
// The package only declares them.
package monitorenv

// Environment variables of the monitor. Durations are Go durations ("30s",
// "5m"); percentages are numbers from 1 to 100.
const (
	Namespace         = "AUTONOMICS_MONITOR_NAMESPACE"
	HolderID          = "AUTONOMICS_MONITOR_HOLDER_ID"
	EvalInterval      = "AUTONOMICS_MONITOR_EVAL_INTERVAL"
	LeaseTTL          = "AUTONOMICS_MONITOR_LEASE_TTL"
	RepeatInterval    = "AUTONOMICS_MONITOR_REPEAT_INTERVAL"
	Lookback          = "AUTONOMICS_MONITOR_LOOKBACK"
	ResolvedRetention = "AUTONOMICS_MONITOR_RESOLVED_RETENTION"
	SeriesRetention   = "AUTONOMICS_MONITOR_SERIES_RETENTION"
	PrometheusURL     = "AUTONOMICS_MONITOR_PROMETHEUS_URL"
	PrometheusAuth    = "AUTONOMICS_MONITOR_PROMETHEUS_AUTH"
	RemoteWriteURL    = "AUTONOMICS_MONITOR_REMOTE_WRITE_URL"
	QueryParallelism  = "AUTONOMICS_MONITOR_QUERY_PARALLELISM"
	QueryTimeout      = "AUTONOMICS_MONITOR_QUERY_TIMEOUT"
	ReceiptFlush      = "AUTONOMICS_MONITOR_RECEIPT_FLUSH_INTERVAL"
	SampleMaxFuture   = "AUTONOMICS_MONITOR_SAMPLE_MAX_FUTURE"
	SampleMaxAge      = "AUTONOMICS_MONITOR_SAMPLE_MAX_AGE"
	ReceiptWindow     = "AUTONOMICS_MONITOR_RECEIPT_WINDOW"
	Fairness          = "AUTONOMICS_MONITOR_FAIRNESS"
	FairnessMetric    = "AUTONOMICS_MONITOR_FAIRNESS_METRIC"
	FairnessThreshold = "AUTONOMICS_MONITOR_FAIRNESS_THRESHOLD_BP"
	FairnessHyst      = "AUTONOMICS_MONITOR_FAIRNESS_HYSTERESIS_BP"
	FairnessWindow    = "AUTONOMICS_MONITOR_FAIRNESS_WINDOW"
	CPUThreshold      = "AUTONOMICS_MONITOR_CPU_THRESHOLD"
	MemoryThreshold   = "AUTONOMICS_MONITOR_MEMORY_THRESHOLD"
	OutboxDegraded    = "AUTONOMICS_MONITOR_OUTBOX_DEGRADED"
	OutboxCritical    = "AUTONOMICS_MONITOR_OUTBOX_CRITICAL"
	TimersDegraded    = "AUTONOMICS_MONITOR_TIMERS_DEGRADED"
	TimersCritical    = "AUTONOMICS_MONITOR_TIMERS_CRITICAL"
	CheckTimeout      = "AUTONOMICS_MONITOR_CHECK_TIMEOUT"
)
