package server

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wharf/wharf/internal/registry"
)

// gcTickMax bounds how long a replica waits between looks at whether a
// collection is due, so that the replicas share one schedule: the job's
// last start is in the database, and whichever replica looks first once
// the interval has passed runs it. Shorter intervals are looked at four
// times an interval, so that a run is at most a quarter late.
const gcTickMax = time.Minute

// collectGarbage runs the scheduled garbage collection until ctx ends.
func (s *Server) collectGarbage(ctx context.Context) {
	gc := s.registry.GCRuns()
	if gc == nil || gc.Interval() <= 0 {
		return
	}
	repeat(ctx, min(max(gc.Interval()/4, time.Millisecond), gcTickMax), func() {
		if _, _, err := gc.Tick(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("scheduled garbage collection not started", "err", err)
		}
	})
}

// replicaName names this process in job reports: the host name (a pod's
// name on Kubernetes) and the process id.
func replicaName() string {
	host, err := os.Hostname()
	if err != nil {
		host = "wharf"
	}
	return fmt.Sprintf("%s:%d", host, os.Getpid())
}

// gcCollector exports what this process's garbage collections did.
type gcCollector struct{ gc *registry.GCRuns }

var (
	gcRunsDesc     = prometheus.NewDesc("wharf_gc_runs_total", "Garbage collection runs by this process, by outcome.", []string{"outcome"}, nil)
	gcBytesDesc    = prometheus.NewDesc("wharf_gc_reclaimed_bytes_total", "Blob bytes garbage collection by this process deleted.", nil, nil)
	gcLastDesc     = prometheus.NewDesc("wharf_gc_last_run_timestamp_seconds", "When this process's last garbage collection ended (0: none yet).", nil, nil)
	gcDurationDesc = prometheus.NewDesc("wharf_gc_last_run_duration_seconds", "How long this process's last garbage collection took.", nil, nil)
)

func (c *gcCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- gcRunsDesc
	ch <- gcBytesDesc
	ch <- gcLastDesc
	ch <- gcDurationDesc
}

func (c *gcCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.gc.Stats()
	for outcome, n := range st.Runs {
		ch <- prometheus.MustNewConstMetric(gcRunsDesc, prometheus.CounterValue, float64(n), outcome)
	}
	ch <- prometheus.MustNewConstMetric(gcBytesDesc, prometheus.CounterValue, float64(st.BytesReclaimed))
	last := 0.0
	if !st.LastFinished.IsZero() {
		last = float64(st.LastFinished.UnixNano()) / 1e9
	}
	ch <- prometheus.MustNewConstMetric(gcLastDesc, prometheus.GaugeValue, last)
	ch <- prometheus.MustNewConstMetric(gcDurationDesc, prometheus.GaugeValue, st.LastDuration.Seconds())
}
