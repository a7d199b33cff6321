package loadtest

import (
	"errors"
	"fmt"
	"sort"
	"time"
)

// Report is what a run measured.
type Report struct {
	Scenario string   `json:"scenario"`
	Peers    int      `json:"peers"`
	Joined   int      `json:"joined"`
	Failures []string `json:"failures,omitempty"`
	// Refused are the joins a server at its load limits refused at once
	// (server_busy, or 503 over WHIP/WHEP): not failures.
	Refused     []string          `json:"refused,omitempty"`
	JoinMillis  Percentiles       `json:"joinMillis"` // WebSocket open to first RTP of every track known at join
	Duration    float64           `json:"durationSeconds"`
	Subscribers []SubscriberStats `json:"subscribers"`
	Packets     uint64            `json:"packets"`
	LossPercent float64           `json:"lossPercent"`
	Freezes     int               `json:"freezes"`
	Server      ServerStats       `json:"server"`
	// Layers counts received video tracks by the layer last seen on them
	// (judged from keyframe widths: <= 400 low, <= 800 medium, else high).
	Layers map[string]int `json:"layers"`
	// ServerLayers counts them by the layer the server last said it
	// forwards ("layers" messages; "paused" when it forwards none).
	ServerLayers map[string]int `json:"serverLayers"`
	// SentKbps is what the publishers sent, on average over the run.
	SentKbps float64 `json:"sentKbps"`
	// Timeline samples every second while media flows.
	Timeline []Sample `json:"timeline"`
	// JoinSamples are every peer's join time in milliseconds.
	JoinSamples []float64 `json:"joinSamplesMillis"`
	// Churn counts the leave/join cycles of the churn scenario.
	Churn int `json:"churnCycles,omitempty"`
	// Nodes are the figures of each node, in the order of Config.URL.
	Nodes []NodeStats `json:"nodes"`
	// Reconnects counts the rejoins of WebSocket peers (Config.Reconnect);
	// ReconnectMillis times them from the loss to the new welcome, and
	// ResumeMillis from the loss to the first packet received after the
	// rejoin (peers that receive).
	Reconnects      int         `json:"reconnects"`
	ReconnectMillis Percentiles `json:"reconnectMillis"`
	ResumeMillis    Percentiles `json:"resumeMillis"`
	// FullMediaMillis times, from a subscriber's join, its full media:
	// every expected track arriving, every video on the layer it should
	// get, and from then to the end of the run 99 % of the video published
	// for it (judged over 5 s or more). NotFull counts the subscribers that
	// never had it.
	FullMediaMillis Percentiles `json:"fullMediaMillis"`
	NotFull         int         `json:"notFull"`
	// Switches counts pauses for bandwidth, and resumes after them, of
	// tracks the server had forwarded (from its "layers" messages), over
	// ForwardedTracks; MaxSwitches is the most of one track.
	Switches        int `json:"pauseResumeSwitches"`
	ForwardedTracks int `json:"forwardedTracks"`
	MaxSwitches     int `json:"maxSwitchesPerTrack"`
	// MediaPackets and PaddingPackets are what the subscribers received;
	// PaddingPercent is padding as a share of media (the server's probes).
	MediaPackets   uint64  `json:"mediaPackets"`
	PaddingPackets uint64  `json:"paddingPackets"`
	PaddingPercent float64 `json:"paddingPercent"`
	// KeyframeRequests counts those the run's publishers received.
	KeyframeRequests int64 `json:"keyframeRequests"`
	// Delivery is the media (RTP bytes, no padding) all subscribers
	// received, per second from the first join.
	Delivery []DeliveryPoint `json:"delivery"`
	// Delay is the forwarding delay, publisher send to subscriber
	// receive, per packet of the media window.
	Delay ForwardDelay `json:"forwardDelay"`
	// ServerSyscalls are the server's system calls and context switches
	// per forwarded packet (Config.ServerPID; nil without).
	ServerSyscalls *SyscallStats `json:"serverSyscalls,omitempty"`
}

// DeliveryPoint is one second of what all subscribers received.
type DeliveryPoint struct {
	Seconds  float64 `json:"t"` // end of the second, from the first join
	RecvKbps float64 `json:"receivedKbps"`
}

// Sample is one second of a run.
type Sample struct {
	Seconds    float64 `json:"t"`
	RecvKbps   float64 `json:"receivedKbps"`
	SentKbps   float64 `json:"sentKbps"`
	ServerCPU  float64 `json:"serverCpuCores"` // server CPU-seconds per second
	ServerKbps float64 `json:"serverOutKbps"`  // from confab_bytes_out_total
	ServerRSS  float64 `json:"serverResidentMiB"`
	LossPct    float64 `json:"lossPercent"`
	Peers      int     `json:"peers"`
}

// Percentiles of a distribution.
type Percentiles struct {
	P50, P95, P99, Max float64
}

