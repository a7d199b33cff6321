package load

import "github.com/prometheus/client_golang/prometheus"

// The node's load, set at every sample (one Monitor per process outside
// tests).
var (
	gaugeCPU = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "confab_load_cpu", Help: "The process's share of the CPUs it may use, 0..1, averaged over the load window."})
	gaugeStreams = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "confab_load_streams", Help: "Streams forwarded (one per subscriber and track, relayed layers included)."})
	gaugePackets = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "confab_load_packets_out_per_second", Help: "RTP packets forwarded per second, averaged over the load window."})
	gaugeBitrate = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "confab_load_bitrate_out", Help: "Bits per second forwarded, averaged over the load window."})
	gaugeRatio = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "confab_load_ratio", Help: "The highest share of a limit in use: 1 is at a limit."})
	gaugeLevel = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "confab_load_level", Help: "0 normal, 1 pressure (shedding), 2 high (shedding more), 3 over (refusing)."})
	gaugeLimit = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "confab_load_limit", Help: "The configured limits (0: none): cpu (share), streams, bitrate (bit/s)."},
		[]string{"resource"})
	levelChanges = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "confab_load_level_changes_total", Help: "Changes of the load level, by the level entered."}, []string{"level"})
)

func init() {
	prometheus.MustRegister(gaugeCPU, gaugeStreams, gaugePackets, gaugeBitrate, gaugeRatio, gaugeLevel, gaugeLimit, levelChanges)
}

func observe(r Reading, ratio float64, l Level, lim Limits) {
	gaugeCPU.Set(r.CPU)
	gaugeStreams.Set(float64(r.Streams))
	gaugePackets.Set(r.PacketsOut)
	gaugeBitrate.Set(r.BitrateOut)
	gaugeRatio.Set(ratio)
	gaugeLevel.Set(float64(l))
	gaugeLimit.WithLabelValues("cpu").Set(lim.CPU)
	gaugeLimit.WithLabelValues("streams").Set(float64(lim.Streams))
	gaugeLimit.WithLabelValues("bitrate").Set(lim.Bitrate)
}
