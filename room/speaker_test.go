package room

import "testing"

func TestSpeakerDetectorHysteresis(t *testing.T) {
	var s speakerDetector
	steps := []struct {
		in   map[ParticipantID]int
		want ParticipantID
	}{
		{map[ParticipantID]int{"a": 100, "b": 10}, ""},  // a loudest once: not yet
		{map[ParticipantID]int{"a": 100, "b": 10}, "a"}, // twice: announced
		{map[ParticipantID]int{"a": 100, "b": 10}, ""},  // no change, no event
		{map[ParticipantID]int{"a": 95, "b": 98}, ""},   // b louder but within margin
		{map[ParticipantID]int{"a": 95, "b": 98}, ""},
		{map[ParticipantID]int{"a": 20, "b": 90}, ""},  // a silent, b loud: once
		{map[ParticipantID]int{"a": 90, "b": 20}, ""},  // a back: b's run broken
		{map[ParticipantID]int{"a": 20, "b": 90}, ""},  // b again, once
		{map[ParticipantID]int{"a": 20, "b": 90}, "b"}, // twice in a row: b
		{map[ParticipantID]int{"a": 30, "b": 40}, ""},  // silence announces nobody
		{map[ParticipantID]int{}, ""},
	}
	for i, st := range steps {
		if got := s.observe(st.in); got != st.want {
			t.Fatalf("step %d: got %q want %q", i, got, st.want)
		}
	}
	s.forget("b")
	if s.current != "" {
		t.Fatal("forgotten speaker still current")
	}
}
