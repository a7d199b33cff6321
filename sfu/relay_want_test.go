package sfu

import (
	"slices"
	"testing"

	"github.com/pion/webrtc/v4"
)

// What a pulling node asks the origin for follows its subscribers' caps,
// lowered only where bandwidth holds a subscriber below a layer that
// arrives, and stays put once the layers it cannot take are gone.
func TestWantedLayersFollowCapsAndBandwidth(t *testing.T) {
	tests := []struct {
		name    string
		present int    // layers arriving now (rates given for 0..present-1)
		est     int64  // the subscribers' estimate (0: unknown)
		caps    []int8 // each subscriber's cap
		bw      []int8 // each subscriber's bandwidth layer
		paused  []bool // each subscriber paused
		want    []int  // layers wanted
		audio   bool
	}{
		{name: "no estimate: the caps", present: 1, caps: []int8{2, 1}, bw: []int8{2, 2}, want: []int{1, 2}},
		{name: "only layer 0 arrives: still the cap", present: 1, est: 300_000, caps: []int8{2}, bw: []int8{0}, want: []int{2}},
		{name: "bandwidth bound: one above", present: 3, est: 300_000, caps: []int8{2}, bw: []int8{0}, want: []int{1}},
		{name: "bound, top gone: stable", present: 2, est: 300_000, caps: []int8{2}, bw: []int8{0}, want: []int{1}},
		{name: "bandwidth paused: the lowest", present: 3, est: 100_000, caps: []int8{2}, bw: []int8{noLayer}, want: []int{0}},
		{name: "subscriber paused: nothing", present: 3, caps: []int8{2, 0}, bw: []int8{2, 2}, paused: []bool{true, false}, want: []int{0}},
		{name: "audio: layer 0", present: 1, caps: []int8{2}, bw: []int8{2}, want: []int{0}, audio: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rates := make([]int64, tc.present)
			for i := range rates {
				rates[i] = 100_000 * int64(i+1)
			}
			kind := webrtc.RTPCodecTypeVideo
			if tc.audio {
				kind = webrtc.RTPCodecTypeAudio
			}
			var r *Receiver
			for i := range tc.caps {
				alloc, downs := newAllocTest(t, nil, []track{{kind: kind, rates: rates, max: int(tc.caps[i])}})
				alloc.estimate.Store(tc.est)
				d := downs[0]
				if r == nil {
					r = d.recv
				} else {
					d.recv = r
				}
				d.bwLayer = tc.bw[i]
				if tc.paused != nil {
					d.paused = tc.paused[i]
				}
				r.addDownTrack(d)
			}
			if got := r.WantedLayers(); !slices.Equal(got, tc.want) {
				t.Errorf("WantedLayers = %v, want %v", got, tc.want)
			}
		})
	}
}
