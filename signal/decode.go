package signal

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// Decode parses one frame. It fails with CodeBadMessage for anything but a
// UTF-8 JSON object whose known fields have the right types; unknown fields
// are ignored. It does not Validate.
func Decode(b []byte) (*Message, *Error) {
	t := bytes.TrimSpace(b)
	if len(t) == 0 || t[0] != '{' {
		return nil, Errorf(CodeBadMessage, "a message must be a JSON object")
	}
	// encoding/json would quietly turn invalid UTF-8 into U+FFFD; a text
	// frame that is not UTF-8 is exactly what close code 1007 is for.
	if !utf8.Valid(t) {
		return nil, Errorf(CodeBadMessage, "a message must be UTF-8")
	}
	var m Message
	if err := json.Unmarshal(t, &m); err != nil {
		return nil, Errorf(CodeBadMessage, "malformed JSON: %v", err)
	}
	return &m, nil
}
