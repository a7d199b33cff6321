package signal

import (
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

// Validate checks the fields a client message's type requires. It does not
// judge room names (the room package does): only that one is given.
func (m *Message) Validate() *Error {
	switch m.Type {
	case TypeJoin:
		if m.Version != Version {
			return Errorf(CodeUnsupportedVersion, "protocol version %d is not supported; this server speaks %d", m.Version, Version)
		}
		if m.Room == "" {
			return Errorf(CodeInvalidField, "join needs a room")
		}
		name := strings.TrimSpace(m.Name)
		if n := utf8.RuneCountInString(name); n == 0 || n > MaxNameRunes {
			return Errorf(CodeInvalidField, "name must be 1-%d characters", MaxNameRunes)
		}
		if !utf8.ValidString(name) || strings.IndexFunc(name, unicode.IsControl) >= 0 {
			return Errorf(CodeInvalidField, "name must not contain control characters")
		}
		switch m.Role {
		case "", "viewer", "speaker", "moderator":
		default:
			return Errorf(CodeInvalidField, "role %q: want viewer, speaker or moderator", m.Role)
		}
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
	case TypeRaiseHand:
		if m.Raised == nil {
			return Errorf(CodeInvalidField, "raise_hand needs raised")
		}
	case TypePromote:
		if m.ParticipantID == "" || (m.Role != "speaker" && m.Role != "viewer" && m.Role != "moderator") {
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
