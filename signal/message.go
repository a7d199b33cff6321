// Package signal defines Confab's signaling protocol: the JSON messages that
// travel over one WebSocket per participant, their validation, the server side
// of the connection (limits, keepalive, bounded write queue) and a Go client.
//
// docs/protocol.md is the contract; this file is its Go form.
package signal

// Version is the protocol version this package speaks. A join with another
// version is refused with CodeUnsupportedVersion.
const Version = 1

// Message types. Requests from the client carry an "id"; the server's
// response (welcome, answer, ok, error) repeats it.
const (
	// client -> server
	TypeJoin            = "join"             // request: enter a room
	TypeLeave           = "leave"            // leave the room; the server closes the socket
	TypeSubscribe       = "subscribe"        // request: per-track layer / pause preferences
	TypeChat            = "chat"             // request: text to everyone in the room
	TypeMute            = "mute"             // request: announce that one of my tracks is muted / unmuted (a moderator: mute anyone's)
	TypeRemove          = "remove"           // request (moderator): remove a participant from the room
	TypeRaiseHand       = "raise_hand"       // request (lecture audience): raise or lower a hand
	TypePromote         = "promote"          // request (moderator): give a participant another role
	TypeLectureSettings = "lecture_settings" // request (moderator): e.g. the audience's chat on or off; also the event
	TypeRecord          = "record"           // request (moderator): start or stop recording the room

	// both directions
	TypeOffer           = "offer"             // SDP offer (client offers carry an id)
	TypeAnswer          = "answer"            // SDP answer
	TypeCandidate       = "candidate"         // one trickled ICE candidate
	TypeEndOfCandidates = "end_of_candidates" // the sender's gathering is complete

	// server -> client
	TypeWelcome           = "welcome"
	TypeOK                = "ok"
	TypeError             = "error"
	TypeParticipantJoined = "participant_joined"
	TypeParticipantLeft   = "participant_left"
	TypeTrackPublished    = "track_published"
	TypeTrackUnpublished  = "track_unpublished"
	TypeTrackUpdated      = "track_updated" // muted state or layers changed
	TypeActiveSpeaker     = "active_speaker"
	TypeLayers            = "layers"      // forwarding decisions for my subscriptions
	TypeBye               = "bye"         // the server is about to close this connection
	TypeAudience          = "audience"    // how many watch without being members (throttled)
	TypeHand              = "hand"        // to moderators: a hand raised or lowered
	TypePermissions       = "permissions" // your role and permissions changed
	TypeRoomCodec         = "room_codec"  // the video codec publishers should send changed
	TypeRecording         = "recording"   // the room's recording started or stopped (to moderators: with the error that stopped it)
	// TypePublishLayers tells a publisher which simulcast encodings of one
	// of its tracks anyone needs (dynacast): send those, pause the others.
	TypePublishLayers = "publish_layers"
)

// Error codes: stable strings clients may branch on.
const (
	CodeBadMessage           = "bad_message"           // not JSON, or fields of the wrong type
	CodeUnknownType          = "unknown_type"          // "type" is not one this version knows
	CodeInvalidField         = "invalid_field"         // a field is missing or out of range
	CodeUnsupportedVersion   = "unsupported_version"   // join with a version the server does not speak
	CodeNotJoined            = "not_joined"            // a room message before join
	CodeAlreadyJoined        = "already_joined"        // a second join on one connection
	CodeInvalidRoom          = "invalid_room"          // room name fails validation
	CodeRoomFull             = "room_full"             // the room is at capacity
	CodeTooManyRooms         = "too_many_rooms"        // the server is at its room limit
	CodeInvalidState         = "invalid_state"         // e.g. an answer when no offer is outstanding
	CodeInvalidSDP           = "invalid_sdp"           // SDP could not be parsed or applied
	CodeInvalidCandidate     = "invalid_candidate"     // candidate could not be parsed
	CodeGlare                = "glare"                 // client offer ignored: the server's offer wins
	CodeUnknownTrack         = "unknown_track"         // a track id that does not exist
	CodeForbidden            = "forbidden"             // the participant lacks the permission
	CodeRateLimited          = "rate_limited"          // too many messages
	CodeTooManyTracks        = "too_many_tracks"       // publish limit reached
	CodeUnauthorized         = "unauthorized"          // the server requires a token and none was given
	CodeInvalidToken         = "invalid_token"         // token malformed, badly signed, or without identity
	CodeTokenExpired         = "token_expired"         // token past its expiry
	CodeWrongRoom            = "wrong_room"            // token is for another room
	CodeShuttingDown         = "shutting_down"         // the server is draining
	CodeServerBusy           = "server_busy"           // the server is at its load limits: retryAfter seconds
	CodeRedirect             = "redirect"              // join refused here: join again at url (another node)
	CodeRemoved              = "removed"               // bye: a moderator removed this participant
	CodeRecordingUnavailable = "recording_unavailable" // this server does not record (no recording directory)
	CodeRecordingFailed      = "recording_failed"      // the recording could not start, or a write error stopped it
	CodeInternal             = "internal"              // the server failed; not the client's fault
)

