package whip

import (
	"errors"
	"net/http"
)

// httpError is a refusal with its HTTP status.
type httpError struct {
	status int
	msg    string
	// challenge, with a 401, is the WWW-Authenticate header (RFC 6750).
	challenge string
}

func (e *httpError) Error() string { return e.msg }

func (e *httpError) write(w http.ResponseWriter) {
	if e.challenge != "" {
		w.Header().Set("WWW-Authenticate", e.challenge)
	}
	http.Error(w, e.msg, e.status)
}

// refusal answers a Conference's error with the status its category asks.
func refusal(err error) *httpError {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrBadOffer):
		status = http.StatusBadRequest
	case errors.Is(err, ErrForbidden):
		status = http.StatusForbidden
	case errors.Is(err, ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, ErrUnavailable):
		status = http.StatusServiceUnavailable
	}
	return &httpError{status: status, msg: err.Error()}
}

// challenges of a 401: without a token, and with a bad one.
const (
	challengeMissing = `Bearer realm="confab"`
	challengeInvalid = `Bearer realm="confab", error="invalid_token"`
)
