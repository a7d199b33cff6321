package cluster

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// metrics are one node's cluster metrics. They are not on the default
// registry: tests run several nodes in one process, and cmd registers
// the one node it runs (Node.Collector).
type metrics struct {
	nodes       prometheus.GaugeFunc
	connected   prometheus.Gauge
	reconnects  prometheus.Counter
	in, out     *prometheus.CounterVec // by kind
	dropped     *prometheus.CounterVec // by reason
	reqSeconds  *prometheus.HistogramVec
	reqFailures *prometheus.CounterVec // by kind and reason
}

func newMetrics(n *Node) *metrics {
	m := &metrics{
		nodes: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "confab_cluster_nodes", Help: "Live cluster nodes seen by this node, itself included."},
			func() float64 { return float64(n.table.count() + 1) }),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "confab_cluster_connected", Help: "1 while the NATS connection is up."}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "confab_cluster_reconnects_total", Help: "NATS reconnections after a lost connection."}),
		in: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "confab_cluster_messages_in_total", Help: "Cluster messages accepted, by kind."}, []string{"kind"}),
		out: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "confab_cluster_messages_out_total", Help: "Cluster messages sent, by kind."}, []string{"kind"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "confab_cluster_dropped_total", Help: "Cluster messages dropped, by reason."}, []string{"reason"}),
		reqSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "confab_cluster_request_seconds", Help: "Duration of requests to other nodes, by kind.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}, []string{"kind"}),
		reqFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "confab_cluster_request_failures_total", Help: "Requests to other nodes that failed, by kind and reason."},
			[]string{"kind", "reason"}),
	}
	for _, r := range []string{DropParse, DropVersion, DropEcho, DropUnknownNode, DropRoomMismatch, DropSlowConsumer} {
		m.dropped.WithLabelValues(r) // export zeros, so rates work from the start
	}
	return m
}

func (m *metrics) drop(reason string) { m.dropped.WithLabelValues(reason).Inc() }

func (m *metrics) observeRequest(kind string, d time.Duration, err error) {
	if !validKind(kind) {
		kind = "invalid"
	}
	m.reqSeconds.WithLabelValues(kind).Observe(d.Seconds())
	if err != nil {
		m.reqFailures.WithLabelValues(kind, failureReason(err)).Inc()
	}
}

// failureReason is the label of a failed request.
func failureReason(err error) string {
	var re *RemoteError
	switch {
	case errors.As(err, &re):
		return "remote"
	case errors.Is(err, ErrTimeout):
		return "timeout"
	case errors.Is(err, ErrNoResponders):
		return "no_responders"
	case errors.Is(err, ErrUnknownNode):
		return "unknown_node"
	case errors.Is(err, ErrNotConnected):
		return "not_connected"
	case errors.Is(err, ErrClosed):
		return "closed"
	case errors.Is(err, ErrBadReply):
		return "bad_reply"
	case errors.Is(err, ErrBadArgument):
		return "bad_argument"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return "other"
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.nodes, m.connected, m.reconnects, m.in, m.out, m.dropped, m.reqSeconds, m.reqFailures}
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
}

// Stats is a snapshot of one node's metrics, for tests and status pages.
type Stats struct {
	Nodes      int               // live nodes, this one included
	Connected  bool              // NATS connection up
	Reconnects uint64            // reconnections after a lost connection
	In         map[string]uint64 // messages accepted, by kind
	Out        map[string]uint64 // messages sent, by kind
	Dropped    map[string]uint64 // messages dropped, by reason
	Requests   map[string]uint64 // requests made, by kind
	Failures   map[string]uint64 // failed requests, by reason
}

// Stats reads the node's metrics without a scrape.
func (n *Node) Stats() Stats {
	m := n.metrics
	return Stats{
		Nodes:      n.table.count() + 1,
		Connected:  n.nc.IsConnected(),
		Reconnects: uint64(readMetric(m.reconnects).GetCounter().GetValue()),
		In:         byLabel(m.in, "kind"),
		Out:        byLabel(m.out, "kind"),
		Dropped:    byLabel(m.dropped, "reason"),
		Requests:   byLabel(m.reqSeconds, "kind"),
		Failures:   byLabel(m.reqFailures, "reason"),
	}
}

func readMetric(metric prometheus.Metric) *dto.Metric {
	var pb dto.Metric
	if err := metric.Write(&pb); err != nil {
		return &dto.Metric{}
	}
	return &pb
}

// byLabel sums a vector's counters (or histogram counts) by one label.
func byLabel(c prometheus.Collector, label string) map[string]uint64 {
	ch := make(chan prometheus.Metric)
	go func() {
		c.Collect(ch)
		close(ch)
	}()
	out := map[string]uint64{}
	for metric := range ch {
		pb := readMetric(metric)
		v := uint64(pb.GetCounter().GetValue())
		if h := pb.GetHistogram(); h != nil {
			v = h.GetSampleCount()
		}
		for _, lp := range pb.GetLabel() {
			if lp.GetName() == label {
				out[lp.GetValue()] += v
			}
		}
	}
	return out
}
