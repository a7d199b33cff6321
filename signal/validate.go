package signal

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on message fields.
const (
	MaxNameRunes = 64
	MaxChatRunes = 4096
	MaxSDPBytes  = 64 << 10
)

// CheckName trims a display name and checks it: 1-MaxNameRunes characters
// of valid UTF-8, none of them hidden (see HiddenRune). Every way a name
// enters a room (join, WHIP's ?name=, a token's name claim) goes through it,
// so what one path refuses no other lets in.
func CheckName(name string) (string, *Error) {
	name = strings.TrimSpace(name)
	if !utf8.ValidString(name) {
		return "", Errorf(CodeInvalidField, "name must be valid UTF-8")
	}
	if n := utf8.RuneCountInString(name); n == 0 || n > MaxNameRunes {
		return "", Errorf(CodeInvalidField, "name must be 1-%d characters", MaxNameRunes)
	}
	if i := strings.IndexFunc(name, HiddenRune); i >= 0 {
		r, _ := utf8.DecodeRuneInString(name[i:])
		return "", Errorf(CodeInvalidField, "name must not contain control, formatting or invisible characters (found U+%04X)", r)
	}
	return name, nil
}

// HiddenRune reports the characters a name or identity shown to others may
// not hold: control characters (C0, DEL, C1: terminal escapes, line breaks,
// NUL), format characters (bidi embeddings, overrides and isolates
// U+202A-202E and U+2066-2069, zero-width characters U+200B-200F, U+2060 and
// U+FEFF, soft hyphen, tags), and the line and paragraph separators. Each
// can make a name look like another, reorder the text around it, or break
// a log line.
func HiddenRune(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) ||
		unicode.Is(unicode.Zl, r) || unicode.Is(unicode.Zp, r) || r == utf8.RuneError
}

// Validate checks the fields a client message's type requires. It does not
// judge room names (the room package does): only that one is given.
func (m *Message) Validate() *Error {
	switch m.Type {
	case TypeJoin:
		return m.validateJoin()
	case TypeOffer, TypeAnswer:
		if m.SDP == "" {
			return Errorf(CodeInvalidField, "%s needs sdp", m.Type)
		}
		if len(m.SDP) > MaxSDPBytes {
			return Errorf(CodeInvalidField, "sdp is larger than %d bytes", MaxSDPBytes)
		}
	case TypeCandidate:
		if m.Candidate == nil {
			return Errorf(CodeInvalidField, "candidate needs a candidate object")
		}
	case TypeSubscribe:
		return m.validateSubscribe()
	case TypeChat:
		if n := utf8.RuneCountInString(m.Text); n == 0 || n > MaxChatRunes {
			return Errorf(CodeInvalidField, "chat text must be 1-%d characters", MaxChatRunes)
		}
	case TypeMute:
		if m.TrackID == "" || m.Muted == nil {
			return Errorf(CodeInvalidField, "mute needs trackId and muted")
		}
	case TypeRemove:
		if m.ParticipantID == "" {
			return Errorf(CodeInvalidField, "remove needs participantId")
		}
	case TypeLectureSettings:
		if m.AudienceChat == nil {
			return Errorf(CodeInvalidField, "lecture_settings needs audienceChat")
		}
	case TypeRecord:
		if m.Recording == nil {
			return Errorf(CodeInvalidField, "record needs recording (true to start, false to stop)")
		}
	case TypeRaiseHand:
		if m.Raised == nil {
			return Errorf(CodeInvalidField, "raise_hand needs raised")
		}
	case TypePromote:
		if m.ParticipantID == "" || (m.Role != RoleSpeaker && m.Role != RoleViewer && m.Role != RoleModerator) {
			return Errorf(CodeInvalidField, "promote needs participantId and role speaker, viewer or moderator")
		}
	case TypeLeave, TypeEndOfCandidates:
	case "":
		return Errorf(CodeInvalidField, "message without type")
	default:
		return Errorf(CodeUnknownType, "unknown message type %q", m.Type)
	}
	return nil
}

// validateJoin checks a join: version, room, name, the role asked for and
// the video codecs listed.
func (m *Message) validateJoin() *Error {
	if m.Version != Version {
		return Errorf(CodeUnsupportedVersion, "protocol version %d is not supported; this server speaks %d", m.Version, Version)
	}
	if m.Room == "" {
		return Errorf(CodeInvalidField, "join needs a room")
	}
	if _, err := CheckName(m.Name); err != nil {
		return err
	}
	switch m.Role {
	case "", RoleViewer, RoleSpeaker, RoleModerator:
	default:
		return Errorf(CodeInvalidField, "role %q: want viewer, speaker or moderator", m.Role)
	}
	if len(m.VideoCodecs) > len(VideoCodecs) {
		return Errorf(CodeInvalidField, "videoCodecs lists %d codecs; there are %d", len(m.VideoCodecs), len(VideoCodecs))
	}
	for _, c := range m.VideoCodecs {
		if !slices.Contains(VideoCodecs, c) {
			return Errorf(CodeInvalidField, "videoCodecs: %q is not one of %v", c, VideoCodecs)
		}
	}
	return nil
}

// validateSubscribe checks each subscription's track, layer and size caps.
func (m *Message) validateSubscribe() *Error {
	if len(m.Subscriptions) == 0 {
		return Errorf(CodeInvalidField, "subscribe needs at least one subscription")
	}
	for _, s := range m.Subscriptions {
		if s.TrackID == "" {
			return Errorf(CodeInvalidField, "subscription without trackId")
		}
		switch s.MaxLayer {
		case "", LayerLow, LayerMedium, LayerHigh:
		default:
			return Errorf(CodeInvalidField, "maxLayer %q: want low, medium or high", s.MaxLayer)
		}
		if s.MaxWidth < 0 || s.MaxHeight < 0 {
			return Errorf(CodeInvalidField, "maxWidth and maxHeight must not be negative")
		}
	}
	return nil
}
