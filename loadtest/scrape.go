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
	// Relay counts what crossed between this node and the other nodes of
	// a cluster (confab_relay_packets_total and _bytes_total by direction):
	// relayed packets out are in PacketsOut too, relayed packets in in
	// PacketsIn.
	Relay RelayTraffic `json:"relay"`
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
	// Seconds is the time between the two scrapes the counters come
	// from (joins included), for rates.
	Seconds   float64 `json:"seconds"`
	Available bool    `json:"available"`
	samples   map[string]float64
	at        time.Time
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
	return ServerStats{Available: true, samples: m, at: time.Now(), CPUSeconds: m["process_cpu_seconds_total"], RSSBytes: m["process_resident_memory_bytes"],
		Goroutines: m["go_goroutines"], PacketsOut: m["confab_packets_out_total"], PacketsIn: m["confab_packets_in_total"],
		BytesOut: m["confab_bytes_out_total"], Relay: RelayTraffic{
			PacketsOut: m[relayOut("confab_relay_packets_total")], PacketsIn: m[relayIn("confab_relay_packets_total")],
			BytesOut: m[relayOut("confab_relay_bytes_total")], BytesIn: m[relayIn("confab_relay_bytes_total")]},
		PLIsSent: m["confab_plis_sent_total"], PLIsReceived: m["confab_plis_received_total"]}
}

// RelayTraffic is what one node relayed to and from the other nodes.
type RelayTraffic struct {
	PacketsOut float64 `json:"packetsOut"`
	PacketsIn  float64 `json:"packetsIn"`
	BytesOut   float64 `json:"bytesOut"`
	BytesIn    float64 `json:"bytesIn"`
}

func (r RelayTraffic) minus(o RelayTraffic) RelayTraffic {
	return RelayTraffic{r.PacketsOut - o.PacketsOut, r.PacketsIn - o.PacketsIn, r.BytesOut - o.BytesOut, r.BytesIn - o.BytesIn}
}

func (r RelayTraffic) plus(o RelayTraffic) RelayTraffic {
	return RelayTraffic{r.PacketsOut + o.PacketsOut, r.PacketsIn + o.PacketsIn, r.BytesOut + o.BytesOut, r.BytesIn + o.BytesIn}
}

// relayOut and relayIn name a relay metric's sum over the nodes in one
// direction, as parseMetrics keeps it.
func relayOut(name string) string { return name + `{direction="out"}` }
func relayIn(name string) string  { return name + `{direction="in"}` }

// parseMetrics reads an exposition in format (the Prometheus text format
// when unknown) into one value per counter, gauge or untyped metric,
// summing the series of a metric that carries labels; a metric with a
// direction label (the relay's) is also summed per direction, under
// name{direction="out"}.
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
			var v float64
			switch {
			case s.Counter != nil:
				v = s.GetCounter().GetValue()
			case s.Gauge != nil:
				v = s.GetGauge().GetValue()
			case s.Untyped != nil:
				v = s.GetUntyped().GetValue()
			default:
				continue
			}
			m[fam.GetName()] += v
			for _, l := range s.GetLabel() {
				if l.GetName() == "direction" {
					m[fmt.Sprintf("%s{direction=%q}", fam.GetName(), l.GetValue())] += v
				}
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
	out.Relay = s.Relay.minus(before.Relay)
	if before.Available {
		out.Seconds = s.at.Sub(before.at).Seconds()
	}
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
