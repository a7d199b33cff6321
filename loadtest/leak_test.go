package loadtest

import (
	"testing"

	"go.uber.org/goleak"
)

// Every peer, media source and track reader a run starts must be gone
// once it returns and the test server closed.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
