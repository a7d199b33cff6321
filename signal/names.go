package signal

import "regexp"

// layerNames are the protocol's names of simulcast layer indices, lowest
// first (the media plane counts layers 0, 1, 2).
var layerNames = [...]string{LayerLow, LayerMedium, LayerHigh}

// LayerName returns the protocol name of a layer index, "" for none (a
// negative index: nothing forwarded).
func LayerName(i int) string {
	if i < 0 || i >= len(layerNames) {
		return ""
	}
	return layerNames[i]
}

// LayerIndex parses a protocol layer name; "" means the top layer.
func LayerIndex(name string) (int, bool) {
	if name == "" {
		return len(layerNames) - 1, true
	}
	for i, n := range layerNames {
		if n == name {
			return i, true
		}
	}
	return 0, false
}

// RoomNameRule says which names a room may have, for error messages.
const RoomNameRule = "room names are 1-64 characters of A-Z a-z 0-9 - _ . not starting with a dot"

var roomNameRE = regexp.MustCompile(`^[A-Za-z0-9_\-][A-Za-z0-9_.\-]{0,63}$`)

// ValidRoomName reports whether name may name a room (see RoomNameRule).
// The server, its token minting and the web client's page routes all ask
// here, so a name one accepts no other refuses.
func ValidRoomName(name string) bool { return roomNameRE.MatchString(name) }
