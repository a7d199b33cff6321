package record

import "github.com/prometheus/client_golang/prometheus"

// Metrics count what recordings do; one Metrics serves every Recording of
// a process. It is a prometheus.Collector for the caller to register.
type Metrics struct {
	active        prometheus.Gauge
	files         prometheus.Gauge
	bytes         prometheus.Counter
	writeErrors   prometheus.Counter
	droppedFrames prometheus.Counter
}

// NewMetrics makes the recording metrics, not registered anywhere.
func NewMetrics() *Metrics {
	return &Metrics{
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "confab_recordings_active", Help: "Recordings in progress."}),
		files: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "confab_recording_files_active", Help: "Recording files being written."}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "confab_recording_bytes_written_total", Help: "Bytes written to recording files."}),
		writeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "confab_recording_write_errors_total", Help: "Recording files stopped by a write error (a full disk, an unwritable directory)."}),
		droppedFrames: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "confab_recording_dropped_frames_total", Help: "Frames dropped because a file's writer fell behind."}),
	}
}

func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.active, m.files, m.bytes, m.writeErrors, m.droppedFrames}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
}

// The helpers below accept a nil *Metrics: metrics are optional.

func (m *Metrics) addActive(d float64) {
	if m != nil {
		m.active.Add(d)
	}
}

func (m *Metrics) addFiles(d float64) {
	if m != nil {
		m.files.Add(d)
	}
}

func (m *Metrics) addBytes(n int) {
	if m != nil {
		m.bytes.Add(float64(n))
	}
}

func (m *Metrics) writeError() {
	if m != nil {
		m.writeErrors.Inc()
	}
}

func (m *Metrics) droppedFrame() {
	if m != nil {
		m.droppedFrames.Inc()
	}
}
