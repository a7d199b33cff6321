package cluster

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestDecodeEnvelope(t *testing.T) {
	for _, tc := range []struct {
		in     string
		reason string // "" = accepted
	}{
		{`{"v":1,"node":"a","kind":"k","seq":3,"data":{"x":1}}`, ""},
		{`{"v":1,"node":"a-_9Z","room":"r.1","kind":"room.member","seq":0}`, ""},
		{``, DropParse},
		{`null`, DropVersion},
		{`{}`, DropVersion},
		{`{"v":"1","node":"a","kind":"k"}`, DropParse},
		{`{"v":1.5,"node":"a","kind":"k"}`, DropParse},
		{`{"v":2,"node":"a","kind":"k"}`, DropVersion},
		{`{"v":1,"node":"","kind":"k"}`, DropParse},
		{`{"v":1,"node":"a.b","kind":"k"}`, DropParse},
		{`{"v":1,"node":"a","kind":""}`, DropParse},
		{`{"v":1,"node":"a","kind":"has space"}`, DropParse},
		{`{"v":1,"node":"a","kind":"k","data":}`, DropParse},
		{`{"v":1,"node":"a","kind":"k"} trailing`, DropParse},
	} {
		_, err := decodeEnvelope([]byte(tc.in))
		got := ""
		if err != nil {
			got = dropReason(err)
		}
		if got != tc.reason {
			t.Errorf("decode %q: reason %q (%v), want %q", tc.in, got, err, tc.reason)
		}
	}
}

// FuzzDecodeEnvelope: no byte string panics the decoder, and whatever it
// accepts re-encodes to an envelope that decodes to the same thing.
func FuzzDecodeEnvelope(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"node":"a","room":"r","kind":"k","seq":1,"data":{"x":[1,2]}}`,
		`{"v":1,"node":"a","kind":"hb","seq":9,"data":{"id":"a","started":"2026-01-01T00:00:00Z","load":{"cpu":0.5}}}`,
		`{"v":2}`, `[]`, `"x"`, "\xff\xfe", `{"v":1,"node":"a","kind":"k","data":"\u0000"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		env, err := decodeEnvelope(b)
		if err != nil {
			if r := dropReason(err); r != DropParse && r != DropVersion {
				t.Fatalf("reason %q", r)
			}
			return
		}
		again, err := json.Marshal(env)
		if err != nil {
			t.Fatalf("accepted envelope does not re-encode: %v", err)
		}
		env2, err := decodeEnvelope(again)
		if err != nil {
			t.Fatalf("re-encoded envelope refused: %v", err)
		}
		if env2.Node != env.Node || env2.Room != env.Room || env2.Kind != env.Kind || env2.Seq != env.Seq ||
			!jsonEqual(env.Data, env2.Data) {
			t.Fatalf("round trip changed %+v into %+v", env, env2)
		}
	})
}

func jsonEqual(a, b json.RawMessage) bool {
	var ca, cb bytes.Buffer
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	return json.Compact(&ca, a) == nil && json.Compact(&cb, b) == nil && bytes.Equal(ca.Bytes(), cb.Bytes())
}