// SubscriberStats is what one peer received.
type SubscriberStats struct {
	Name         string   `json:"name"`
	Tracks       int      `json:"tracks"`
	Expected     int      `json:"expectedTracks"`
	Packets      uint64   `json:"packets"`
	Lost         uint64   `json:"lost"`
	BitrateKbps  float64  `json:"bitrateKbps"`    // media, without padding-only packets
	Padding      uint64   `json:"paddingPackets"` // padding-only packets (bandwidth probes), in Packets too
	Freezes      int      `json:"freezes"`
	Layers       []string `json:"layers,omitempty"`       // per video track, from keyframe widths
	ServerLayers []string `json:"serverLayers,omitempty"` // per video track, from "layers" messages
	Events       int      `json:"roomEvents"`             // signaling events received (not negotiation), WebSocket peers
	Node         string   `json:"node"`                   // the node it joined through first
	Reconnects   int      `json:"reconnects,omitempty"`   // its rejoins
	// FullMediaMillis is the time from its join to full media (see
	// Report), -1 when it never had it.
	FullMediaMillis float64 `json:"fullMediaMillis"`
	MediaPackets    uint64  `json:"mediaPackets"`
	ForwardedTracks int     `json:"forwardedTracks"`
	Switches        int     `json:"pauseResumeSwitches"`
	MaxSwitches     int     `json:"maxSwitchesPerTrack"`
}

// ErrNothingReceived is returned when peers joined but no media arrived.
var ErrNothingReceived = errors.New("no media received")

// addReceived fills in what every peer received: per subscriber, and the
// totals of packets, loss, freezes and layers.
func (rep *Report) addReceived(logs []*receiveLog, joinTimes []float64) {
	rep.JoinMillis = percentiles(joinTimes)
	rep.JoinSamples = joinTimes
	rep.Delay = forwardDelay(logs)
	var lostTotal uint64
	var full []float64
	for _, r := range logs {
		st := r.stats(rep.Duration)
		rep.Subscribers = append(rep.Subscribers, st)
		if st.FullMediaMillis >= 0 {
			full = append(full, st.FullMediaMillis)
		} else if st.Expected > 0 {
			rep.NotFull++
		}
		rep.Switches += st.Switches
		rep.ForwardedTracks += st.ForwardedTracks
		rep.MaxSwitches = max(rep.MaxSwitches, st.MaxSwitches)
		rep.MediaPackets += st.MediaPackets
		rep.PaddingPackets += st.Padding
		rep.Packets += st.Packets
		lostTotal += st.Lost
		rep.Freezes += st.Freezes
		for _, l := range st.Layers {
			rep.Layers[l]++
		}
		for _, l := range st.ServerLayers {
			rep.ServerLayers[l]++
		}
	}
	rep.FullMediaMillis = percentiles(full)
	if rep.MediaPackets > 0 {
		rep.PaddingPercent = 100 * float64(rep.PaddingPackets) / float64(rep.MediaPackets)
	}
	sort.Slice(rep.Subscribers, func(i, j int) bool { return rep.Subscribers[i].Name < rep.Subscribers[j].Name })
	if rep.Packets+lostTotal > 0 {
		rep.LossPercent = 100 * float64(lostTotal) / float64(rep.Packets+lostTotal)
	}
}

// verdict fails a run in which a peer failed or, outside churn (where
// membership changes under everyone), a subscriber missed tracks.
func (rep *Report) verdict() error {
	if len(rep.Failures) > 0 {
		return fmt.Errorf("%d peers failed", len(rep.Failures))
	}
	for _, st := range rep.Subscribers {
		if st.Expected > 0 && (st.Packets == 0 || st.Tracks < st.Expected) && rep.Scenario != "churn" {
			return fmt.Errorf("%w: %s got %d of %d tracks, %d packets", ErrNothingReceived, st.Name, st.Tracks, st.Expected, st.Packets)
		}
	}
	if rep.Packets == 0 {
		return ErrNothingReceived
	}
	return nil
}

func percentiles(xs []float64) Percentiles {
	if len(xs) == 0 {
		return Percentiles{}
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	at := func(q float64) float64 { return s[min(len(s)-1, int(q*float64(len(s))))] }
	return Percentiles{P50: at(0.5), P95: at(0.95), P99: at(0.99), Max: s[len(s)-1]}
}

// addDelivery turns the delivery samples into one point a second from the
// first, and counts the publishers' keyframe requests.
func (rep *Report) addDelivery(points []deliveryPoint, keyReqs int64) {
	rep.KeyframeRequests = keyReqs
	const per = int(time.Second / deliveryEvery)
	for i := per; i < len(points); i += per {
		a, b := points[i-per], points[i]
		dt := b.at.Sub(a.at).Seconds()
		if dt <= 0 || b.bytes < a.bytes {
			continue
		}
		rep.Delivery = append(rep.Delivery, DeliveryPoint{Seconds: b.at.Sub(points[0].at).Seconds(),
			RecvKbps: float64(b.bytes-a.bytes) * 8 / 1000 / dt})
	}
}

// DeliveredKbps is the mean media bitrate all subscribers received between
// from and to seconds after the first join; ok is false when the run has
// no second in that range.
func (rep *Report) DeliveredKbps(from, to float64) (kbps float64, ok bool) {
	n := 0
	for _, p := range rep.Delivery {
		if p.Seconds > from && p.Seconds <= to {
			kbps += p.RecvKbps
			n++
		}
	}
	if n == 0 {
		return 0, false
	}
	return kbps / float64(n), true
}