// Track sources.
const (
	SourceCamera      = "camera"
	SourceMicrophone  = "microphone"
	SourceScreen      = "screen"
	SourceScreenAudio = "screen_audio"
)

// Role names: a join may ask for one, promote gives one, and members are
// shown theirs. What each may do is the server's (room/access).
const (
	RoleViewer    = "viewer"
	RoleSpeaker   = "speaker"
	RoleModerator = "moderator"
)

// Video codecs a room can use, in the server's order of preference: VP8
// first (the server rewrites its descriptor to splice simulcast layers),
// then H.264 (what every browser decodes, some nothing else).
const (
	CodecVP8  = "video/VP8"
	CodecH264 = "video/H264"
)

// VideoCodecs lists the room codecs in order of preference.
var VideoCodecs = []string{CodecVP8, CodecH264}

// Layer names used in subscribe preferences and layer reports, lowest first.
// Publishers may use the RIDs q/h/f or l/m/h; the server maps both onto these.
const (
	LayerLow    = "low"
	LayerMedium = "medium"
	LayerHigh   = "high"
)

// Message is one signaling frame. Only the fields of its type are set; the
// rest are omitted from the JSON. A flat shape keeps clients in any language
// simple: decode once, switch on Type.
type Message struct {
	Type string `json:"type"`
	ID   string `json:"id,omitempty"`

	// join
	Room    string `json:"room,omitempty"`
	Name    string `json:"name,omitempty"`
	Version int    `json:"version,omitempty"`
	Token   string `json:"token,omitempty"`
	// Lecture asks for a lecture room (in join; honoured when the join
	// creates the room) and says a room is one (in welcome).
	Lecture bool `json:"lecture,omitempty"`
	// VideoCodecs (join) are the video codecs (MIME types) the client can
	// both send and decode; none means any.
	VideoCodecs []string `json:"videoCodecs,omitempty"`
	// VideoCodec (welcome, room_codec) is the codec every member can
	// decode, which publishers should send.
	VideoCodec string `json:"videoCodec,omitempty"`

	// welcome
	Participant *Participant  `json:"participant,omitempty"` // welcome: you; joined / left: them
	Members     []Participant `json:"members,omitempty"`
	Tracks      []Track       `json:"tracks,omitempty"` // welcome: published tracks; offer: what the client publishes
	ICEServers  []ICEServer   `json:"iceServers,omitempty"`
	Permissions *Permissions  `json:"permissions,omitempty"` // welcome: what you may do

	// offer / answer
	SDP string `json:"sdp,omitempty"`
	// Mids maps a media section of a server offer to the track it carries,
	// so a subscriber can tell its incoming tracks apart.
	Mids map[string]string `json:"mids,omitempty"`

	// candidate
	Candidate *Candidate `json:"candidate,omitempty"`

	// track events
	Track *Track `json:"track,omitempty"`

	// subscribe
	Subscriptions []Subscription `json:"subscriptions,omitempty"`
	// layers
	Decisions []LayerDecision `json:"decisions,omitempty"`

	// chat
	Text string `json:"text,omitempty"`
	From string `json:"from,omitempty"` // participant id of the sender (server -> client)

	// mute
	TrackID string `json:"trackId,omitempty"`
	Muted   *bool  `json:"muted,omitempty"`

	// active_speaker
	Speaker string `json:"speaker,omitempty"`

	// remove: the participant a moderator removes
	ParticipantID string `json:"participantId,omitempty"`

	// audience: viewers watching without being members (WHEP players and
	// a lecture's viewers)
	Audience int `json:"audience,omitempty"`

	// raise_hand, hand
	Raised *bool `json:"raised,omitempty"`
	// join: the role asked for (it can only lower the permissions the
	// token or the open room gives); promote: the new role; permissions:
	// the role now held
	Role string `json:"role,omitempty"`
	// welcome (moderators of a lecture): raised hands
	Hands []Participant `json:"hands,omitempty"`
	// lecture_settings (and welcome of a lecture): may the audience chat
	AudienceChat *bool `json:"audienceChat,omitempty"`
	// record: start (true) or stop (false) recording; recording: whether
	// the room is being recorded now; welcome: true when it is (absent:
	// it is not)
	Recording *bool `json:"recording,omitempty"`

	// error / bye
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
	// error server_busy: seconds to wait before trying again
	RetryAfter int `json:"retryAfter,omitempty"`
	// error redirect: the base URL of the node to join instead
	URL string `json:"url,omitempty"`
}

