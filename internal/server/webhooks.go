package server

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wharf/wharf/internal/notify"
)

// webhookMetrics exposes this replica's webhook delivery attempts by
// outcome: a rising failed or dead count is a receiver in trouble.
func webhookMetrics(c *notify.Counts) prometheus.Collector {
	return &webhookCollector{counts: c, desc: prometheus.NewDesc("wharf_webhook_deliveries_total",
		"Webhook delivery attempts of this replica by outcome: delivered, failed (to be retried), dead (dead-lettered).",
		[]string{"outcome"}, nil)}
}

type webhookCollector struct {
	counts *notify.Counts
	desc   *prometheus.Desc
}

func (c *webhookCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *webhookCollector) Collect(ch chan<- prometheus.Metric) {
	for outcome, n := range map[string]int64{"delivered": c.counts.Delivered.Load(),
		"failed": c.counts.Failed.Load(), "dead": c.counts.Dead.Load()} {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(n), outcome)
	}
}
