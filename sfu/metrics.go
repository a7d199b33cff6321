package sfu

import "github.com/prometheus/client_golang/prometheus"

// Media-plane counters on the default Prometheus registry. The forwarding
// path adds to them once per incoming packet (not once per subscriber), so
// they cost one atomic add where it matters.
var (
	metricPacketsIn = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "confab_packets_in_total", Help: "RTP packets received from publishers."})
	metricBytesIn = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "confab_bytes_in_total", Help: "RTP bytes received from publishers."})
	metricPacketsOut = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "confab_packets_out_total", Help: "RTP packets forwarded to subscribers."})
	metricBytesOut = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "confab_bytes_out_total", Help: "RTP bytes forwarded to subscribers."})
	metricNACKsReceived = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "confab_nacks_received_total", Help: "Lost packets subscribers asked for (NACKed sequence numbers)."})
	metricNACKsAnswered = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "confab_nacks_answered_total", Help: "NACKed packets resent from the cache."})
	metricPLIsReceived = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "confab_plis_received_total", Help: "Keyframe requests (PLI/FIR) received from subscribers."})
	metricPLIsSent = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "confab_plis_sent_total", Help: "Keyframe requests (PLI) sent to publishers after throttling."})
	metricLayerSwitches = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "confab_layer_switches_total", Help: "Simulcast layer switches (and stream starts) of forwarded tracks."})
	metricBandwidthPauses = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "confab_bandwidth_pauses_total", Help: "Forwarded videos paused because the subscriber's bandwidth had no room for them."})
	metricBandwidthResumes = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "confab_bandwidth_resumes_total", Help: "Videos resumed after a pause for bandwidth."})
	metricPublishedTracks = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "confab_published_tracks", Help: "Tracks being received from publishers."})
	metricForwardedTracks = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "confab_forwarded_tracks", Help: "Tracks being forwarded to subscribers (one per subscriber and track)."})
	// Hand-offs between goroutines on the packet path: each can wake one.
	metricFanOutHandoffs = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "confab_fanout_handoffs_total", Help: "Slices of a packet's subscribers handed to a fan-out writer goroutine."})
	metricUDPBatches = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "confab_udp_send_batches_total", Help: "sendmmsg system calls on the shared UDP port (each follows a wake-up of its flusher or less)."})
	metricUDPBatchedPackets = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "confab_udp_batched_packets_total", Help: "Packets sent by those sendmmsg calls."})
	metricDirectPackets = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "confab_direct_packets_total", Help: "Forwarded packets the server encrypted and queued itself, past pion's send path."})
	metricDirectRTCP = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "confab_direct_rtcp_total", Help: "Subscribers' RTCP datagrams the shared port's reader decrypted and handled itself, past pion's receive path."})
	metricPeers = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "confab_peer_connections", Help: "Open PeerConnections."})
)

func init() {
	prometheus.MustRegister(metricPacketsIn, metricBytesIn, metricPacketsOut, metricBytesOut,
		metricNACKsReceived, metricNACKsAnswered, metricPLIsReceived, metricPLIsSent,
		metricLayerSwitches, metricBandwidthPauses, metricBandwidthResumes, metricPublishedTracks, metricForwardedTracks, metricPeers,
		metricFanOutHandoffs, metricUDPBatches, metricUDPBatchedPackets, metricDirectPackets, metricDirectRTCP)
}