// Participant describes a member of a room.
type Participant struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Identity is the token's subject when the server requires tokens.
	Identity string `json:"identity,omitempty"`
	Role     string `json:"role,omitempty"`
}

// Permissions is what a participant may do in its room.
type Permissions struct {
	Publish   bool `json:"publish"`
	Subscribe bool `json:"subscribe"`
	Chat      bool `json:"chat"`
	Moderate  bool `json:"moderate"`
}

// Track describes a published track. In a client offer only ID (the
// MediaStreamTrack id, i.e. the msid track id in the SDP) and Source are read.
type Track struct {
	ID          string   `json:"id"`
	Participant string   `json:"participant,omitempty"`
	Kind        string   `json:"kind,omitempty"` // "audio" or "video"
	StreamID    string   `json:"streamId,omitempty"`
	Source      string   `json:"source,omitempty"`
	Codec       string   `json:"codec,omitempty"`  // mime type, e.g. "video/VP8"
	Layers      []string `json:"layers,omitempty"` // simulcast layers the publisher sends
	// RIDs (publish_layers) are the publisher's own RIDs of the encodings
	// to keep sending; the others are paused until named again.
	RIDs  []string `json:"rids,omitempty"`
	Muted bool     `json:"muted,omitempty"`
	// MutedBy is the moderator who muted the track; forwarding is stopped
	// until the owner unmutes it.
	MutedBy string `json:"mutedBy,omitempty"`
}

// Candidate is an ICE candidate as the browser's RTCIceCandidateInit has it.
type Candidate struct {
	Candidate        string  `json:"candidate"`
	SDPMid           *string `json:"sdpMid,omitempty"`
	SDPMLineIndex    *uint16 `json:"sdpMLineIndex,omitempty"`
	UsernameFragment *string `json:"usernameFragment,omitempty"`
}

// ICEServer is a STUN or TURN server the client should use.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// Subscription is a subscriber's wish for one track.
type Subscription struct {
	TrackID string `json:"trackId"`
	// MaxLayer caps the simulcast layer (low, medium, high); empty means high.
	MaxLayer string `json:"maxLayer,omitempty"`
	// MaxWidth / MaxHeight cap the resolution; 0 means no cap.
	MaxWidth  int `json:"maxWidth,omitempty"`
	MaxHeight int `json:"maxHeight,omitempty"`
	// Paused stops forwarding the track entirely (a hidden tile).
	Paused bool `json:"paused,omitempty"`
	// Background: the tile is in a hidden tab. The track is forwarded,
	// but it is the first paused when the server sheds load.
	Background bool `json:"background,omitempty"`
}

// LayerDecision reports how the server forwards one track to this subscriber.
type LayerDecision struct {
	TrackID   string `json:"trackId"`
	Current   string `json:"current"`          // layer being forwarded now, or "" when paused
	Target    string `json:"target"`           // layer the server is switching to
	Bandwidth int    `json:"bandwidth"`        // the subscriber's estimated bandwidth, bit/s
	Reason    string `json:"reason"`           // why: "requested", "bandwidth", "publisher", "paused"
	Paused    bool   `json:"paused,omitempty"` // nothing is forwarded
}
