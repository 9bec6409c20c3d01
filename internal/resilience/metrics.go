package resilience

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Collector returns a Prometheus collector of the storage health: per
// table records, file/used/wasted bytes, fragmentation, the times of the
// last backup, verified backup, compaction and successful restore drill,
// degraded mode; and the overall status (0 ok, 1 warning, 2 critical).
// Register it on the hub's registry; each scrape computes Health.
func (c *Coordinator) Collector() prometheus.Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &collector{
		c:          c,
		records:    d("agentcom_storage_records", "Records in the table.", "table"),
		fileBytes:  d("agentcom_storage_file_bytes", "Size of the table file.", "table"),
		usedBytes:  d("agentcom_storage_used_bytes", "Bytes of pages holding data.", "table"),
		wasted:     d("agentcom_storage_wasted_bytes", "Bytes of free pages a compaction would give back.", "table"),
		frag:       d("agentcom_storage_fragmentation_ratio", "Free pages / file size.", "table"),
		lastBackup: d("agentcom_storage_last_backup_timestamp_seconds", "Time of the newest verified backup.", "table"),
		verified:   d("agentcom_storage_last_verified_backup_timestamp_seconds", "When the newest backup was last proven good.", "table"),
		compaction: d("agentcom_storage_last_compaction_timestamp_seconds", "Time of the last successful compaction.", "table"),
		drill:      d("agentcom_storage_last_drill_success_timestamp_seconds", "Time of the last successful restore drill.", "table"),
		degraded:   d("agentcom_storage_degraded", "1 while the table runs empty after data loss.", "table"),
		available:  d("agentcom_storage_available", "1 when the table can be read.", "table"),
		status:     d("agentcom_storage_health_status", "Storage health: 0 ok, 1 warning, 2 critical."),
	}
}

type collector struct {
	c                                           *Coordinator
	records, fileBytes, usedBytes, wasted, frag *prometheus.Desc
	lastBackup, verified, compaction, drill     *prometheus.Desc
	degraded, available, status                 *prometheus.Desc
}

func (m *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		m.records, m.fileBytes, m.usedBytes, m.wasted, m.frag, m.lastBackup,
		m.verified, m.compaction, m.drill, m.degraded, m.available, m.status,
	} {
		ch <- d
	}
}

func (m *collector) Collect(ch chan<- prometheus.Metric) {
	h := m.c.Health()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	stamp := func(d *prometheus.Desc, v *int64, table string) {
		if v != nil {
			gauge(d, float64(*v)/1000, table)
		}
	}
	for _, t := range h.Tables {
		gauge(m.records, float64(t.RecordCount), t.Table)
		gauge(m.fileBytes, float64(t.FileSizeBytes), t.Table)
		gauge(m.usedBytes, float64(t.UsedBytes), t.Table)
		gauge(m.wasted, float64(t.WastedBytes), t.Table)
		gauge(m.frag, t.FragmentationRatio, t.Table)
		stamp(m.lastBackup, t.LastBackupAt, t.Table)
		stamp(m.verified, t.LastVerifiedBackupAt, t.Table)
		stamp(m.compaction, t.LastCompactionAt, t.Table)
		stamp(m.drill, t.LastDrillAt, t.Table)
		gauge(m.degraded, b2f(t.Degraded != nil), t.Table)
		gauge(m.available, b2f(t.Error == ""), t.Table)
	}
	status := map[string]float64{StatusOK: 0, StatusWarning: 1, StatusCritical: 2}[h.Status]
	gauge(m.status, status)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
