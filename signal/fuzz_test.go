package signal

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// FuzzDecode drives the path every client frame takes: Decode, then
// Validate. Seeds live in testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		m, derr := Decode(b)
		if derr != nil {
			if m != nil || derr.Code != CodeBadMessage || derr.Message == "" {
				t.Fatalf("Decode failed with (%+v, %+v)", m, derr)
			}
			return
		}
		if !utf8.Valid(b) {
			t.Fatalf("Decode accepted invalid UTF-8 %q", b)
		}
		verr := m.Validate()
		if verr != nil {
			switch verr.Code {
			case CodeUnknownType, CodeInvalidField, CodeUnsupportedVersion:
			default:
				t.Fatalf("Validate returned code %q", verr.Code)
			}
			if verr.Message == "" {
				t.Fatalf("Validate error %s without a message", verr.Code)
			}
		} else {
			checkValid(t, m)
		}

		// What the server decoded survives a round trip unchanged and gets
		// the same verdict: encoding is what the server sends back (chat
		// text, names) and what the Go client would send.
		enc, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("marshal a decoded message: %v", err)
		}
		m2, derr := Decode(enc)
		if derr != nil {
			t.Fatalf("re-decode %s: %v", enc, derr)
		}
		enc2, _ := json.Marshal(m2)
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("round trip changed the message:\n%s\n%s", enc, enc2)
		}
		if v2 := m2.Validate(); (v2 == nil) != (verr == nil) || (v2 != nil && v2.Code != verr.Code) {
			t.Fatalf("verdict changed in a round trip: %v then %v", verr, v2)
		}
	})
}

// checkValid restates, independently of Validate's code, what a valid
// message promises the room package.
func checkValid(t *testing.T, m *Message) {
	t.Helper()
	switch m.Type {
	case TypeJoin:
		if m.Version != Version || m.Room == "" || !utf8.ValidString(m.Name) {
			t.Fatalf("valid join %+v", m)
		}
		if n := utf8.RuneCountInString(string(bytes.TrimSpace([]byte(m.Name)))); n < 1 || n > MaxNameRunes {
			t.Fatalf("valid join with a %d-rune name", n)
		}
	case TypeOffer, TypeAnswer:
		if m.SDP == "" || len(m.SDP) > MaxSDPBytes {
			t.Fatalf("valid %s with %d bytes of SDP", m.Type, len(m.SDP))
		}
	case TypeCandidate:
		if m.Candidate == nil {
			t.Fatal("valid candidate without a candidate")
		}
	case TypeSubscribe:
		if len(m.Subscriptions) == 0 {
			t.Fatal("valid subscribe without subscriptions")
		}
		for _, s := range m.Subscriptions {
			if s.TrackID == "" || s.MaxWidth < 0 || s.MaxHeight < 0 {
				t.Fatalf("valid subscription %+v", s)
			}
		}
	case TypeChat:
		if n := utf8.RuneCountInString(m.Text); n < 1 || n > MaxChatRunes {
			t.Fatalf("valid chat of %d runes", n)
		}
	case TypeMute:
		if m.TrackID == "" || m.Muted == nil {
			t.Fatalf("valid mute %+v", m)
		}
	case TypeLeave, TypeEndOfCandidates:
	default:
		t.Fatalf("type %q passed Validate", m.Type)
	}
}
