package signal

import (
	"strings"
	"testing"
	"unicode"
)

func TestValidate(t *testing.T) {
	yes, no := true, false
	join := func(room, name string, version int) Message {
		return Message{Type: TypeJoin, ID: "1", Room: room, Name: name, Version: version}
	}
	sub := func(s ...Subscription) Message { return Message{Type: TypeSubscribe, ID: "1", Subscriptions: s} }
	cases := []struct {
		name string
		m    Message
		code string // "" means valid
	}{
		// join
		{"join ok", join("standup", "Ada", Version), ""},
		{"join name trimmed", join("r", "  Ada  ", Version), ""},
		{"join name 64 runes", join("r", strings.Repeat("é", MaxNameRunes), Version), ""},
		{"join name 64 runes plus spaces", join("r", " "+strings.Repeat("é", MaxNameRunes)+" ", Version), ""},
		{"join name 65 runes", join("r", strings.Repeat("é", MaxNameRunes+1), Version), CodeInvalidField},
		{"join no name", join("r", "", Version), CodeInvalidField},
		{"join blank name", join("r", " \t ", Version), CodeInvalidField},
		{"join control char", join("r", "a\x07b", Version), CodeInvalidField},
		{"join newline inside", join("r", "a\nb", Version), CodeInvalidField},
		{"join DEL", join("r", "a\x7fb", Version), CodeInvalidField},
		{"join C1 control", join("r", "a\u0085b", Version), CodeInvalidField},
		{"join ESC", join("r", "a\x1b[31mb", Version), CodeInvalidField},
		{"join CR", join("r", "a\rb", Version), CodeInvalidField},
		{"join NUL", join("r", "a\x00b", Version), CodeInvalidField},
		{"join right-to-left override", join("r", "abc\u202Etxt.exe", Version), CodeInvalidField},
		{"join first strong isolate", join("r", "a\u2068b", Version), CodeInvalidField},
		{"join zero-width space", join("r", "ad\u200Bmin", Version), CodeInvalidField},
		{"join zero-width joiner", join("r", "a\u200Db", Version), CodeInvalidField},
		{"join right-to-left mark", join("r", "a\u200Fb", Version), CodeInvalidField},
		{"join word joiner", join("r", "a\u2060b", Version), CodeInvalidField},
		{"join byte order mark", join("r", "\uFEFFAda", Version), CodeInvalidField},
		{"join line separator", join("r", "a\u2028b", Version), CodeInvalidField},
		{"join invalid UTF-8", join("r", "a\xffb", Version), CodeInvalidField},
		{"join replacement character", join("r", "a\uFFFDb", Version), CodeInvalidField},
		{"join markup is text", join("r", "<img src=x onerror=alert(1)>", Version), ""},
		{"join right-to-left script", join("r", "\u05D0\u05D1\u05D2 Ada", Version), ""},
		{"join accents and emoji", join("r", "Zoë 🎻", Version), ""},
		{"join no room", join("", "Ada", Version), CodeInvalidField},
		{"join room charset is the room package's job", join("../etc", "Ada", Version), ""},
		{"join version 2", join("r", "Ada", 2), CodeUnsupportedVersion},
		{"join version missing", join("r", "Ada", 0), CodeUnsupportedVersion},
		{"join with token", Message{Type: TypeJoin, Room: "r", Name: "a", Version: Version, Token: "x.y.z"}, ""},

		// record
		{"record start", Message{Type: TypeRecord, ID: "1", Recording: &yes}, ""},
		{"record stop", Message{Type: TypeRecord, ID: "1", Recording: &no}, ""},
		{"record without recording", Message{Type: TypeRecord, ID: "1"}, CodeInvalidField},

		// offer / answer
		{"offer ok", Message{Type: TypeOffer, ID: "2", SDP: "v=0\r\n"}, ""},
		{"offer empty sdp", Message{Type: TypeOffer, ID: "2"}, CodeInvalidField},
		{"offer sdp at limit", Message{Type: TypeOffer, SDP: strings.Repeat("a", MaxSDPBytes)}, ""},
		{"offer sdp over limit", Message{Type: TypeOffer, SDP: strings.Repeat("a", MaxSDPBytes+1)}, CodeInvalidField},
		{"answer ok", Message{Type: TypeAnswer, SDP: "v=0\r\n"}, ""},
		{"answer empty sdp", Message{Type: TypeAnswer}, CodeInvalidField},
		{"answer sdp over limit", Message{Type: TypeAnswer, SDP: strings.Repeat("a", MaxSDPBytes+1)}, CodeInvalidField},

		// candidate, end_of_candidates
		{"candidate ok", Message{Type: TypeCandidate, Candidate: &Candidate{Candidate: "candidate:1 1 udp 1 127.0.0.1 9 typ host"}}, ""},
		{"candidate empty string is the end-of-candidates form", Message{Type: TypeCandidate, Candidate: &Candidate{}}, ""},
		{"candidate missing", Message{Type: TypeCandidate}, CodeInvalidField},
		{"end_of_candidates", Message{Type: TypeEndOfCandidates}, ""},

		// subscribe
		{"subscribe ok", sub(Subscription{TrackID: "t", MaxLayer: LayerMedium, MaxWidth: 640, MaxHeight: 360}), ""},
		{"subscribe every layer", sub(Subscription{TrackID: "a"}, Subscription{TrackID: "b", MaxLayer: LayerLow}, Subscription{TrackID: "c", MaxLayer: LayerHigh}), ""},
		{"subscribe paused", sub(Subscription{TrackID: "t", Paused: true}), ""},
		{"subscribe none", sub(), CodeInvalidField},
		{"subscribe no trackId", sub(Subscription{MaxLayer: LayerLow}), CodeInvalidField},
		{"subscribe second without trackId", sub(Subscription{TrackID: "t"}, Subscription{}), CodeInvalidField},
		{"subscribe bad layer", sub(Subscription{TrackID: "t", MaxLayer: "ultra"}), CodeInvalidField},
		{"subscribe rid is not a layer name", sub(Subscription{TrackID: "t", MaxLayer: "f"}), CodeInvalidField},
		{"subscribe negative width", sub(Subscription{TrackID: "t", MaxWidth: -1}), CodeInvalidField},
		{"subscribe negative height", sub(Subscription{TrackID: "t", MaxHeight: -1}), CodeInvalidField},

		// chat
		{"chat ok", Message{Type: TypeChat, ID: "5", Text: "hello"}, ""},
		{"chat 4096 runes", Message{Type: TypeChat, Text: strings.Repeat("ß", MaxChatRunes)}, ""},
		{"chat 4097 runes", Message{Type: TypeChat, Text: strings.Repeat("ß", MaxChatRunes+1)}, CodeInvalidField},
		{"chat empty", Message{Type: TypeChat}, CodeInvalidField},

		// mute
		{"mute ok", Message{Type: TypeMute, TrackID: "t", Muted: &yes}, ""},
		{"unmute ok", Message{Type: TypeMute, TrackID: "t", Muted: &no}, ""},
		{"mute without muted", Message{Type: TypeMute, TrackID: "t"}, CodeInvalidField},
		{"mute without trackId", Message{Type: TypeMute, Muted: &yes}, CodeInvalidField},

		// leave
		{"leave", Message{Type: TypeLeave}, ""},

		// types a client may not send, and nonsense
		{"no type", Message{}, CodeInvalidField},
		{"unknown type", Message{Type: "teleport"}, CodeUnknownType},
		{"type is case sensitive", Message{Type: "JOIN"}, CodeUnknownType},
		{"welcome from a client", Message{Type: TypeWelcome}, CodeUnknownType},
		{"ok from a client", Message{Type: TypeOK}, CodeUnknownType},
		{"error from a client", Message{Type: TypeError}, CodeUnknownType},
		{"participant_joined from a client", Message{Type: TypeParticipantJoined}, CodeUnknownType},
		{"participant_left from a client", Message{Type: TypeParticipantLeft}, CodeUnknownType},
		{"track_published from a client", Message{Type: TypeTrackPublished}, CodeUnknownType},
		{"track_unpublished from a client", Message{Type: TypeTrackUnpublished}, CodeUnknownType},
		{"track_updated from a client", Message{Type: TypeTrackUpdated}, CodeUnknownType},
		{"active_speaker from a client", Message{Type: TypeActiveSpeaker}, CodeUnknownType},
		{"layers from a client", Message{Type: TypeLayers}, CodeUnknownType},
		{"publish_layers from a client", Message{Type: TypePublishLayers}, CodeUnknownType},
		{"recording from a client", Message{Type: TypeRecording}, CodeUnknownType},
		{"bye from a client", Message{Type: TypeBye}, CodeUnknownType},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.m.Validate()
			switch {
			case c.code == "" && err != nil:
				t.Errorf("want valid, got %v", err)
			case c.code != "" && err == nil:
				t.Errorf("want %s, got valid", c.code)
			case c.code != "" && err.Code != c.code:
				t.Errorf("want %s, got %v", c.code, err)
			case err != nil && err.Message == "":
				t.Errorf("error %s without a message for people", err.Code)
			}
		})
	}
}

