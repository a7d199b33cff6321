package loadtest

import (
	"errors"
	"net/http"

	"github.com/confab-sfu/confab/signal"
	"github.com/confab-sfu/confab/signal/client"
)

// refusedByLoad tells a join (or its publication) that a server at its
// load limits refused at once (server_busy, or 503 over WHIP/WHEP) from
// one that failed: a refused participant costs the server nothing and
// knows to come back later; a failed one is a defect.
func refusedByLoad(err error) bool {
	var se *signal.Error
	if errors.As(err, &se) {
		return se.Code == signal.CodeServerBusy
	}
	var he *client.HTTPStatusError
	return errors.As(err, &he) && he.Status == http.StatusServiceUnavailable
}
