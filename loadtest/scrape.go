package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// ServerStats are figures scraped from the server's /metrics.
type ServerStats struct {
	CPUSeconds float64 `json:"cpuSeconds"`
	RSSBytes   float64 `json:"residentBytes"`
	Goroutines float64 `json:"goroutines"`
	PacketsOut float64 `json:"packetsOut"`
	PacketsIn  float64 `json:"packetsIn"`
	BytesOut   float64 `json:"bytesOut"`
	CPUPer1000 float64 `json:"cpuSecondsPer1000PacketsOut"`
	// PacketsPerCPUSecond is the media packets forwarded per CPU-second.
	PacketsPerCPUSecond float64 `json:"packetsOutPerCpuSecond"`
	// PLIsSent counts keyframe requests to publishers (after throttling),
	// PLIsReceived those from subscribers.
	PLIsSent     float64 `json:"plisSent"`
	PLIsReceived float64 `json:"plisReceived"`
	// RSSGrowth is how much the resident memory grew over the run, and
	// RSSPerPeer that growth shared by the peers that joined.
	RSSGrowth  float64 `json:"residentGrowthBytes"`
	RSSPerPeer float64 `json:"residentBytesPerPeer"`
	Available  bool    `json:"available"`
	samples    map[string]float64
}

// scrapeServer reads the server's /metrics; missing metrics stay 0, and a
// scrape that fails is not Available.
func scrapeServer(ctx context.Context, base string) ServerStats {
	u := strings.TrimSuffix(base, "/") + "/metrics"
	u = strings.Replace(strings.Replace(u, "ws://", "http://", 1), "wss://", "https://", 1)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return ServerStats{}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ServerStats{}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ServerStats{}
	}
	m, err := parseMetrics(io.LimitReader(resp.Body, 8<<20), expfmt.ResponseFormat(resp.Header))
	if err != nil {
		return ServerStats{}
	}
	return ServerStats{Available: true, samples: m, CPUSeconds: m["process_cpu_seconds_total"], RSSBytes: m["process_resident_memory_bytes"],
		Goroutines: m["go_goroutines"], PacketsOut: m["confab_packets_out_total"], PacketsIn: m["confab_packets_in_total"],
		BytesOut: m["confab_bytes_out_total"], PLIsSent: m["confab_plis_sent_total"], PLIsReceived: m["confab_plis_received_total"]}
}

// parseMetrics reads an exposition in format (the Prometheus text format
// when unknown) into one value per counter, gauge or untyped metric,
// summing the series of a metric that carries labels.
func parseMetrics(r io.Reader, format expfmt.Format) (map[string]float64, error) {
	if format.FormatType() == expfmt.TypeUnknown {
		format = expfmt.NewFormat(expfmt.TypeTextPlain)
	}
	dec := expfmt.NewDecoder(r, format)
	m := map[string]float64{}
	for {
		var fam dto.MetricFamily
		err := dec.Decode(&fam)
		if errors.Is(err, io.EOF) {
			return m, nil
		}
		if err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
		for _, s := range fam.GetMetric() {
			switch {
			case s.Counter != nil:
				m[fam.GetName()] += s.GetCounter().GetValue()
			case s.Gauge != nil:
				m[fam.GetName()] += s.GetGauge().GetValue()
			case s.Untyped != nil:
				m[fam.GetName()] += s.GetUntyped().GetValue()
			}
		}
	}
}

// since turns two scrapes into the run's figures: counters as differences,
// gauges as the later value.
func (s ServerStats) since(before ServerStats) ServerStats {
	if !s.Available {
		return s
	}
	out := s
	out.CPUSeconds = s.CPUSeconds - before.CPUSeconds
	out.PacketsOut = s.PacketsOut - before.PacketsOut
	out.PacketsIn = s.PacketsIn - before.PacketsIn
	out.BytesOut = s.BytesOut - before.BytesOut
	out.PLIsSent = s.PLIsSent - before.PLIsSent
	out.PLIsReceived = s.PLIsReceived - before.PLIsReceived
	if before.Available {
		out.RSSGrowth = s.RSSBytes - before.RSSBytes
	}
	if out.PacketsOut > 0 {
		out.CPUPer1000 = out.CPUSeconds / out.PacketsOut * 1000
	}
	if out.CPUSeconds > 0 {
		out.PacketsPerCPUSecond = out.PacketsOut / out.CPUSeconds
	}
	return out
}