// TestCheckNameTrims: the name that passes is the trimmed one, and every
// hidden character is refused wherever it sits.
func TestCheckNameTrims(t *testing.T) {
	if got, err := CheckName("  Ada Lovelace \t"); err != nil || got != "Ada Lovelace" {
		t.Errorf("CheckName = %q, %v", got, err)
	}
	hidden := []rune{0, 0x1b, '\n', 0x7f, 0x85, 0xad, 0x061c, 0x180e, 0x200b, 0x200c, 0x200d, 0x200e, 0x200f,
		0x2028, 0x2029, 0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2060, 0x2066, 0x2067, 0x2068, 0x2069, 0xfeff, 0xe0041}
	for _, r := range hidden {
		names := []string{"x" + string(r) + "y"}
		if !unicode.IsSpace(r) { // spaces at the ends are trimmed, not refused
			names = append(names, string(r)+"x", "x"+string(r))
		}
		for _, name := range names {
			if _, err := CheckName(name); err == nil || err.Code != CodeInvalidField {
				t.Errorf("CheckName(%q) (U+%04X) = %v, want invalid_field", name, r, err)
			}
		}
	}
}

func TestDecode(t *testing.T) {
	bad := map[string]string{
		"empty":              "",
		"spaces":             "  \n",
		"array":              `[{"type":"join"}]`,
		"null":               "null",
		"number":             "42",
		"string":             `"join"`,
		"truncated":          `{"type":"join"`,
		"type not a string":  `{"type":1}`,
		"version a string":   `{"type":"join","version":"1"}`,
		"version fractional": `{"type":"join","version":1.5}`,
		"muted a string":     `{"type":"mute","trackId":"t","muted":"yes"}`,
		"subscriptions obj":  `{"type":"subscribe","subscriptions":{"trackId":"t"}}`,
		"maxWidth overflow":  `{"type":"subscribe","subscriptions":[{"trackId":"t","maxWidth":1e40}]}`,
		"trailing data":      `{"type":"leave"} {"type":"leave"}`,
		"invalid UTF-8":      "{\"type\":\"chat\",\"text\":\"\xff\xfe\"}",
		"single quotes":      `{'type':'leave'}`,
	}
	for name, in := range bad {
		t.Run(name, func(t *testing.T) {
			m, err := Decode([]byte(in))
			if err == nil || err.Code != CodeBadMessage || m != nil {
				t.Errorf("Decode(%q) = %+v, %v; want bad_message", in, m, err)
			}
		})
	}

	m, err := Decode([]byte(" {\"type\":\"join\",\"id\":\"7\",\"room\":\"r\",\"name\":\"Ada\",\"version\":1,\"future\":{\"x\":[1,2]}} \n"))
	if err != nil {
		t.Fatalf("unknown fields must be ignored: %v", err)
	}
	if m.Type != TypeJoin || m.ID != "7" || m.Room != "r" || m.Name != "Ada" || m.Version != 1 {
		t.Errorf("decoded %+v", m)
	}
	m, err = Decode([]byte(`{"type":"mute","trackId":"t","muted":false}`))
	if err != nil || m.Muted == nil || *m.Muted {
		t.Errorf("muted:false must decode as set and false: %+v %v", m, err)
	}
	m, err = Decode([]byte(`{"type":"candidate","candidate":{"candidate":"c","sdpMid":"0","sdpMLineIndex":0}}`))
	if err != nil || m.Candidate == nil || m.Candidate.SDPMid == nil || *m.Candidate.SDPMid != "0" || m.Candidate.SDPMLineIndex == nil || *m.Candidate.SDPMLineIndex != 0 {
		t.Errorf("candidate: %+v %v", m, err)
	}
}

func TestErrors(t *testing.T) {
	e := Errorf(CodeInvalidField, "name must be 1-%d characters", 64)
	if e.Error() != "invalid_field: name must be 1-64 characters" {
		t.Errorf("Error() = %q", e.Error())
	}
	if AsError(nil) != nil {
		t.Error("AsError(nil) != nil")
	}
	wrapped := AsError(errWrap{e})
	if wrapped != e {
		t.Errorf("AsError of a wrapped *Error = %v, want the same *Error", wrapped)
	}
	if got := AsError(ErrClosed); got.Code != CodeInternal || got.Message != ErrClosed.Error() {
		t.Errorf("AsError(plain error) = %+v", got)
	}
}

type errWrap struct{ err error }

func (w errWrap) Error() string { return "handling join: " + w.err.Error() }
func (w errWrap) Unwrap() error { return w.err }
