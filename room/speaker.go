package room

import "time"

// Active speaker detection: every speakerInterval the room compares the
// mean loudness of each microphone over the interval. A new speaker is
// announced only after being the loudest for speakerHold intervals in a row
// and clearly louder than the current one, so the highlight does not
// flicker between people talking over each other.
const (
	speakerInterval = 300 * time.Millisecond
	speakerHold     = 2
	// speakerFloor is the least loudness (127 minus dBov) that counts as
	// speech: about -50 dBov.
	speakerFloor = 77
	// speakerMargin is how much louder a challenger must be.
	speakerMargin = 5
)

// speakerDetector holds the hysteresis state; it is pure so it can be
// tested with made-up loudness series.
type speakerDetector struct {
	current    ParticipantID
	candidate  ParticipantID
	candidateN int
}

// observe takes one interval's loudness per participant and returns the new
// dominant speaker, or "" when it did not change.
func (s *speakerDetector) observe(loudness map[ParticipantID]int) ParticipantID {
	best, bestVal := ParticipantID(""), 0
	for id, v := range loudness {
		if v > bestVal || (v == bestVal && id < best) {
			best, bestVal = id, v
		}
	}
	if best == "" || bestVal < speakerFloor || best == s.current {
		s.candidate, s.candidateN = "", 0
		return ""
	}
	if cur, ok := loudness[s.current]; ok && cur >= speakerFloor && bestVal < cur+speakerMargin {
		s.candidate, s.candidateN = "", 0
		return ""
	}
	if best != s.candidate {
		s.candidate, s.candidateN = best, 0
	}
	s.candidateN++
	if s.candidateN < speakerHold {
		return ""
	}
	s.current, s.candidate, s.candidateN = best, "", 0
	return best
}

// forget drops a participant who left.
func (s *speakerDetector) forget(id ParticipantID) {
	if s.current == id {
		s.current = ""
	}
	if s.candidate == id {
		s.candidate, s.candidateN = "", 0
	}
}
