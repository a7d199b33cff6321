package signal

import "testing"

func TestLayerNames(t *testing.T) {
	for i, want := range []string{"", "low", "medium", "high", ""} {
		if got := LayerName(i - 1); got != want {
			t.Errorf("LayerName(%d) = %q, want %q", i-1, got, want)
		}
	}
	for _, c := range []struct {
		name string
		want int
		ok   bool
	}{{"", 2, true}, {"low", 0, true}, {"medium", 1, true}, {"high", 2, true}, {"ultra", 0, false}} {
		if got, ok := LayerIndex(c.name); got != c.want || ok != c.ok {
			t.Errorf("LayerIndex(%q) = %d %v, want %d %v", c.name, got, ok, c.want, c.ok)
		}
	}
}

func TestValidRoomName(t *testing.T) {
	for name, want := range map[string]bool{
		"a": true, "team-42": true, "Room_1.b": true, "_x": true, "-x": true,
		"": false, ".hidden": false, "a/b": false, "a b": false, "ü": false,
		"x123456789012345678901234567890123456789012345678901234567890123":  true,  // 64
		"x1234567890123456789012345678901234567890123456789012345678901234": false, // 65
	} {
		if got := ValidRoomName(name); got != want {
			t.Errorf("ValidRoomName(%q) = %v, want %v", name, got, want)
		}
	}
}
